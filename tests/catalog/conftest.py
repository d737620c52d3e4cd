"""Fixtures of the catalog tests: a catalog URL per backend, small DICOM series."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ENV = "ICHKIT_TEST_POSTGRES_URL"


def _postgres_catalog() -> Iterator[str]:
    from sqlalchemy import create_engine, text

    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/test)"
        )
    schema = f"ichkit_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty catalog: an SQLite file, or a new PostgreSQL schema (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.db'}"
    else:
        yield from _postgres_catalog()


def _register_factory() -> None:
    """Make tests/catalog/_factory.py importable as ``ichkit_test_factory``."""
    import importlib.util
    import sys
    from pathlib import Path

    if "ichkit_test_factory" in sys.modules:
        return
    path = Path(__file__).resolve().parent / "_factory.py"
    spec = importlib.util.spec_from_file_location("ichkit_test_factory", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ichkit_test_factory"] = module
    spec.loader.exec_module(module)


_register_factory()
