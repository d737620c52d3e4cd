"""``ichkit score``: the challenge metric."""

from __future__ import annotations

from ichkit.cli import app  # noqa: F401
