"""``ichkit dicom …``: look at DICOM files and series."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ichkit.cli import app
from ichkit.cli._options import NoProgressOption
from ichkit.cli._progress import progress_bar

dicom_app = typer.Typer(help="Inspect DICOM files and series.", no_args_is_help=True)
app.add_typer(dicom_app, name="dicom")


@dicom_app.command("ls")
def ls(
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="Folder to scan (nested folders or a flat ID_*.dcm layout)."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (with file lists) instead.")
    ] = False,
    no_progress: NoProgressOption = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", "-j", min=1, help="Processes reading headers (1 = no extra process)."
        ),
    ] = 1,
) -> None:
    """List the DICOM series under DIR from their headers (pixel data is not read).

    One row per series: patient, study, series, modality, slices, slice
    spacing and findings (missing slices, gantry tilt, …). Files that are not
    readable DICOM are listed after the table (in JSON: under "unreadable").
    """
    import json
    import sys

    from rich.console import Console

    from ichkit.dicom import group_series, iter_files, iter_headers
    from ichkit.errors import SeriesError

    if not directory.exists():
        raise SeriesError("no such folder", path=directory, field="DIR", value=str(directory))
    if not directory.is_dir():
        raise SeriesError("not a folder", path=directory, field="DIR", value=str(directory))

    files = list(iter_files(directory))
    with progress_bar("reading headers", enabled=not no_progress, total=len(files)) as advance:
        result = group_series(
            iter_headers(files, workers=workers),
            on_item=lambda _item: advance(1),
        )

    if as_json:
        doc = {
            "root": str(directory),
            "n_files": len(files),
            "series": [record.to_dict() for record in result.series],
            "unreadable": [
                {"path": str(u.path), "error": u.error, "reason": u.reason}
                for u in result.unreadable
            ],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return

    from rich.table import Table

    out = Console()
    if not out.is_terminal:  # piped or captured: no terminal width to respect
        out = Console(width=max(out.width, 220))
    table = Table(title=f"{len(result.series)} series in {directory} ({len(files)} files)")
    table.add_column("patient", no_wrap=True)
    table.add_column("study", overflow="fold")
    table.add_column("series", overflow="fold")
    table.add_column("modality", no_wrap=True)
    table.add_column("slices", justify="right", no_wrap=True)
    table.add_column("spacing mm", justify="right", no_wrap=True)
    table.add_column("findings", no_wrap=True)
    for record in result.series:
        spacing = record.slice_spacing
        table.add_row(
            record.patient_id,
            record.study_instance_uid,
            record.series_instance_uid,
            record.modality,
            str(record.n_slices),
            "-" if spacing != spacing else f"{spacing:.3f}",
            "\n".join(sorted({str(f.kind) for f in record.findings})) or "-",
        )
    out.print(table)
    if result.unreadable:
        out.print(f"{len(result.unreadable)} unreadable file(s):", markup=False)
        for item in result.unreadable:
            out.print(f"  {item.reason}", markup=False, highlight=False)
