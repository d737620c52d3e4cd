"""``ichkit synth``: write a synthetic multi-site head CT dataset with known hemorrhages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ichkit.cli import app
from ichkit.cli._options import NoProgressOption
from ichkit.cli._progress import progress_bar


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Argument(metavar="OUT", help="Output folder (new or empty).")],
    exams: Annotated[int, typer.Option("--exams", "-n", help="Number of exams.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Master seed: same seed, same bytes.")] = 0,
    size: Annotated[
        int, typer.Option("--size", help="Rows and columns of each image (pixels).")
    ] = 512,
    slices: Annotated[
        int | None,
        typer.Option("--slices", help="Slices per exam (default: head height at 5 mm, 28-38)."),
    ] = None,
    thickness: Annotated[
        float | None,
        typer.Option("--thickness", help="Slice thickness, mm (default 5, or coverage/--slices)."),
    ] = None,
    sites: Annotated[
        int, typer.Option("--sites", help="Number of sites (cycling through 5 vendor profiles).")
    ] = 3,
    prevalence: Annotated[
        float, typer.Option("--prevalence", help="Fraction of exams with hemorrhage (RSNA ~0.4).")
    ] = 0.4,
    subtype_mix: Annotated[
        str,
        typer.Option(
            "--subtype-mix",
            metavar="rsna|even|W,W,W,W,W",
            help="How often each subtype is drawn among hemorrhages: 'rsna' (the RSNA 2019 "
            "image counts: epidural 2%), 'even', or five weights in the order epidural, "
            "intraparenchymal, intraventricular, subarachnoid, subdural.",
        ),
    ] = "rsna",
    masks: Annotated[
        bool, typer.Option("--masks", help="Also write per-slice lesion masks (OUT/masks/*.npz).")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", "-j", help="Worker processes (same bytes as 1).")
    ] = 1,
    preview: Annotated[
        bool, typer.Option("--preview", help="Write OUT/preview.png (brain window 40/80).")
    ] = False,
    no_progress: NoProgressOption = False,
) -> None:
    """Write synthetic axial head CT exams (DICOM with PHI-laden headers) and their truth.

    Layout: OUT/dicom/<site>/<patient>/<study>/<series>/*.dcm, OUT/truth.csv
    (RSNA format), OUT/exams.csv, OUT/mimics.csv (images holding a calcification
    mimic: hard negatives that ichkit evaluate scores), OUT/synth-config.json.
    """

    from ichkit.errors import ConfigError
    from ichkit.synth import RSNA_SUBTYPE_WEIGHTS, SynthConfig, write_dataset

    mix = subtype_mix.strip().lower()
    if mix == "rsna":
        weights: tuple[float, ...] = RSNA_SUBTYPE_WEIGHTS
    elif mix == "even":
        weights = (1.0,) * len(RSNA_SUBTYPE_WEIGHTS)
    else:
        try:
            weights = tuple(float(x) for x in mix.split(","))
        except ValueError:
            raise ConfigError(
                f"expected rsna, even or five comma-separated weights; got {subtype_mix!r}",
                field="--subtype-mix",
                value=subtype_mix,
            ) from None
    try:
        config = SynthConfig(
            exams=exams,
            seed=seed,
            size=size,
            slices=slices,
            slice_thickness=thickness,
            sites=sites,
            prevalence=prevalence,
            subtype_weights=weights,
            masks=masks,
        )
    except ConfigError as err:
        if err.field != "subtype_weights":
            raise
        # name the option the user typed
        raise ConfigError(err.reason, field="--subtype-mix", value=subtype_mix) from None
    with progress_bar("synthesising exams", enabled=not no_progress, total=exams) as advance:
        reported = 0

        def _advance(done: int, total: int) -> None:
            nonlocal reported
            advance(done - reported)
            reported = done

        summary = write_dataset(config, out, workers=workers, preview=preview, progress=_advance)
    typer.echo(
        f"{len(summary.exams)} exams, {summary.images} images, "
        f"{summary.positive_exams} with hemorrhage -> {summary.out}",
        err=True,
    )
