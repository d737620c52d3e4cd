"""The mapping store: original <-> pseudonym, in a SQLite file beside the key.

It lets the site re-identify a patient, study, series or instance when
authorised (``ichkit deid lookup``), and records which input files were done
so that a re-run resumes. It holds identifying data: protect it as the key.
Only the parent process writes it, in batches.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ichkit.errors import ConfigError

__all__ = ["FileRecord", "MappingRow", "MappingStore", "store_path_for"]

# One transaction (one commit, so one round of syncs) for the whole schema.
_SCHEMA = """
BEGIN;
CREATE TABLE IF NOT EXISTS mapping (
    kind TEXT NOT NULL,
    original TEXT NOT NULL,
    pseudonym TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (kind, original)
);
CREATE INDEX IF NOT EXISTS mapping_pseudonym ON mapping (pseudonym);
CREATE TABLE IF NOT EXISTS files (
    dst TEXT NOT NULL,
    input TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    profile_sha256 TEXT NOT NULL,
    output TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (dst, input)
);
CREATE INDEX IF NOT EXISTS files_output ON files (dst, output);
COMMIT;
"""


def store_path_for(key_path: str | os.PathLike[str]) -> Path:
    """Return the mapping store that belongs beside ``key_path``: ``<key>.mapping.sqlite``."""
    key = Path(key_path)
    return key.with_name(key.name + ".mapping.sqlite")


@dataclass(frozen=True)
class MappingRow:
    """One original <-> pseudonym pair (kind: patient, study, series, instance, uid, ...)."""

    kind: str
    original: str
    pseudonym: str
    detail: str = ""


@dataclass(frozen=True)
class FileRecord:
    """What happened to one input file in an earlier run into the same DST."""

    size: int
    mtime_ns: int
    profile_sha256: str
    output: str
    status: str
    reason: str


class MappingStore:
    """A SQLite mapping store (stdlib :mod:`sqlite3`), created with mode 0600.

    Parameters
    ----------
    path
        The SQLite file.
    create
        Create it if missing (otherwise a missing file is a ConfigError).
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise ConfigError("no mapping store here", path=self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        try:
            self._conn = sqlite3.connect(self.path)
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise ConfigError(f"not a mapping store: {err}", path=self.path) from err

    def close(self) -> None:
        """Commit and close."""
        self._conn.commit()
        self._conn.close()

    def __enter__(self) -> MappingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_mappings(self, rows: Iterable[MappingRow]) -> None:
        """Insert rows (already-known pairs are ignored); commits."""
        with self._conn:
            self._insert_mappings(rows)

    def _insert_mappings(self, rows: Iterable[MappingRow]) -> None:
        self._conn.executemany(
            "INSERT OR IGNORE INTO mapping (kind, original, pseudonym, detail) VALUES (?,?,?,?)",
            ((r.kind, r.original, r.pseudonym, r.detail) for r in rows),
        )

    def add_batch(
        self, rows: Iterable[MappingRow], dst: str, records: Iterable[tuple[str, FileRecord]]
    ) -> None:
        """:meth:`add_mappings` then :meth:`record_files`, in one transaction (one commit)."""
        with self._conn:
            self._insert_mappings(rows)
            self._insert_files(dst, records)

    def has_files(self, dst: str) -> bool:
        """Whether any input file was recorded for ``dst`` (if not, nothing can resume)."""
        row = self._conn.execute("SELECT 1 FROM files WHERE dst = ? LIMIT 1", (dst,)).fetchone()
        return row is not None

    def lookup(self, value: str) -> list[MappingRow]:
        """Return every row whose original or pseudonym equals ``value``."""
        cur = self._conn.execute(
            "SELECT kind, original, pseudonym, detail FROM mapping "
            "WHERE original = ? OR pseudonym = ? ORDER BY kind, original",
            (value, value),
        )
        return [MappingRow(*row) for row in cur.fetchall()]

    def originals(self, kind: str) -> set[str]:
        """Return the set of originals recorded for ``kind`` (e.g. ``instance``)."""
        cur = self._conn.execute("SELECT original FROM mapping WHERE kind = ?", (kind,))
        return {row[0] for row in cur}

    def iter_mappings(self) -> Iterator[MappingRow]:
        """Yield every mapping row, ordered by kind and original."""
        cur = self._conn.execute(
            "SELECT kind, original, pseudonym, detail FROM mapping ORDER BY kind, original"
        )
        for row in cur:
            yield MappingRow(*row)

    def file_record(self, dst: str, input_path: str) -> FileRecord | None:
        """Return what an earlier run into ``dst`` did with ``input_path``, if anything."""
        row = self._conn.execute(
            "SELECT size, mtime_ns, profile_sha256, output, status, reason FROM files "
            "WHERE dst = ? AND input = ?",
            (dst, input_path),
        ).fetchone()
        return None if row is None else FileRecord(*row)

    def output_owner(self, dst: str, output: str) -> str | None:
        """Return the input already written to ``output`` in ``dst``, if any."""
        row = self._conn.execute(
            "SELECT input FROM files WHERE dst = ? AND output = ? AND status = 'deidentified'",
            (dst, output),
        ).fetchone()
        return None if row is None else str(row[0])

    def record_files(self, dst: str, records: Iterable[tuple[str, FileRecord]]) -> None:
        """Insert or replace file records; commits."""
        with self._conn:
            self._insert_files(dst, records)

    def _insert_files(self, dst: str, records: Iterable[tuple[str, FileRecord]]) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO files "
            "(dst, input, size, mtime_ns, profile_sha256, output, status, reason) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                (dst, inp, r.size, r.mtime_ns, r.profile_sha256, r.output, r.status, r.reason)
                for inp, r in records
            ),
        )


@contextlib.contextmanager
def open_store(path: str | os.PathLike[str], *, create: bool = True) -> Iterator[MappingStore]:
    """Open a mapping store as a context manager."""
    store = MappingStore(path, create=create)
    try:
        yield store
    finally:
        store.close()
