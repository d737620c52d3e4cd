"""``ichkit dicom …``: look at DICOM files and series."""

from __future__ import annotations

import typer

from ichkit.cli import app

dicom_app = typer.Typer(help="Inspect DICOM files and series.", no_args_is_help=True)
app.add_typer(dicom_app, name="dicom")
