"""Errors raised by curation."""

from __future__ import annotations

from ichkit.errors import IchkitError

__all__ = ["CurationError"]


class CurationError(IchkitError):
    """A curation step (QC, split, export, statistics) cannot run as asked."""
