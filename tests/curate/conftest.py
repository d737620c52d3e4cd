"""Fixtures of the curation tests: the catalog fixtures, shared with tests/catalog."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_catalog = _load(
    "ichkit_tests_catalog_conftest", Path(__file__).resolve().parents[1] / "catalog" / "conftest.py"
)
catalog_url = _catalog.catalog_url
