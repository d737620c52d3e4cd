"""Errors raised by the catalog."""

from __future__ import annotations

from ichkit.errors import IchkitError

__all__ = ["CatalogError"]


class CatalogError(IchkitError):
    """The catalog database cannot be opened, migrated or queried as asked."""
