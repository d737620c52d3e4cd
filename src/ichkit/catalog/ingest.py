"""Ingest a folder of DICOM files into the catalog: header-only, parallel, streaming, idempotent.

The folder is walked with ``os.scandir`` and handled in batches (5,000 files by
default), so memory stays flat however many files there are: for each batch
the catalog is asked which paths it already holds; new files have their
header read (no pixel data) and their checksum taken in worker processes;
catalogued files whose size or modification time changed are checksummed
again and flagged when their content differs. Rows are inserted in bulk, one
transaction per batch, so an interrupted run keeps what it did and a re-run
adds only what is missing.

Files that cannot be read are listed with the reason (and stored as
:class:`~ichkit.catalog.models.IngestIssue` rows); they never stop the run.
UIDs already catalogued under another site are reported as collisions.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from ichkit.catalog._headers import FileFailure, FileRecord, checksum_many, read_many
from ichkit.catalog.errors import CatalogError
from ichkit.catalog.models import (
    IngestIssue,
    Instance,
    IssueKind,
    Patient,
    Series,
    Site,
    Study,
)

__all__ = [
    "IngestConfig",
    "IngestReport",
    "UidCollision",
    "find_uid_collisions",
    "get_or_create_site",
    "ingest",
    "walk_files",
]

logger = logging.getLogger(__name__)

#: File name suffixes never taken for DICOM (reports and sidecars written beside images).
NOT_DICOM_SUFFIXES = frozenset({".csv", ".json", ".txt", ".md", ".log", ".toml", ".yaml", ".yml"})
#: Most issues of one kind kept in an :class:`IngestReport` (all are stored in the catalog).
REPORT_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Settings of an ingest run.

    Parameters
    ----------
    batch_size
        Files per batch: one catalog lookup, one bulk insert, one commit.
    workers
        Worker processes reading headers; 0 = one per CPU, 1 = read in this process.
    checksum
        hashlib algorithm for the whole-file checksum (``sha256``), or ``none``
        to skip it (changed files are then flagged on size/mtime alone).
    chunk_size
        Files handed to a worker at a time.
    min_parallel
        Batches with fewer than this many new files per worker are read in
        this process (starting workers costs about a second of imports).
    """

    batch_size: int = 5000
    workers: int = 0
    checksum: str = "sha256"
    chunk_size: int = 250
    min_parallel: int = 1000

    def __post_init__(self) -> None:
        import hashlib

        if self.batch_size < 1:
            raise CatalogError("must be at least 1", field="batch_size", value=self.batch_size)
        if self.workers < 0:
            raise CatalogError("must be 0 (all CPUs) or more", field="workers", value=self.workers)
        if self.checksum != "none" and self.checksum not in hashlib.algorithms_available:
            raise CatalogError(
                f"unknown checksum algorithm {self.checksum!r}; expected 'none' or one of "
                f"{', '.join(sorted(hashlib.algorithms_guaranteed))}",
                field="checksum",
                value=self.checksum,
            )

    @property
    def n_workers(self) -> int:
        """The number of worker processes to use."""
        return self.workers or (os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class UidCollision:
    """A UID catalogued under more than one site (or, for SOPs, for several files).

    Parameters
    ----------
    level
        ``study``, ``series`` or ``instance``.
    uid
        The colliding UID.
    sites
        The site names it appears under.
    paths
        For instances: the files that share it.
    """

    level: str
    uid: str
    sites: tuple[str, ...]
    paths: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = ", ".join(self.paths) if self.paths else ", ".join(self.sites)
        return f"{self.level} UID {self.uid} appears under sites {', '.join(self.sites)} ({where})"


@dataclass(slots=True)
class IngestReport:
    """What an ingest run did.

    ``unreadable`` and ``changed`` hold (path, reason) pairs, at most
    :data:`REPORT_LIMIT` each (the counts are exact; all are stored in the
    catalog's ``ingest_issue`` table).
    """

    site: str
    root: str
    seen: int = 0
    added: int = 0
    unchanged: int = 0
    touched: int = 0
    skipped: int = 0
    n_unreadable: int = 0
    n_changed: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, str]] = field(default_factory=list)
    collisions: list[UidCollision] = field(default_factory=list)
    duplicates: list[UidCollision] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def files_per_second(self) -> float:
        """Files seen per second of wall time."""
        return self.seen / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"site {self.site}: {self.seen} files seen, {self.added} added, "
            f"{self.unchanged + self.touched} already catalogued, {self.n_changed} changed, "
            f"{self.n_unreadable} unreadable, {len(self.collisions)} UID collision(s), "
            f"{len(self.duplicates)} duplicate SOPInstanceUID(s) "
            f"in {self.seconds:.1f} s ({self.files_per_second:.0f} files/s)"
        )


@dataclass(frozen=True, slots=True)
class _Entry:
    path: str
    size: int
    mtime_ns: int


def walk_files(root: str | os.PathLike[str]) -> Iterator[tuple[str, int, int]]:
    """Yield (absolute path, size, mtime_ns) of every regular file under ``root``.

    Streams with ``os.scandir`` (one folder's iterator open at a time, entries
    not sorted or collected), skips hidden files and folders (name starting
    with ``.``) and follows no symbolic links to folders.
    """
    stack = [os.path.abspath(os.fspath(root))]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=True):
                            st = entry.stat(follow_symlinks=True)
                            yield entry.path, st.st_size, st.st_mtime_ns
                    except OSError as err:
                        logger.warning("%s: cannot stat: %s", entry.path, err.strerror)
        except OSError as err:
            logger.warning("%s: cannot list folder: %s", folder, err.strerror)


def _batched(items: Iterable[tuple[str, int, int]], size: int) -> Iterator[list[_Entry]]:
    batch: list[_Entry] = []
    for path, st_size, mtime in items:
        batch.append(_Entry(path, st_size, mtime))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def get_or_create_site(connection: Connection, name: str) -> int:
    """Return the id of the site called ``name``, creating it if needed."""
    if not name or len(name) > 128 or name != name.strip():
        raise CatalogError(
            "a site name must be 1 to 128 characters without surrounding blanks",
            field="--site",
            value=name,
        )
    site_id = connection.execute(select(Site.id).where(Site.name == name)).scalar()
    if site_id is None:
        # another ingest may create it at the same moment: insert if absent, then read
        connection.execute(_insert_if_absent(connection, Site), [{"name": name}])
        site_id = connection.execute(select(Site.id).where(Site.name == name)).scalar_one()
    return int(site_id)


def _insert_if_absent(connection: Connection, table: Any) -> Any:
    """INSERT that skips rows whose unique key exists (ON CONFLICT DO NOTHING).

    Two ingests of one site (or of two sites sharing a study) can create the
    same patient, study or series between one's SELECT and its INSERT; with a
    plain INSERT the second then failed on the unique constraint.
    """
    name = connection.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing()
    return insert(table)  # pragma: no cover - the catalog supports these two


class _Hierarchy:
    """Get-or-create ids of patients, studies and series, cached for the run.

    The cache holds one entry per patient/study/series, not per file.
    """

    def __init__(self, site_id: int) -> None:
        self.site_id = site_id
        self.patients: dict[str, int] = {}
        self.studies: dict[tuple[int, str], int] = {}
        self.series: dict[tuple[int, str], int] = {}

    def resolve(self, connection: Connection, records: list[FileRecord]) -> list[int]:
        """Return the series id of each record, creating missing rows."""
        keys = {r.patient_id or f"(none):{r.study_instance_uid}" for r in records}
        missing = sorted(keys - self.patients.keys())
        if missing:
            self._fetch_patients(connection, missing)
            new = [k for k in missing if k not in self.patients]
            if new:
                connection.execute(
                    _insert_if_absent(connection, Patient),
                    [{"site_id": self.site_id, "patient_key": k} for k in new],
                )
                self._fetch_patients(connection, new)
        study_keys = {
            (self.patients[r.patient_id or f"(none):{r.study_instance_uid}"], r.study_instance_uid)
            for r in records
        }
        missing_studies = sorted(study_keys - self.studies.keys())
        if missing_studies:
            self._fetch(
                connection,
                Study,
                Study.patient_id,
                Study.study_instance_uid,
                missing_studies,
                self.studies,
            )
            new_studies = [k for k in missing_studies if k not in self.studies]
            if new_studies:
                connection.execute(
                    _insert_if_absent(connection, Study),
                    [{"patient_id": p, "study_instance_uid": u} for p, u in new_studies],
                )
                self._fetch(
                    connection,
                    Study,
                    Study.patient_id,
                    Study.study_instance_uid,
                    new_studies,
                    self.studies,
                )
        first_of_series: dict[tuple[int, str], FileRecord] = {}
        series_of: list[tuple[int, str]] = []
        for r in records:
            study = self.studies[
                (
                    self.patients[r.patient_id or f"(none):{r.study_instance_uid}"],
                    r.study_instance_uid,
                )
            ]
            key = (study, r.series_instance_uid)
            series_of.append(key)
            first_of_series.setdefault(key, r)
        missing_series = sorted(first_of_series.keys() - self.series.keys())
        if missing_series:
            self._fetch(
                connection,
                Series,
                Series.study_id,
                Series.series_instance_uid,
                missing_series,
                self.series,
            )
            new_series = [k for k in missing_series if k not in self.series]
            if new_series:
                connection.execute(
                    _insert_if_absent(connection, Series),
                    [_series_row(k, first_of_series[k]) for k in new_series],
                )
                self._fetch(
                    connection,
                    Series,
                    Series.study_id,
                    Series.series_instance_uid,
                    new_series,
                    self.series,
                )
        return [self.series[k] for k in series_of]

    def _fetch_patients(self, connection: Connection, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            rows = connection.execute(
                select(Patient.patient_key, Patient.id).where(
                    Patient.site_id == self.site_id,
                    Patient.patient_key.in_(keys[start : start + 1000]),
                )
            )
            self.patients.update({k: int(i) for k, i in rows})

    @staticmethod
    def _fetch(
        connection: Connection,
        table: Any,
        parent: Any,
        uid: Any,
        keys: list[tuple[int, str]],
        cache: dict[tuple[int, str], int],
    ) -> None:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            rows = connection.execute(
                select(parent, uid, table.id).where(
                    parent.in_({p for p, _ in chunk}), uid.in_({u for _, u in chunk})
                )
            )
            wanted = set(chunk)
            for p, u, i in rows:
                if (p, u) in wanted:
                    cache[(int(p), str(u))] = int(i)


def _series_row(key: tuple[int, str], r: FileRecord) -> dict[str, Any]:
    return {
        "study_id": key[0],
        "series_instance_uid": key[1],
        "modality": r.modality[:16] or None,
        "series_number": r.series_number,
        "series_description": r.series_description[:256] or None,
        "image_type": (r.image_type or "")[:256] or None,
        "body_part_examined": (r.body_part_examined or "")[:64] or None,
        "contrast_bolus_agent": (r.contrast_bolus_agent or "")[:128] or None,
        "convolution_kernel": (r.convolution_kernel or "")[:64] or None,
        "slice_thickness": r.slice_thickness,
        "spacing_between_slices": r.spacing_between_slices,
        "gantry_detector_tilt": r.gantry_detector_tilt,
        "selected": False,
    }


def _instance_row(r: FileRecord, series_id: int) -> dict[str, Any]:
    ipp = r.image_position_patient
    return {
        "series_id": series_id,
        "path": r.path,
        "sop_instance_uid": r.sop_instance_uid,
        "instance_number": r.instance_number,
        "position_x": ipp[0] if ipp else None,
        "position_y": ipp[1] if ipp else None,
        "position_z": ipp[2] if ipp else None,
        "image_orientation_patient": r.image_orientation_patient,
        "pixel_spacing": r.pixel_spacing,
        "rows": r.rows,
        "columns": r.columns,
        "transfer_syntax_uid": r.transfer_syntax_uid[:64] or None,
        "size_bytes": r.size_bytes,
        "mtime_ns": r.mtime_ns,
        "checksum": r.checksum,
        "changed": False,
    }


class _Runner:
    """Runs per-file work in this process or in a pool, a chunk at a time."""

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.pool: Executor | None = None

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> Executor:
        if self.pool is None:
            import multiprocessing

            self.pool = ProcessPoolExecutor(
                max_workers=self.config.n_workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self.pool

    def submit(self, fn: Callable[..., Any], items: list[Any], *args: Any) -> list[Future[Any]]:
        if not items:
            return []
        # Starting worker processes costs about a second (imports); small batches
        # are read here instead.
        small = len(items) < max(
            2 * self.config.chunk_size, self.config.min_parallel * self.config.n_workers
        )
        if self.config.n_workers <= 1 or small:
            done: Future[Any] = Future()
            done.set_result(fn(items, *args))
            return [done]
        pool = self._executor()
        step = self.config.chunk_size
        return [pool.submit(fn, items[i : i + step], *args) for i in range(0, len(items), step)]


@dataclass(slots=True)
class _Pending:
    new: list[Future[Any]]
    stale: list[_Entry]
    stale_checks: list[Future[Any]]
    stale_rows: dict[str, tuple[int, str | None]]
    n: int


def ingest(
    engine: Engine,
    root: str | os.PathLike[str],
    *,
    site: str,
    config: IngestConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Catalog every DICOM file under ``root`` for ``site``.

    Parameters
    ----------
    engine
        An open catalog (:func:`ichkit.catalog.open_catalog`).
    root
        Folder to walk (any depth; file names do not matter).
    site
        The site the files come from; created on first use.
    config
        Batch size, workers and checksum algorithm (:class:`IngestConfig`).
    progress
        Called with the number of files handled after each batch.

    Returns
    -------
    IngestReport
        Counts, unreadable and changed files with reasons, UID collisions.

    Raises
    ------
    CatalogError
        ``root`` is not a folder, or the site name is invalid.
    """
    config = config or IngestConfig()
    root_path = Path(root)
    if not root_path.is_dir():
        raise CatalogError("not a folder", path=root_path, field="DIR")
    report = IngestReport(site=site, root=str(root_path.resolve()))
    checksum = None if config.checksum == "none" else config.checksum
    start = time.perf_counter()
    with engine.begin() as connection:
        site_id = get_or_create_site(connection, site)
    hierarchy = _Hierarchy(site_id)
    queue: deque[_Pending] = deque()

    with _Runner(config) as runner:
        for batch in _batched(walk_files(root_path), config.batch_size):
            report.seen += len(batch)
            candidates = []
            for e in batch:
                if os.path.splitext(e.path)[1].lower() in NOT_DICOM_SUFFIXES:
                    report.skipped += 1
                else:
                    candidates.append(e)
            with engine.connect() as connection:
                known = _known(connection, [e.path for e in candidates])
            new = [(e.path, e.size, e.mtime_ns) for e in candidates if e.path not in known]
            stale: list[_Entry] = []
            for e in candidates:
                row = known.get(e.path)
                if row is None:
                    continue
                if (row[0], row[1]) == (e.size, e.mtime_ns):
                    report.unchanged += 1
                else:
                    stale.append(e)
            pending = _Pending(
                new=runner.submit(read_many, new, checksum),
                stale=stale,
                stale_checks=(
                    runner.submit(checksum_many, [e.path for e in stale], checksum)
                    if checksum
                    else []
                ),
                stale_rows={e.path: (known[e.path][2], known[e.path][3]) for e in stale},
                n=len(batch),
            )
            queue.append(pending)
            # Keep one batch reading while the previous one is written.
            if len(queue) > 1:
                _finish(engine, queue.popleft(), site_id, hierarchy, report, checksum, progress)
        while queue:
            _finish(engine, queue.popleft(), site_id, hierarchy, report, checksum, progress)

    with engine.connect() as connection:
        report.collisions.extend(
            find_uid_collisions(connection, site=site, levels=("study", "series"))
        )
    report.seconds = time.perf_counter() - start
    logger.info("%s", report.summary())
    return report


def _known(connection: Connection, paths: list[str]) -> dict[str, tuple[int, int, int, str | None]]:
    out: dict[str, tuple[int, int, int, str | None]] = {}
    for start in range(0, len(paths), 5000):
        rows = connection.execute(
            select(
                Instance.path,
                Instance.size_bytes,
                Instance.mtime_ns,
                Instance.id,
                Instance.checksum,
            ).where(Instance.path.in_(paths[start : start + 5000]))
        )
        for path, size, mtime, iid, digest in rows:
            out[str(path)] = (int(size), int(mtime), int(iid), digest)
    return out


def _finish(
    engine: Engine,
    pending: _Pending,
    site_id: int,
    hierarchy: _Hierarchy,
    report: IngestReport,
    checksum: str | None,
    progress: Callable[[int], None] | None,
) -> None:
    records: list[FileRecord] = []
    failures: list[FileFailure] = []
    for future in pending.new:
        for item in future.result():
            (records if isinstance(item, FileRecord) else failures).append(item)
    changed: list[tuple[int, str, str]] = []
    touched: list[tuple[int, _Entry]] = []
    if pending.stale:
        digests: list[str | FileFailure] = []
        for future in pending.stale_checks:
            digests.extend(future.result())
        for i, e in enumerate(pending.stale):
            iid, old = pending.stale_rows[e.path]
            if checksum is None:
                changed.append((iid, e.path, "size or modification time changed"))
                continue
            now = digests[i]
            if isinstance(now, FileFailure):
                failures.append(now)
            elif now == old:
                touched.append((iid, e))
            else:
                changed.append(
                    (iid, e.path, f"content changed since ingest: checksum {old} is now {now}")
                )

    with engine.begin() as connection:
        # Files seen twice in one batch cannot happen (paths are unique); SOPs can.
        by_sop = Counter(r.sop_instance_uid for r in records)
        repeated = _check_sops(connection, site_id, records, by_sop, report)
        if repeated:
            # An image already catalogued at this site (the same exam copied to
            # another folder, sent twice): a second row would make QC see duplicate
            # positions and its labels ambiguous. The first one stays; this one is
            # listed as duplicate_sop and not added.
            records = [r for r in records if r.path not in repeated]
            report.skipped += len(repeated)
        if records:
            series_ids = hierarchy.resolve(connection, records)
            connection.execute(
                _insert_if_absent(connection, Instance),  # a path another ingest just added
                [_instance_row(r, s) for r, s in zip(records, series_ids, strict=True)],
            )
            connection.execute(
                delete(IngestIssue).where(
                    IngestIssue.site_id == site_id,
                    IngestIssue.kind == IssueKind.UNREADABLE.value,
                    IngestIssue.path.in_([r.path for r in records]),
                )
            )
        if touched:
            for iid, e in touched:
                connection.execute(
                    update(Instance)
                    .where(Instance.id == iid)
                    .values(size_bytes=e.size, mtime_ns=e.mtime_ns)
                )
            report.touched += len(touched)
        if changed:
            connection.execute(
                update(Instance)
                .where(Instance.id.in_([iid for iid, _, _ in changed]))
                .values(changed=True)
            )
            _replace_issues(connection, site_id, IssueKind.CHANGED, [(p, d) for _, p, d in changed])
            report.n_changed += len(changed)
            _extend(report.changed, [(p, d) for _, p, d in changed])
            for _, path, detail in changed[:5]:
                logger.warning("%s: %s", path, detail)
        if failures:
            _replace_issues(
                connection, site_id, IssueKind.UNREADABLE, [(f.path, f.reason) for f in failures]
            )
            report.n_unreadable += len(failures)
            _extend(report.unreadable, [(f.path, f.reason) for f in failures])
            for f in failures[:5]:
                logger.warning("%s: skipped: %s", f.path, f.reason)
    report.added += len(records)
    if progress is not None:
        progress(pending.n)


def _extend(target: list[tuple[str, str]], items: list[tuple[str, str]]) -> None:
    room = REPORT_LIMIT - len(target)
    if room > 0:
        target.extend(items[:room])


def _replace_issues(
    connection: Connection, site_id: int, kind: IssueKind, items: list[tuple[str, str]]
) -> None:
    paths = [p for p, _ in items]
    connection.execute(
        delete(IngestIssue).where(
            IngestIssue.site_id == site_id,
            IngestIssue.kind == kind.value,
            IngestIssue.path.in_(paths),
        )
    )
    connection.execute(
        insert(IngestIssue),
        [{"site_id": site_id, "path": p, "kind": kind.value, "detail": d} for p, d in items],
    )


def _check_sops(
    connection: Connection,
    site_id: int,
    records: list[FileRecord],
    by_sop: Counter[str],
    report: IngestReport,
) -> set[str]:
    """Report SOPInstanceUIDs already catalogued (other site: collision; same: duplicate).

    Returns the paths not to add: each record whose SOPInstanceUID this site
    already has (catalogued earlier, or an earlier record of this batch).
    """
    repeated: set[str] = set()
    if not records:
        return repeated
    sops = list(by_sop)
    seen: dict[str, list[tuple[str, str]]] = {}
    for start in range(0, len(sops), 5000):
        rows = connection.execute(
            select(Instance.sop_instance_uid, Site.name, Instance.path)
            .join(Series, Instance.series_id == Series.id)
            .join(Study, Series.study_id == Study.id)
            .join(Patient, Study.patient_id == Patient.id)
            .join(Site, Patient.site_id == Site.id)
            .where(Instance.sop_instance_uid.in_(sops[start : start + 5000]))
        )
        for sop, name, path in rows:
            seen.setdefault(str(sop), []).append((str(name), str(path)))
    site_name = connection.execute(select(Site.name).where(Site.id == site_id)).scalar_one()
    issues: list[tuple[str, str, IssueKind]] = []
    first_in_batch: dict[str, str] = {}
    for r in records:
        # the same path catalogued meanwhile (another ingest of this tree) is not a copy
        earlier = [(n, q) for n, q in seen.get(r.sop_instance_uid, []) if q != r.path]
        first = first_in_batch.setdefault(r.sop_instance_uid, r.path)
        if any(n == site_name for n, _ in earlier) or first != r.path:
            repeated.add(r.path)
        if by_sop[r.sop_instance_uid] > 1:
            earlier = earlier + [
                (site_name, o.path)
                for o in records
                if o.sop_instance_uid == r.sop_instance_uid and o.path != r.path
            ]
        if not earlier:
            continue
        sites = tuple(sorted({s for s, _ in earlier} | {site_name}))
        paths = tuple(sorted({p for _, p in earlier} | {r.path}))
        if len(sites) > 1:
            item = UidCollision("instance", r.sop_instance_uid, sites, paths)
            report.collisions.append(item)
            kind = IssueKind.UID_COLLISION
        else:
            item = UidCollision("instance", r.sop_instance_uid, sites, paths)
            report.duplicates.append(item)
            kind = IssueKind.DUPLICATE_SOP
        issues.append((r.path, str(item), kind))
        logger.warning("%s", item)
    for kind in (IssueKind.UID_COLLISION, IssueKind.DUPLICATE_SOP):
        items = [(p, d) for p, d, k in issues if k is kind]
        if items:
            _replace_issues(connection, site_id, kind, items)
    return repeated


def find_uid_collisions(
    connection: Connection,
    *,
    site: str | None = None,
    levels: Iterable[str] = ("study", "series", "instance"),
) -> list[UidCollision]:
    """Find UIDs catalogued under more than one site.

    Parameters
    ----------
    connection
        An open connection to the catalog.
    site
        Only report collisions that involve this site.
    levels
        Which UIDs to check: ``study`` (StudyInstanceUID), ``series``
        (SeriesInstanceUID), ``instance`` (SOPInstanceUID).

    Returns
    -------
    list of UidCollision
        One per colliding UID, sorted by level then UID.
    """
    out: list[UidCollision] = []
    for level in levels:
        if level == "study":
            uid_col: Any = Study.study_instance_uid
            base = select(uid_col, Site.name).join(Patient, Study.patient_id == Patient.id)
        elif level == "series":
            uid_col = Series.series_instance_uid
            base = (
                select(uid_col, Site.name)
                .join(Study, Series.study_id == Study.id)
                .join(Patient, Study.patient_id == Patient.id)
            )
        elif level == "instance":
            uid_col = Instance.sop_instance_uid
            base = (
                select(uid_col, Site.name)
                .join(Series, Instance.series_id == Series.id)
                .join(Study, Series.study_id == Study.id)
                .join(Patient, Study.patient_id == Patient.id)
            )
        else:
            raise CatalogError(
                f"unknown level {level!r}; expected study, series or instance",
                field="levels",
                value=level,
            )
        base = base.join(Site, Patient.site_id == Site.id)
        sub = base.subquery()
        multi = (
            select(sub.c[0], sub.c[1])
            .group_by(sub.c[0], sub.c[1])
            .where(
                sub.c[0].in_(
                    select(sub.c[0])
                    .group_by(sub.c[0])
                    .having(func.count(func.distinct(sub.c[1])) > 1)
                )
            )
        )
        found: dict[str, set[str]] = {}
        for uid, name in connection.execute(multi):
            found.setdefault(str(uid), set()).add(str(name))
        for uid in sorted(found):
            if site is None or site in found[uid]:
                out.append(UidCollision(level, uid, tuple(sorted(found[uid]))))
    return out
