"""Alembic revision scripts of the catalog schema (one file per revision)."""
