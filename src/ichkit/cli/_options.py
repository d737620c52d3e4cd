"""Options that several ``ichkit`` commands share, declared once (typed ``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["DB_HELP", "DEFAULT_DB", "DbOption", "NoProgressOption"]

#: The catalog database when ``--db`` is not given; same as
#: :data:`ichkit.catalog.DEFAULT_URL` (not imported: it would load SQLAlchemy).
DEFAULT_DB = "sqlite:///ichkit.db"
DB_HELP = (
    "Catalog database URL: sqlite:///FILE (default sqlite:///ichkit.db in the working "
    "folder) or postgresql+psycopg2://USER@HOST/DB."
)

#: ``--db URL``: the catalog database (default :data:`DEFAULT_DB`).
DbOption = Annotated[str, typer.Option("--db", help=DB_HELP)]
#: ``--no-progress``: hide the progress bar (default False).
NoProgressOption = Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")]
