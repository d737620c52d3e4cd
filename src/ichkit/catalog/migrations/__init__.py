"""Alembic migrations of the catalog schema, run by :func:`ichkit.catalog.open_catalog`."""
