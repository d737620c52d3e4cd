"""``ichkit ingest`` and ``ichkit labels import``: fill the catalog with files and labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ichkit.cli import app
from ichkit.cli._options import DEFAULT_DB, DbOption, NoProgressOption
from ichkit.cli._progress import progress_bar

__all__ = ["labels_app"]

labels_app = typer.Typer(
    help="Labels in the catalog: import a labels CSV as a label source.", no_args_is_help=True
)
app.add_typer(labels_app, name="labels")


def _write_ingest_report(path: Path, report: object) -> None:
    import csv
    import io

    from ichkit._atomic import atomic_write_text
    from ichkit.catalog import IngestReport

    if not isinstance(report, IngestReport):
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["kind", "path", "detail"])
    for p, reason in report.unreadable:
        writer.writerow(["unreadable", p, reason])
    for p, reason in report.changed:
        writer.writerow(["changed", p, reason])
    for c in report.collisions:
        writer.writerow(["uid_collision", ";".join(c.paths), str(c)])
    for c in report.duplicates:
        writer.writerow(["duplicate_sop", ";".join(c.paths), str(c)])
    atomic_write_text(path, buffer.getvalue())


@app.command("ingest")
def ingest_command(
    directory: Annotated[
        Path, typer.Argument(help="Folder of DICOM files (any depth, any names).")
    ],
    site: Annotated[str, typer.Option("--site", help="Name of the site the files come from.")],
    db: DbOption = DEFAULT_DB,
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes (0: one per CPU).")
    ] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Files per insert batch.")] = 5000,
    checksum: Annotated[
        str, typer.Option("--checksum", help="hashlib algorithm for file checksums, or 'none'.")
    ] = "sha256",
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels", help="Also store this RSNA labels CSV (e.g. truth.csv) as a label source."
        ),
    ] = None,
    label_source: Annotated[
        str, typer.Option("--label-source", help="Label source name for --labels.")
    ] = "truth",
    report_csv: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Write unreadable/changed files and UID collisions to this CSV."
        ),
    ] = None,
    no_progress: NoProgressOption = False,
) -> int:
    """Catalog every DICOM file under DIRECTORY for a site (header only, parallel, idempotent).

    A re-run adds only new files; a file whose size or modification time
    changed is checksummed again and flagged when its content differs.
    Unreadable files are listed with their reason and never stop the run;
    UIDs already catalogued under another site are reported. Exit status 3
    when some files could not be read.
    """
    from rich.console import Console

    from ichkit.catalog import IngestConfig, import_labels, ingest, open_catalog
    from ichkit.labels import read_labels

    config = IngestConfig(batch_size=batch_size, workers=workers, checksum=checksum)
    # read (and check) the labels before the ingest, which may take hours
    wide = None if labels is None else read_labels(labels)
    engine = open_catalog(db)
    with progress_bar(f"ingest {site}", enabled=not no_progress) as advance:
        report = ingest(engine, directory, site=site, config=config, progress=advance)
    out = Console(soft_wrap=True)
    out.print(report.summary(), markup=False)
    for path, reason in report.unreadable[:20]:
        out.print(f"  unreadable: {path}: {reason}", markup=False)
    if report.n_unreadable > 20:
        out.print(f"  ... and {report.n_unreadable - 20} more", markup=False)
    for path, reason in report.changed[:20]:
        out.print(f"  changed: {path}: {reason}", markup=False)
    for collision in report.collisions[:20]:
        out.print(f"  collision: {collision}", markup=False)
    if report_csv is not None:  # written before the labels: they can still fail
        _write_ingest_report(report_csv, report)
        out.print(f"report: {report_csv}", markup=False)
    if labels is not None and wide is not None:
        label_report = import_labels(
            engine, wide, source=label_source, description=f"imported from {labels}"
        )
        out.print(label_report.summary(), markup=False)
    out.print(f"catalog: {engine.url.render_as_string(hide_password=True)}", markup=False)
    return 3 if report.n_unreadable else 0


@labels_app.command("import")
def labels_import_command(
    csv_path: Annotated[
        Path, typer.Argument(help="RSNA labels CSV (ID,Label; six rows per image).")
    ],
    source: Annotated[str, typer.Option("--source", help="Name of the label source to store.")],
    kind: Annotated[
        str, typer.Option("--kind", help="Kind of source: reader, import or model.")
    ] = "import",
    db: DbOption = DEFAULT_DB,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail when a labelled image is not in the catalog.")
    ] = False,
) -> int:
    """Store an RSNA labels CSV as a label source of the catalog.

    Images are matched by SOPInstanceUID (ID_<uid>_<label> rows); exam labels
    are derived as the maximum over each study's images. Reader labels in the
    RSNA CSV format, or a synthetic truth.csv as a stand-in for readers (the
    demo passes those to ichkit ingest --labels instead).
    """
    from rich.console import Console

    from ichkit.catalog import import_labels_csv, open_catalog

    engine = open_catalog(db, must_exist=True)
    report = import_labels_csv(engine, csv_path, source=source, kind=kind, strict=strict)
    Console(soft_wrap=True).print(report.summary(), markup=False)
    return 0
