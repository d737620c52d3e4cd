"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash or a full disk part-way through never leaves a half-written file under
the final name, and never replaces a good file with a partial one.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_save_figure", "atomic_write_bytes", "atomic_write_text"]

#: The process's umask at import (os.umask can only be read by setting it,
#: which is not thread-safe); :func:`current_umask` reads the live value.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def current_umask() -> int:
    """The process's umask now: Linux's ``/proc/self/status``, else the value at import."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _UMASK


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", *, perms: int | None = None
) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    The file gets the mode ``open()`` would give (0666 less the umask), or
    ``perms`` exactly (e.g. 0o600 for a file that holds patient data).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file owner-only; give it the mode open() would have
        # (a cache or checkpoint shared between users must stay readable)
        os.fchmod(fd, (0o666 & ~current_umask()) if perms is None else perms)
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_save_figure(fig: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Render a matplotlib figure as PNG into memory, then write it to ``path`` atomically.

    ``kwargs`` go to :meth:`matplotlib.figure.Figure.savefig`. The figure is not closed.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **kwargs)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
