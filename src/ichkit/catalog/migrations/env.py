"""Alembic environment of the catalog, run programmatically (no alembic.ini needed).

:func:`ichkit.catalog.open_catalog` passes an open connection in
``config.attributes["connection"]``; offline (SQL script) mode is not used.
"""

from __future__ import annotations

from alembic import context

from ichkit.catalog.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when run by hand
    from sqlalchemy import create_engine

    url = config.get_main_option("sqlalchemy.url") or "sqlite:///ichkit.db"
    with create_engine(url).connect() as connection:
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
