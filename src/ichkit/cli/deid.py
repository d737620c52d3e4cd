"""``ichkit deid …``: de-identify DICOM at a site; make keys; look up pseudonyms.

``ichkit deid SRC DST --key KEYFILE`` (the DESIGN.md contract) is the same as
``ichkit deid run SRC DST --key KEYFILE``: the group sends any first argument
that is not one of its sub-commands to ``run``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ichkit.cli import app
from ichkit.cli._options import NoProgressOption


class _DefaultRunGroup(TyperGroup):
    """A group whose arguments go to ``run`` unless they start with a sub-command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


deid_app = typer.Typer(
    cls=_DefaultRunGroup,
    help=(
        "De-identify head CT DICOM (PS3.15 Annex E): ichkit deid SRC DST --key KEYFILE. "
        "Sub-commands: run (the default), keygen, lookup, map-labels."
    ),
    no_args_is_help=True,
)
app.add_typer(deid_app, name="deid")


@deid_app.command("run")
def run_command(
    src: Annotated[Path, typer.Argument(help="Folder (or file) to read; never modified.")],
    dst: Annotated[Path, typer.Argument(help="Output folder; what may leave the site.")],
    key: Annotated[Path, typer.Option("--key", "-k", help="Site key file (ichkit deid keygen).")],
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile", help="Profile JSON (ichkit-deid-profile/1); the shipped one if absent."
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Worker processes.")] = 1,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask", help="Dask scheduler address, e.g. tcp://host:8786 (DST must be shared)."
        ),
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            "--quarantine", help="Quarantine folder; default DST/../<DST name>-quarantine."
        ),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store", help="Mapping store; default <KEYFILE>.mapping.sqlite beside the key."
        ),
    ] = None,
    options: Annotated[
        str | None,
        typer.Option(
            "--options",
            help="Comma-separated PS3.15 options replacing the profile's (e.g. "
            "retain_patient_characteristics,clean_descriptors; '' for none).",
        ),
    ] = None,
    keep_safe_private: Annotated[
        bool,
        typer.Option("--keep-safe-private", help="Keep private tags on the profile's safe list."),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check every file and print the report; write nothing."),
    ] = False,
    fsync: Annotated[
        bool, typer.Option("--fsync", help="fsync every output before its rename.")
    ] = False,
    no_progress: NoProgressOption = False,
) -> None:
    """De-identify every DICOM file under SRC into DST (exit 0; 3 if any was quarantined)."""
    import csv

    from ichkit.deid import DeidConfig, FileOutcome, deidentify_tree

    config = DeidConfig(
        profile=None if profile is None else str(profile),
        options=None
        if options is None
        else tuple(o.strip() for o in options.split(",") if o.strip()),
        keep_safe_private=keep_safe_private,
        workers=workers,
        dask_address=dask,
        quarantine=None if quarantine is None else str(quarantine),
        store=None if store is None else str(store),
        dry_run=dry_run,
        fsync=fsync,
    )
    writer: Any = None
    if dry_run:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(("input_path", "output_path", "status", "reason"))

    def emit(outcome: FileOutcome) -> None:
        if writer is not None:
            writer.writerow(
                (
                    outcome.input_path,
                    outcome.output_path,
                    outcome.status.value,
                    outcome.report_reason,
                )
            )

    if no_progress or dry_run:
        summary = deidentify_tree(src, dst, key=key, config=config, progress=emit)
    else:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed} files"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("de-identifying", total=None)

            def tick(outcome: FileOutcome) -> None:
                bar.advance(task)

            summary = deidentify_tree(src, dst, key=key, config=config, progress=tick)
    typer.echo(
        f"{summary.total} files: {summary.deidentified} de-identified, "
        f"{summary.quarantined} quarantined, {summary.skipped} skipped"
        + (f"; report {summary.report_path}" if summary.report_path else " (dry run)"),
        err=True,
    )
    if summary.exit_status:
        raise typer.Exit(summary.exit_status)


@deid_app.command("keygen")
def keygen_command(
    keyfile: Annotated[Path, typer.Argument(help="Where to write the new key (must not exist).")],
    site: Annotated[
        str | None,
        typer.Option("--site", help="Site label in patient pseudonyms (1-16 letters/digits)."),
    ] = None,
) -> None:
    """Make a new random site key (file mode 0600). Keep it secret and backed up."""
    from ichkit.deid import generate_key

    made = generate_key(keyfile, site=site)
    typer.echo(f"wrote {keyfile} (site {made.site}, fingerprint {made.fingerprint})", err=True)


@deid_app.command("lookup")
def lookup_command(
    value: Annotated[
        str, typer.Argument(help="An original (PatientID, UID, path) or a pseudonym.")
    ],
    key: Annotated[
        Path, typer.Option("--key", "-k", help="Site key file; its store is beside it.")
    ],
    store: Annotated[
        Path | None, typer.Option("--store", help="Another mapping store file.")
    ] = None,
) -> None:
    """Re-identify (or pseudonymize) VALUE from the mapping store: kind, original, pseudonym."""
    from ichkit.deid import lookup

    rows = lookup(str(key), value, store=None if store is None else str(store))
    if not rows:
        typer.echo(f"no mapping for {value!r}", err=True)
        raise typer.Exit(1)
    for row in rows:
        typer.echo("\t".join((row.kind, row.original, row.pseudonym, row.detail)).rstrip("\t"))


@deid_app.command("map-labels")
def map_labels_command(
    labels: Annotated[
        Path,
        typer.Argument(
            metavar="LABELS_CSV", help="RSNA labels CSV keyed by the ORIGINAL SOPInstanceUIDs."
        ),
    ],
    out: Annotated[
        Path, typer.Argument(metavar="OUT_CSV", help="Where to write the re-keyed labels CSV.")
    ],
    key: Annotated[
        Path,
        typer.Option("--key", "-k", metavar="KEYFILE", help="The site key file ichkit deid used."),
    ],
    exams: Annotated[
        Path | None,
        typer.Option(
            "--exams",
            metavar="EXAMS_CSV",
            help="exams.csv (site, patient, study, series, labels) to re-key too.",
        ),
    ] = None,
    exams_out: Annotated[
        Path | None,
        typer.Option(
            "--exams-out", metavar="OUT_EXAMS_CSV", help="Where to write the re-keyed exams.csv."
        ),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            help="The profile JSON ichkit deid used, if not the shipped one (checked to map UIDs).",
        ),
    ] = None,
    only_deidentified: Annotated[
        bool,
        typer.Option(
            "--only-deidentified",
            help="Keep only images (and exams) this site de-identified, per its mapping store.",
        ),
    ] = False,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store", help="Mapping store for --only-deidentified; default beside the key."
        ),
    ] = None,
) -> None:
    """Re-key labels (and exams) to the pseudonyms that ichkit deid writes with KEYFILE.

    With --only-deidentified, images (and exams) that this site did not write
    (quarantined files, other sites' exams) are left out.
    """
    from ichkit.deid import load_profile, map_labels_file, store_path_for

    summary = map_labels_file(
        labels,
        out,
        key=key,
        exams=exams,
        exams_out=exams_out,
        profile=None if profile is None else load_profile(profile),
        only_in_store=(store or store_path_for(key)) if only_deidentified else None,
    )
    typer.echo(
        f"mapped {summary.images} images to {summary.labels_out}"
        + (f", {summary.exams} exams to {summary.exams_out}" if summary.exams_out else "")
        + f" (key fingerprint {summary.key_fingerprint})",
        err=True,
    )
