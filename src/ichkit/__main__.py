"""``python -m ichkit``: the same as the ``ichkit`` command."""

from ichkit.cli import run

run()
