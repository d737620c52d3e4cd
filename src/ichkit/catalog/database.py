"""Open a catalog database and bring its schema up to date.

A catalog is any SQLAlchemy URL: an SQLite file by default
(``sqlite:///ichkit.db`` in the working folder) or a PostgreSQL database
(``postgresql+psycopg2://user@host/db``; add
``?options=-csearch_path%3Dmyschema`` to use a schema other than ``public``).
:func:`open_catalog` runs the Alembic migrations shipped in this package, so
that users never need an ``alembic.ini``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from ichkit.catalog.errors import CatalogError

__all__ = ["DEFAULT_URL", "MIGRATIONS", "catalog_session", "open_catalog", "schema_revision"]

logger = logging.getLogger(__name__)

#: The catalog used when no ``--db`` is given: a SQLite file in the working folder.
DEFAULT_URL = "sqlite:///ichkit.db"
#: Folder of the Alembic environment and revision scripts.
MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def open_catalog(
    url: str = DEFAULT_URL, *, upgrade: bool = True, must_exist: bool = False
) -> Engine:
    """Connect to a catalog and migrate its schema to the newest revision.

    Parameters
    ----------
    url
        SQLAlchemy database URL, e.g. ``sqlite:///ichkit.db`` or
        ``postgresql+psycopg2://postgres@127.0.0.1:5432/ichkit``.
    upgrade
        Run the Alembic migrations (creating the tables on first use).
    must_exist
        Refuse an SQLite file that does not exist yet, rather than make an
        empty catalog (commands that only read or curate one: a mistyped
        ``--db`` must not look like an empty catalog).

    Returns
    -------
    sqlalchemy.Engine
        The engine; use :func:`catalog_session` or ``engine.begin()``.

    Raises
    ------
    CatalogError
        The URL is malformed, the database cannot be reached, or the
        migration failed; the message names the URL (without password).
    """
    try:
        engine = create_engine(url)
    except (ArgumentError, ImportError, ValueError) as err:
        raise CatalogError(f"not a usable database URL: {err}", field="--db", value=url) from err
    shown = engine.url.render_as_string(hide_password=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        database = engine.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            if must_exist and not Path(database).is_file():
                raise CatalogError(
                    f"no catalog database at {database} (run ichkit ingest first, or check --db)",
                    field="--db",
                    value=shown,
                )
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    if upgrade:
        from alembic import command

        try:
            with engine.begin() as connection:
                command.upgrade(_alembic_config(connection), "head")
        except OperationalError as err:
            raise CatalogError(
                f"cannot open the catalog database: {err.orig}", field="--db", value=shown
            ) from err
        except SQLAlchemyError as err:
            raise CatalogError(
                f"cannot migrate the catalog schema: {err}", field="--db", value=shown
            ) from err
        logger.debug("catalog %s at schema revision %s", shown, schema_revision(engine))
    return engine


def schema_revision(engine: Engine) -> str | None:
    """Return the Alembic revision the catalog's schema is at (None when unversioned)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        rev: str | None = MigrationContext.configure(connection).get_current_revision()
    return rev


@contextmanager
def catalog_session(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back on an exception."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
