"""Atomic writes never leave a partial file under the final name."""

from __future__ import annotations

from pathlib import Path

import pytest

from ichkit._atomic import atomic_open, atomic_write_text


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_failed_write_keeps_good_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "good")
    with pytest.raises(RuntimeError, match="disk full"), atomic_open(target) as handle:
        handle.write(b"partial")
        raise RuntimeError("disk full")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_written_files_get_the_umask_mode_not_owner_only(tmp_path: Path) -> None:
    import os
    import stat

    from ichkit._atomic import _UMASK

    target = tmp_path / "shared.bin"
    atomic_write_text(target, "x")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~_UMASK


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the umask from Linux's /proc"
)
def test_a_umask_set_after_import_is_followed(tmp_path: Path) -> None:
    """A program (or a site's wrapper) that tightens its umask later gets owner-only files."""
    import os
    import stat

    from ichkit._atomic import current_umask

    old = os.umask(0o077)
    try:
        assert current_umask() == 0o077
        target = tmp_path / "private.txt"
        atomic_write_text(target, "x")
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(target).st_mode) == stat.S_IMODE(
            os.stat(_plain_open(tmp_path / "plain.txt")).st_mode
        )
    finally:
        os.umask(old)


def _plain_open(path: Path) -> Path:
    with open(path, "w") as handle:
        handle.write("x")
    return path
