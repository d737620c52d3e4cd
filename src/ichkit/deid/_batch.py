"""De-identify a folder tree: walk, parallel or Dask work, reports, resume (the I/O shell).

The walk is lazy and sorted; at most ``max_in_flight`` tasks per worker are in
flight and results are consumed in walk order, so the reports come out in the
same order on every run whatever the number of workers, and memory stays flat.
Workers read, check, de-identify and write each file to a temporary name beside
its destination; the parent renames it into place (after checking that no other
input already claimed that output), writes the report rows as it goes and the
mapping store in batches.

Outputs: ``DST/<patient>/<study>/<series>/<sop>.dcm`` (pseudonyms only),
``DST/deid-report.csv`` (input path as a keyed token ``in-<hex>``, output path,
status, reason), ``DST/deid-config.json``. Site side, outside DST: the quarantine
folder (copies of quarantined inputs under ``files/`` and ``deid-site-report.csv``
with the original input paths) and the mapping store beside the key.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError

from ichkit._atomic import atomic_open, atomic_write_text
from ichkit.deid._config import DeidConfig
from ichkit.deid._engine import DeidResult, Reason, Status, check_accept, deidentify_dataset
from ichkit.deid._profile import Profile, load_profile
from ichkit.deid._pseudonym import Pseudonymizer, SiteKey, read_key
from ichkit.deid._store import FileRecord, MappingRow, MappingStore, store_path_for
from ichkit.deid._writer import write_deidentified
from ichkit.errors import ConfigError

__all__ = ["DeidSummary", "FileOutcome", "deidentify_file", "deidentify_tree"]

logger = logging.getLogger(__name__)

REPORT_NAME = "deid-report.csv"
SITE_REPORT_NAME = "deid-site-report.csv"
CONFIG_NAME = "deid-config.json"
REPORT_COLUMNS = ("input_path", "output_path", "status", "reason")
SITE_REPORT_COLUMNS = ("input_path", "input_token", "output_path", "status", "reason", "copy")
# Outcomes per mapping-store transaction (one commit, so one round of fsyncs,
# per batch). After a crash at most this many files are done again on resume.
_FLUSH_EVERY = 1024
# Values larger than this (Pixel Data of a CT slice) are not read into memory:
# the writer copies them from the source file (bit for bit, in the kernel).
_DEFER_SIZE = 64 * 1024


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one input file.

    Attributes
    ----------
    input_path
        The input file (absolute).
    relative_path
        The input relative to SRC (posix separators).
    output_path
        The output relative to DST, or "" when not written.
    status
        deidentified, quarantined or skipped.
    reason
        Reason code ("" when de-identified).
    detail
        Detail of the reason free of patient data (goes to DST's report).
    site_detail
        Full detail (may quote the file; goes to the site report only).
    token
        Keyed token that stands for the input path in DST's report.
    copy_path
        Quarantined copy ("" if none).
    size, mtime_ns
        Input file's size and modification time (for resuming).
    mappings
        Original <-> pseudonym rows.
    temp_path
        Written output awaiting its rename (internal).
    """

    input_path: str
    relative_path: str
    output_path: str
    status: Status
    reason: str = ""
    detail: str = ""
    site_detail: str = ""
    token: str = ""
    copy_path: str = ""
    size: int = 0
    mtime_ns: int = 0
    mappings: tuple[MappingRow, ...] = ()
    temp_path: str = ""

    @property
    def report_reason(self) -> str:
        """``reason: detail`` as written in DST's report."""
        if not self.reason:
            return ""
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


@dataclass
class DeidSummary:
    """Counts and paths of a finished run."""

    dst: str
    total: int = 0
    deidentified: int = 0
    quarantined: int = 0
    skipped: int = 0
    resumed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    report_path: str | None = None
    site_report_path: str | None = None
    quarantine_dir: str | None = None
    store_path: str | None = None
    dry_run: bool = False

    @property
    def exit_status(self) -> int:
        """0 when nothing was quarantined, 3 otherwise (DESIGN.md)."""
        return 3 if self.quarantined else 0

    def add(self, outcome: FileOutcome) -> None:
        """Count one outcome."""
        self.total += 1
        if outcome.status is Status.DEIDENTIFIED:
            self.deidentified += 1
        elif outcome.status is Status.QUARANTINED:
            self.quarantined += 1
        else:
            self.skipped += 1
        if outcome.temp_path == "resumed":
            self.resumed += 1
        if outcome.reason:
            self.reasons[outcome.reason] = self.reasons.get(outcome.reason, 0) + 1


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs (pickled once per worker or per task)."""

    site: str
    secret: bytes
    profile: Profile
    dst: str
    quarantine: str
    dry_run: bool
    fsync: bool


_Task = tuple[str, str]  # (absolute input path, path relative to SRC)


class _Result(Protocol):
    def result(self) -> list[FileOutcome]: ...


class _Done:
    def __init__(self, value: list[FileOutcome]) -> None:
        self._value = value

    def result(self) -> list[FileOutcome]:
        return self._value


_PSEUDO_CACHE: dict[tuple[str, bytes], Pseudonymizer] = {}


def _pseudonymizer(job: _Job) -> Pseudonymizer:
    cache_key = (job.site, job.secret)
    pseudo = _PSEUDO_CACHE.get(cache_key)
    if pseudo is None:
        _PSEUDO_CACHE.clear()
        pseudo = _PSEUDO_CACHE[cache_key] = Pseudonymizer(SiteKey(job.site, job.secret))
    return pseudo


def _process_chunk(job: _Job, tasks: list[_Task]) -> list[FileOutcome]:
    """Worker entry point: process ``tasks`` in order."""
    pseudo = _pseudonymizer(job)
    outcomes = []
    for path, rel in tasks:
        # pydicom warns (and logs) about every deviation it meets in real-world
        # files; they are expected here and logged at debug level instead.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outcomes.append(_process_one(job, pseudo, path, rel))
        for w in caught:
            logger.debug("%s: %s", path, w.message)
    return outcomes


_WORKER_JOB: list[_Job] = []


def _init_worker(job: _Job) -> None:
    """Process-pool initializer: receive the job (key, profile) once per worker."""
    _WORKER_JOB[:] = [job]


def _process_chunk_in_worker(tasks: list[_Task]) -> list[FileOutcome]:
    return _process_chunk(_WORKER_JOB[0], tasks)


def _read(path: str) -> tuple[Any, list[str]]:
    """Read a DICOM file; return (dataset, warning messages). Raises on failure."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = dcmread(path, defer_size=_DEFER_SIZE)
        except InvalidDicomError:
            ds = dcmread(path, force=True, defer_size=_DEFER_SIZE)
            if "SOPInstanceUID" not in ds and "SOPClassUID" not in ds:
                raise
    return ds, [str(w.message) for w in caught]


def _process_one(job: _Job, pseudo: Pseudonymizer, path: str, rel: str) -> FileOutcome:
    token = pseudo.path_token(rel)
    try:
        st = os.stat(path)
    except OSError as err:
        return FileOutcome(
            path,
            rel,
            "",
            Status.SKIPPED,
            Reason.UNREADABLE,
            "cannot stat",
            f"cannot stat: {err.strerror}",
            token,
        )
    size, mtime_ns = st.st_size, st.st_mtime_ns

    def quarantine(reason: Reason, detail: str, site_detail: str = "") -> FileOutcome:
        copy = "" if job.dry_run else _copy_to_quarantine(job, path, rel)
        return FileOutcome(
            path,
            rel,
            "",
            Status.QUARANTINED,
            reason,
            detail,
            site_detail or detail,
            copy_path=copy,
            token=token,
            size=size,
            mtime_ns=mtime_ns,
        )

    try:
        ds, messages = _read(path)
    except InvalidDicomError:
        return FileOutcome(
            path,
            rel,
            "",
            Status.SKIPPED,
            Reason.NOT_DICOM,
            "not a DICOM file",
            "no DICM prefix and no DICOM dataset",
            token=token,
            size=size,
            mtime_ns=mtime_ns,
        )
    except Exception as err:  # pydicom raises many types on corrupt input
        return quarantine(Reason.UNREADABLE, type(err).__name__, f"{type(err).__name__}: {err}")
    for message in messages:
        logger.debug("%s: %s", path, message)
    if any("End of file" in m or "truncated" in m.lower() for m in messages):
        return quarantine(
            Reason.TRUNCATED,
            "file ends inside an element",
            "; ".join(m for m in messages if "End of file" in m or "truncated" in m.lower()),
        )
    short = _deferred_beyond_end(ds, size)
    if short:
        return quarantine(Reason.TRUNCATED, "file ends inside an element", short)
    try:
        refused = check_accept(ds, job.profile.accept)
    except Exception as err:
        return quarantine(Reason.UNREADABLE, type(err).__name__, f"{type(err).__name__}: {err}")
    if refused is not None:
        return quarantine(refused[0], refused[1])
    try:
        result = deidentify_dataset(ds, profile=job.profile, pseudonymizer=pseudo)
        output = _output_path(result)
        temp = "" if job.dry_run else _write_temp(job, ds, output, path)
    except OSError as err:
        return quarantine(Reason.WRITE_FAILED, err.strerror or type(err).__name__, f"{err}")
    except Exception as err:
        return quarantine(Reason.DEID_FAILED, type(err).__name__, f"{type(err).__name__}: {err}")
    return FileOutcome(
        path,
        rel,
        output,
        Status.DEIDENTIFIED,
        token=token,
        size=size,
        mtime_ns=mtime_ns,
        mappings=result.mappings,
        temp_path=temp,
    )


def _deferred_beyond_end(ds: Any, size: int) -> str:
    """Say which deferred (not yet read) value would run past the end of the file."""
    for tag, elem in ds.items():
        deferred = isinstance(elem, RawDataElement) and elem.value is None
        if deferred and elem.length not in (0, 0xFFFFFFFF) and elem.value_tell + elem.length > size:
            return (
                f"({int(tag) >> 16:04X},{int(tag) & 0xFFFF:04X}) declares {elem.length} "
                f"bytes at offset {elem.value_tell}, the file has {size}"
            )
    return ""


_MADE_DIRS: set[str] = set()


def _write_temp(job: _Job, ds: Any, output: str, source: str) -> str:
    folder, _, name = os.path.join(job.dst, output).rpartition(os.sep)
    if folder not in _MADE_DIRS:
        os.makedirs(folder, exist_ok=True)
        if len(_MADE_DIRS) > 4096:
            _MADE_DIRS.clear()
        _MADE_DIRS.add(folder)
    fd, temp = _create_temp(folder, name)
    try:
        with os.fdopen(fd, "wb") as handle:
            write_deidentified(handle, ds, source=source)
            if job.fsync:
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return temp


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_temp_counter = itertools.count()


def _create_temp(folder: str, name: str) -> tuple[int, str]:
    """Create ``folder/.<name>.<pid>-<n>.tmp`` (0666 less the umask, as ``open()``);
    return (fd, path). One open per file: no stat of the folder, no retry unless taken."""
    for _ in range(100):
        temp = f"{folder}{os.sep}.{name}.{os.getpid():x}-{next(_temp_counter):x}.tmp"
        try:
            # the umask's mode, as open() gives: these files are meant to leave
            # the site (the ones holding PHI, in the quarantine, are 0600)
            return os.open(temp, _TEMP_FLAGS, 0o666), temp
        except FileExistsError:
            continue
        except FileNotFoundError:  # the folder went away since it was made
            os.makedirs(folder, exist_ok=True)
    raise FileExistsError(f"no free temporary name for {name} in {folder}")


def _copy_to_quarantine(job: _Job, path: str, rel: str) -> str:
    """Copy a quarantined input for review; "" (and a warning) when it cannot be copied.

    A file that could not be read (no permission, vanished) must not stop the
    batch: it is still quarantined, with its reason, only without a copy.
    """
    target = Path(job.quarantine, "files", rel)
    try:
        # an original file (PHI): owner-only, in an owner-only quarantine folder
        with open(path, "rb") as source, atomic_open(target, "wb", perms=0o600) as handle:
            shutil.copyfileobj(source, handle, 1 << 20)
    except OSError as err:
        logger.warning("%s: quarantined without a copy: %s", path, err.strerror or err)
        return ""
    return str(target)


def _walk(src: Path) -> Iterator[Path]:
    """Yield every file under ``src`` in sorted order, lazily (symlinked folders not followed)."""
    if src.is_file():
        yield src
        return
    stack = [src]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            logger.warning("cannot list %s: %s", folder, err.strerror)
            continue
        subfolders = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subfolders.append(Path(entry.path))
            elif entry.is_file():
                yield Path(entry.path)
        stack.extend(reversed(subfolders))


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _check_paths(src: Path, dst: Path, key: Path, store: Path, quarantine: Path) -> None:
    if not src.exists():
        raise ConfigError("source does not exist", path=src, field="SRC")
    if dst.exists() and not dst.is_dir():
        raise ConfigError("destination exists and is not a folder", path=dst, field="DST")
    if src == dst or _inside(dst, src) or _inside(src, dst):
        raise ConfigError(
            f"SRC and DST must not contain each other (SRC {src})", path=dst, field="DST"
        )
    for name, item in (("key", key), ("mapping store", store), ("quarantine", quarantine)):
        if _inside(item, dst):
            raise ConfigError(
                f"the {name} must not be inside DST (DST is what leaves the site)",
                path=item,
                field=name,
            )
    if _inside(quarantine, src):
        raise ConfigError(
            "the quarantine must not be inside SRC", path=quarantine, field="quarantine"
        )


def _chunks(items: Iterable[FileOutcome | _Task], size: int) -> Iterator[list[FileOutcome | _Task]]:
    chunk: list[FileOutcome | _Task] = []
    for item in items:
        chunk.append(item)
        if sum(1 for c in chunk if isinstance(c, tuple)) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ordered(
    chunks: Iterable[list[FileOutcome | _Task]],
    submit: Callable[[list[_Task]], _Result],
    max_in_flight: int,
) -> Iterator[FileOutcome]:
    pending: deque[tuple[list[FileOutcome | _Task], _Result | None]] = deque()

    def merge(items: list[FileOutcome | _Task], future: _Result | None) -> Iterator[FileOutcome]:
        results = iter(future.result() if future is not None else [])
        for item in items:
            yield next(results) if isinstance(item, tuple) else item

    for items in chunks:
        tasks = [i for i in items if isinstance(i, tuple)]
        pending.append((items, submit(tasks) if tasks else None))
        while len(pending) > max_in_flight:
            yield from merge(*pending.popleft())
    while pending:
        yield from merge(*pending.popleft())


def _mp_context() -> multiprocessing.context.BaseContext:
    """forkserver where available (workers fork from a clean server that has
    imported ichkit once: fast start, no fork of a threaded parent), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["ichkit.deid._batch"])
        return context
    return multiprocessing.get_context("spawn")


@contextlib.contextmanager
def _executor(
    config: DeidConfig, job: _Job
) -> Iterator[tuple[Callable[[list[_Task]], _Result], int]]:
    """Yield (submit, max_in_flight) for the serial, process-pool or Dask backend."""
    if config.dask_address:
        try:
            from distributed import Client
        except ImportError as err:  # pragma: no cover - dask is a dependency here
            raise ConfigError("--dask needs dask[distributed] installed", field="dask") from err
        try:
            client = Client(  # type: ignore[no-untyped-call]
                config.dask_address, set_as_default=False, timeout="30s"
            )
        except (OSError, TimeoutError) as err:
            raise ConfigError(
                f"cannot reach the Dask scheduler: {err}", field="dask", value=config.dask_address
            ) from err
        try:
            n = max(1, len(client.scheduler_info().get("workers", {})))
            job_ref = client.scatter(job, broadcast=True)  # type: ignore[no-untyped-call]

            def submit_dask(tasks: list[_Task]) -> _Result:
                return client.submit(_process_chunk, job_ref, tasks, pure=False)

            yield submit_dask, n * config.max_in_flight
        finally:
            client.close()  # type: ignore[no-untyped-call]
    elif config.workers > 1:
        context = _mp_context()
        with ProcessPoolExecutor(
            max_workers=config.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(job,),
        ) as pool:

            def submit_pool(tasks: list[_Task]) -> _Result:
                return pool.submit(_process_chunk_in_worker, tasks)

            yield submit_pool, config.workers * config.max_in_flight
    else:

        def submit_serial(tasks: list[_Task]) -> _Result:
            return _Done(_process_chunk(job, tasks))

        yield submit_serial, 0


def deidentify_tree(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    key: str | os.PathLike[str],
    config: DeidConfig | None = None,
    progress: Callable[[FileOutcome], None] | None = None,
) -> DeidSummary:
    """De-identify every DICOM file under ``src`` into ``dst``.

    Parameters
    ----------
    src
        Folder (or one file) to read; never modified.
    dst
        Output folder (created); it must not contain, or be inside, ``src``.
    key
        Site key file (:func:`ichkit.deid.generate_key`); the mapping store
        lives beside it unless ``config.store`` says otherwise.
    config
        Settings; defaults when None.
    progress
        Called with each :class:`FileOutcome`, in walk order, as it is finished.

    Returns
    -------
    DeidSummary
        Counts and paths; ``exit_status`` is 0 or 3.

    Raises
    ------
    ConfigError
        For bad paths, key, profile or settings (exit status 2).
    """
    config = config or DeidConfig()
    src_path = Path(src).resolve()
    dst_path = Path(dst).resolve()
    key_path = Path(key).resolve()
    store_path = Path(config.store).resolve() if config.store else store_path_for(key_path)
    quarantine = (
        Path(config.quarantine).resolve()
        if config.quarantine
        else dst_path.parent / f"{dst_path.name}-quarantine"
    )
    _check_paths(src_path, dst_path, key_path, store_path, quarantine)
    site_key = read_key(key_path)
    profile = load_profile(config.profile)
    options = list(profile.apply_options if config.options is None else config.options)
    if config.keep_safe_private and "retain_safe_private" not in options:
        options.append("retain_safe_private")
    profile = profile.with_options(options)
    job = _Job(
        site=site_key.site,
        secret=site_key.secret,
        profile=profile,
        dst=str(dst_path),
        quarantine=str(quarantine),
        dry_run=config.dry_run,
        fsync=config.fsync,
    )
    summary = DeidSummary(dst=str(dst_path), dry_run=config.dry_run)
    pseudo = Pseudonymizer(site_key)
    settings = _settings_digest(profile, site_key)
    dst_key = str(dst_path)
    logger.info(
        "de-identifying %s with profile %s (%s; DICOM %s), options %s",
        src_path,
        profile.name,
        profile.base.get("package", "user profile"),
        profile.base.get("dicom_edition", "?"),
        ", ".join(options) or "none",
    )

    store = None if config.dry_run else MappingStore(store_path)
    try:
        # Nothing to resume from when no file was ever recorded for this DST:
        # then no per-file lookups at all.
        earlier = store if store is not None and store.has_files(dst_key) else None

        def items() -> Iterator[FileOutcome | _Task]:
            for file in _walk(src_path):
                rel = file.relative_to(src_path).as_posix() if file != src_path else file.name
                done = _resumed(earlier, dst_key, dst_path, quarantine, settings, pseudo, file, rel)
                yield done if done is not None else (str(file), rel)

        if config.dry_run:
            with _executor(config, job) as (submit, in_flight):
                for outcome in _ordered(_chunks(items(), config.chunk_size), submit, in_flight):
                    summary.add(outcome)
                    if progress is not None:
                        progress(outcome)
            return summary

        if store is None:  # pragma: no cover - only None in a dry run
            raise RuntimeError("mapping store not open")
        if not quarantine.exists():  # originals and the site report (PHI) live here
            quarantine.parent.mkdir(parents=True, exist_ok=True)
            quarantine.mkdir(mode=0o700)  # an existing one keeps the site's own modes
        dst_path.mkdir(parents=True, exist_ok=True)
        summary.report_path = str(dst_path / REPORT_NAME)
        summary.site_report_path = str(quarantine / SITE_REPORT_NAME)
        summary.quarantine_dir = str(quarantine)
        summary.store_path = str(store_path)
        with (
            atomic_open(summary.report_path, "w") as report_handle,
            atomic_open(summary.site_report_path, "w", perms=0o600) as site_handle,
            _executor(config, job) as (submit, in_flight),
        ):
            report = _csv_writer(report_handle, REPORT_COLUMNS)
            site = _csv_writer(site_handle, SITE_REPORT_COLUMNS)
            batch: list[FileOutcome] = []
            claimed: dict[str, str] = {}
            sops: dict[str, str] = {}  # the whole run (~100 bytes per file)
            for outcome in _ordered(_chunks(items(), config.chunk_size), submit, in_flight):
                outcome = _finish(outcome, job, store, dst_key, claimed, sops)
                summary.add(outcome)
                report.writerow(
                    (
                        outcome.token,
                        outcome.output_path,
                        outcome.status.value,
                        outcome.report_reason,
                    )
                )
                site.writerow(
                    (
                        outcome.input_path,
                        outcome.token,
                        outcome.output_path,
                        outcome.status.value,
                        f"{outcome.reason}: {outcome.site_detail}" if outcome.reason else "",
                        outcome.copy_path,
                    )
                )
                batch.append(outcome)
                if len(batch) >= _FLUSH_EVERY:
                    _flush(store, dst_key, settings, pseudo, batch)
                    batch, claimed = [], {}
                if progress is not None:
                    progress(outcome)
            _flush(store, dst_key, settings, pseudo, batch)
        saved = {
            "config": config.to_dict(),
            "profile": {
                "name": profile.name,
                "sha256": profile.sha256,
                **dict(profile.base),
                "options": options,
            },
            "site": site_key.site,
            "key_fingerprint": site_key.fingerprint,
            "ichkit_version": _version(),
        }
        atomic_write_text(
            dst_path / CONFIG_NAME, json.dumps(saved, indent=1, sort_keys=True) + "\n"
        )
    finally:
        if store is not None:
            store.close()
    logger.info(
        "%d files: %d de-identified, %d quarantined, %d skipped (%d resumed)",
        summary.total,
        summary.deidentified,
        summary.quarantined,
        summary.skipped,
        summary.resumed,
    )
    return summary


def _version() -> str:
    from ichkit import __version__

    return __version__


def _csv_writer(handle: IO[Any], columns: tuple[str, ...]) -> Any:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)
    return writer


def _settings_digest(profile: Profile, key: SiteKey) -> str:
    """What an output depends on besides its input: the profile file, the options
    applied and the site key. A file is resumed only when all three are unchanged."""
    text = "\0".join([profile.sha256, ",".join(profile.apply_options), key.fingerprint])
    return hashlib.sha256(text.encode()).hexdigest()


def _resumed(
    store: MappingStore | None,
    dst_key: str,
    dst: Path,
    quarantine: Path,
    settings: str,
    pseudo: Pseudonymizer,
    file: Path,
    rel: str,
) -> FileOutcome | None:
    """Return the earlier outcome of ``file`` if it still holds, else None."""
    if store is None:
        return None
    record = store.file_record(dst_key, str(file))
    if record is None or record.profile_sha256 != settings:
        return None
    try:
        st = file.stat()
    except OSError:
        return None
    if st.st_size != record.size or st.st_mtime_ns != record.mtime_ns:
        return None
    status = Status(record.status)
    copy = ""
    if status is Status.DEIDENTIFIED and not (dst / record.output).is_file():
        return None
    if status is Status.QUARANTINED:
        copy_path = quarantine / "files" / rel
        if not copy_path.is_file():
            return None
        copy = str(copy_path)
    reason, _, detail = record.reason.partition(": ")
    return FileOutcome(
        str(file),
        rel,
        record.output,
        status,
        reason,
        detail,
        detail,
        pseudo.path_token(rel),
        copy,
        record.size,
        record.mtime_ns,
        temp_path="resumed",
    )


def _finish(
    outcome: FileOutcome,
    job: _Job,
    store: MappingStore,
    dst_key: str,
    claimed: dict[str, str],
    sops: dict[str, str] | None = None,
) -> FileOutcome:
    """Rename a written output into place unless another input owns that output.

    ``sops`` (output file name, i.e. the pseudonymous SOPInstanceUID, → input)
    spans the whole run: two inputs with one SOPInstanceUID in different series
    have different output paths but must not both be written.
    """
    sops = {} if sops is None else sops
    if outcome.status is not Status.DEIDENTIFIED or outcome.temp_path in ("", "resumed"):
        if outcome.status is Status.DEIDENTIFIED and outcome.output_path:
            sops.setdefault(outcome.output_path.rsplit("/", 1)[-1], outcome.input_path)
        return outcome
    name = outcome.output_path.rsplit("/", 1)[-1]
    owner = (
        claimed.get(outcome.output_path)
        or sops.get(name)
        or store.output_owner(dst_key, outcome.output_path)
    )
    if owner is not None and owner != outcome.input_path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(outcome.temp_path)
        copy = _copy_to_quarantine(job, outcome.input_path, outcome.relative_path)
        detail = "another input has the same SOPInstanceUID"
        return FileOutcome(
            outcome.input_path,
            outcome.relative_path,
            "",
            Status.QUARANTINED,
            Reason.DUPLICATE_INSTANCE,
            detail,
            f"{detail}: {owner}",
            outcome.token,
            copy,
            outcome.size,
            outcome.mtime_ns,
        )
    os.replace(outcome.temp_path, Path(job.dst, outcome.output_path))
    claimed[outcome.output_path] = outcome.input_path
    sops[name] = outcome.input_path
    return outcome


def _flush(
    store: MappingStore,
    dst_key: str,
    settings: str,
    pseudo: Pseudonymizer,
    batch: list[FileOutcome],
) -> None:
    rows: list[MappingRow] = []
    records: list[tuple[str, FileRecord]] = []
    for outcome in batch:
        if outcome.temp_path == "resumed":
            continue
        rows.extend(outcome.mappings)
        rows.append(MappingRow("path", outcome.input_path, outcome.token))
        records.append(
            (
                outcome.input_path,
                FileRecord(
                    outcome.size,
                    outcome.mtime_ns,
                    settings,
                    outcome.output_path,
                    outcome.status.value,
                    outcome.report_reason,
                ),
            )
        )
    store.add_batch(rows, dst_key, records)


def deidentify_file(
    path: str | os.PathLike[str], *, key: SiteKey, profile: Profile | None = None
) -> tuple[Any, str]:
    """De-identify one file in memory; return (dataset, output path relative to DST).

    Raises
    ------
    ichkit.errors.DicomError
        If the file cannot be read or would be quarantined.
    """
    from ichkit.errors import DicomError, NotDicomError

    profile = profile or load_profile()
    try:
        ds, _ = _read(os.fspath(path))
    except InvalidDicomError as err:
        raise NotDicomError("not a DICOM file", path=path) from err
    refused = check_accept(ds, profile.accept)
    if refused is not None:
        raise DicomError(
            f"would be quarantined: {refused[0]}: {refused[1]}", path=path, value=refused[0].value
        )
    result = deidentify_dataset(ds, profile=profile, pseudonymizer=Pseudonymizer(key))
    return ds, _output_path(result)


def _output_path(result: DeidResult) -> str:
    return "/".join(
        (
            result.patient,
            result.study_instance_uid,
            result.series_instance_uid,
            f"{result.sop_instance_uid}.dcm",
        )
    )
