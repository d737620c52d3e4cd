"""``ichkit qc``, ``import-rsna``, ``export``, ``split``, ``stats``: curate the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ichkit.cli import app
from ichkit.cli._options import DEFAULT_DB, DbOption, NoProgressOption
from ichkit.cli._progress import progress_bar

__all__: list[str] = []


@app.command("qc")
def qc_command(
    db: DbOption = DEFAULT_DB,
    out: Annotated[Path, typer.Option("--out", help="CSV of every series and its QC.")] = Path(
        "qc.csv"
    ),
    min_slices: Annotated[
        int, typer.Option("--min-slices", help="Fewer slices is too_few_slices.")
    ] = 10,
    sample_reads: Annotated[
        int, typer.Option("--sample-reads", help="Slices per series whose pixel data is decoded.")
    ] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampled slices.")] = 0,
    no_progress: NoProgressOption = False,
) -> int:
    """Check every catalogued series and choose one series per study.

    Reasons: wrong modality, not axial, too few slices, uneven spacing,
    missing slices, duplicate positions, mixed sizes, corrupt pixel data on a
    sampled read, contrast; gantry tilt is reported without excluding. Each
    exclusion is stored with its reason; the report is printed and written
    as CSV.
    """
    from rich.console import Console
    from rich.table import Table
    from sqlalchemy import func, select

    from ichkit.catalog import Series, open_catalog
    from ichkit.curate import QCConfig, run_qc, write_qc_csv

    engine = open_catalog(db, must_exist=True)
    with engine.connect() as connection:
        total = int(connection.execute(select(func.count()).select_from(Series)).scalar_one())
    config = QCConfig(min_slices=min_slices, sample_reads=sample_reads, seed=seed)
    with progress_bar("qc", enabled=not no_progress, total=total) as advance:
        report = run_qc(engine, config, progress=advance)
    path = write_qc_csv(engine, out)
    console = Console(soft_wrap=True)
    table = Table(title="QC findings by reason")
    table.add_column("reason")
    table.add_column("series", justify="right")
    table.add_column("excludes")
    for reason, count in sorted(report.reasons.items()):
        table.add_row(reason, str(count), "yes" if reason in config.exclude else "no")
    console.print(table)
    console.print(report.summary(), markup=False)
    console.print(f"QC report: {path}", markup=False)
    return 0


@app.command("import-rsna")
def import_rsna_command(
    images: Annotated[
        Path, typer.Option("--images", help="Flat folder of ID_*.dcm (stage_2_train).")
    ],
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Long labels CSV (stage_2_train.csv); omit for test images."),
    ] = None,
    db: DbOption = DEFAULT_DB,
    site: Annotated[str, typer.Option("--site", help="Site name for the images.")] = "rsna",
    source: Annotated[
        str, typer.Option("--source", help="Label source name for the labels.")
    ] = "rsna",
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes (0: one per CPU).")
    ] = 0,
    no_progress: NoProgressOption = False,
) -> int:
    """Import the Kaggle RSNA 2019 layout: a flat folder of ID_*.dcm and the long labels CSV.

    Images are grouped into studies and series by their headers; the labels
    are stored as a label source. Exit status 3 when some files could not be
    read.
    """
    from rich.console import Console

    from ichkit.catalog import IngestConfig, open_catalog
    from ichkit.curate import import_rsna

    engine = open_catalog(db)
    with progress_bar("import-rsna", enabled=not no_progress) as advance:
        report, label_report = import_rsna(
            engine,
            images,
            labels,
            site=site,
            source=source,
            config=IngestConfig(workers=workers),
            progress=advance,
        )
    console = Console(soft_wrap=True)
    console.print(report.summary(), markup=False)
    for path, reason in report.unreadable[:20]:
        console.print(f"  unreadable: {path}: {reason}", markup=False)
    if label_report is not None:
        console.print(label_report.summary(), markup=False)
    console.print(f"catalog: {engine.url.render_as_string(hide_password=True)}", markup=False)
    return 3 if report.n_unreadable else 0


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("--out", help="Output folder (RSNA stage 2 layout).")],
    db: DbOption = DEFAULT_DB,
    split: Annotated[
        str | None, typer.Option("--split", help="Stored split: test patients go to stage_2_test.")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Label source (default: the only one).")
    ] = None,
    no_progress: NoProgressOption = False,
) -> int:
    """Export labelled images in the RSNA layout, plus exams.csv.

    Writes stage_2_train/ID_<image>.dcm, stage_2_train.csv, stage_2_test/,
    stage_2_sample_submission.csv, stage_2_test_truth.csv (keep it private)
    and exams.csv; files are hard-linked (or copied) atomically.
    """
    from rich.console import Console

    from ichkit.catalog import open_catalog
    from ichkit.curate import export_rsna

    engine = open_catalog(db, must_exist=True)
    with progress_bar("export", enabled=not no_progress) as advance:
        report = export_rsna(engine, out, source=source, split=split, progress=advance)
    console = Console(soft_wrap=True)
    console.print(report.summary(), markup=False)
    for path in report.files:
        console.print(f"  {path}", markup=False)
    return 0


@app.command("split")
def split_command(
    db: DbOption = DEFAULT_DB,
    test: Annotated[
        float, typer.Option("--test", help="Fraction of patients in the test set.")
    ] = 0.2,
    val: Annotated[
        float, typer.Option("--val", help="Fraction of patients in the validation set.")
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same split).")] = 0,
    balance_positive: Annotated[
        float | None,
        typer.Option(
            "--balance-positive", help="Wanted fraction of positive patients in the test set."
        ),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Label source (default: the only one).")
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="Name the split is stored under.")
    ] = "default",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Also write split_config.json and the distributions (CSV) here."
        ),
    ] = None,
    no_site: Annotated[bool, typer.Option("--no-site", help="Do not stratify on site.")] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace a stored split of the same --name that differs (refused without it).",
        ),
    ] = False,
) -> int:
    """Split patients into train / val / test, patient-disjoint and stratified.

    Stratified jointly on the six exam-level labels and on site (iterative
    multi-label stratification of patient-level label vectors); optionally
    enriches the test set to a positive fraction. Prints and stores the
    achieved distributions; warns when a subtype is too rare to stratify.
    A split of the same --name is replaced only with --replace (or when the
    new one assigns every patient as before).
    """
    from rich.console import Console
    from rich.table import Table

    from ichkit.catalog import open_catalog
    from ichkit.curate import SplitConfig, make_split, write_split_outputs
    from ichkit.labels import LABELS

    config = SplitConfig(
        test=test,
        val=val,
        seed=seed,
        balance_positive=balance_positive,
        source=source,
        name=name,
        stratify_site=not no_site,
    )
    engine = open_catalog(db, must_exist=True)
    result = make_split(engine, config, replace=replace)
    console = Console(soft_wrap=True)
    table = Table(title=f"split {name!r} (seed {seed}): positive exams per subset")
    for col in ("subset", "patients", "exams", "images", *LABELS):
        table.add_column(col, justify="right")
    for row in result.distribution.to_dict("records"):
        table.add_row(
            str(row["subset"]),
            str(row["patients"]),
            str(row["exams"]),
            str(row["images"]),
            *[f"{row[f'{lab}_exams']} ({row[f'{lab}_fraction']:.1%})" for lab in LABELS],
        )
    console.print(table)
    # result.warnings were logged by make_split (shown as WARNING lines).
    if out is not None:
        for path in write_split_outputs(result, out):
            console.print(f"  {path}", markup=False)
    console.print(f"split {name!r} stored in the catalog", markup=False)
    return 0


@app.command("stats")
def stats_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the CSV tables and PNG figures.")],
    db: DbOption = DEFAULT_DB,
    split: Annotated[
        str | None, typer.Option("--split", help="Stored split to compare (train vs test).")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Label source (default: the only one).")
    ] = None,
) -> int:
    """Label distribution figures and tables: exam and image level, per subset and site.

    Exam-level and image-level bar charts with train and test side by side
    (Figures 4 and 5 of Flanders et al. 2020) and a per-site breakdown, as
    PNG and CSV.
    """
    from rich.console import Console

    from ichkit.catalog import open_catalog
    from ichkit.curate import write_stats

    engine = open_catalog(db, must_exist=True)
    paths = write_stats(engine, out, source=source, split=split)
    console = Console(soft_wrap=True)
    console.print(f"wrote {len(paths)} files:", markup=False)
    for path in paths:
        console.print(f"  {path}", markup=False)
    return 0
