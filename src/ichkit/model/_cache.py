"""The preprocessing cache: each series decoded once, cropped, resized, stored as .npy.

Training reads every series once per epoch; decoding DICOM each time (pydicom,
HU conversion, head crop, resize) costs far more than the network on small
inputs. The cache stores, per series, the int16 HU volume at the input size
(``<cache>/v1-<size>px/<key>.npy``, opened memory-mapped) and a JSON sidecar
(UIDs, crop box, slice spacing and positions, and a fingerprint of the source
files' names, sizes and times, so that a series written again is rebuilt).
Windows are applied by the model, so one cache serves every window set; a
different input size or head
crop gets its own folder (``v1-<size>px-fit`` for the ``fit`` crop). Series are built in
parallel worker processes; a series already cached is not rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ichkit.model._data import SeriesFiles
from ichkit.model._preprocess import CropBox, preprocess_volume

__all__ = [
    "CACHE_VERSION",
    "CachedSeries",
    "build_cache",
    "cache_folder",
    "fingerprint_of",
    "source_fingerprint",
]

logger = logging.getLogger(__name__)

#: Bumped when the preprocessing changes, so old caches are not reused.
CACHE_VERSION = 1


@dataclass(frozen=True)
class CachedSeries:
    """One preprocessed series in the cache.

    Parameters
    ----------
    key
        File stem in the cache folder.
    path
        The ``.npy`` file: int16 HU, (slices, size, size).
    series_instance_uid, study_instance_uid, patient_id
        Identification.
    sop_instance_uids
        One per slice, in the volume's order (inferior → superior).
    box
        The crop of the original images.
    slice_mm
        The series' slice spacing (median gap of the positions, mm; NaN when
        unknown, or when the sidecar was written by an ichkit that did not
        record it: such caches are still used, and the model then records no
        training slice spacing).
    positions
        Each slice's position along the slice normal (mm), in the volume's
        order; None when unknown or not recorded (an older ichkit's sidecar).
    source
        :func:`source_fingerprint` of the files the entry was built from (None
        in an older ichkit's sidecar): a series whose files have changed since
        (same names, new content, e.g. a dataset generated again) is rebuilt.
    """

    key: str
    path: Path
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    sop_instance_uids: tuple[str, ...]
    box: CropBox
    slice_mm: float = math.nan
    positions: tuple[float, ...] | None = None
    source: str | None = None

    def slice_positions(self) -> npt.NDArray[np.float64] | None:
        """The slices' positions along the normal (mm), or None when unknown.

        A sidecar without positions (an older ichkit's) gives evenly spaced
        ones from ``slice_mm`` when that is known.
        """
        if self.positions is not None and len(self.positions) == self.n_slices:
            return np.asarray(self.positions, dtype=np.float64)
        if math.isfinite(self.slice_mm) and self.slice_mm > 0:
            return np.arange(self.n_slices, dtype=np.float64) * self.slice_mm
        return None

    @property
    def n_slices(self) -> int:
        """Number of slices."""
        return len(self.sop_instance_uids)

    def load(self, *, mmap: bool = True) -> npt.NDArray[np.int16]:
        """The volume, memory-mapped (read-only) by default."""
        arr: npt.NDArray[np.int16] = np.load(self.path, mmap_mode="r" if mmap else None)
        return arr


def source_fingerprint(files: Sequence[str | os.PathLike[str]]) -> str:
    """A digest of the files' names, sizes and modification times (no content is read).

    Moving a dataset keeps it (names, sizes and times travel with ``mv``,
    ``cp -p`` and ``rsync -a``); writing a file again changes it.
    """
    return fingerprint_of(
        (os.path.basename(p), st.st_size, st.st_mtime_ns) for p in files for st in [os.stat(p)]
    )


def fingerprint_of(entries: Iterable[tuple[str, int, int]]) -> str:
    """:func:`source_fingerprint` of (base name, size, mtime in ns) entries already known."""
    h = hashlib.sha1()
    for name, size, mtime_ns in entries:
        h.update(f"{name}\0{size}\0{mtime_ns}\n".encode())
    return h.hexdigest()


def _reusable(cached: CachedSeries | None, series: SeriesFiles) -> bool:
    """Whether a cache entry was built from these very files."""
    if cached is None or cached.series_instance_uid != series.series_instance_uid:
        return False
    if cached.source is not None:
        return cached.source == (series.source or source_fingerprint(series.files))
    # an older sidecar: at least its images must be this series' images
    return set(cached.sop_instance_uids) <= set(series.sop_instance_uids)


def cache_folder(cache_dir: str | os.PathLike[str], size: int, crop: str = "square") -> Path:
    """The folder holding the cache of one input size and crop (``square`` keeps the old name)."""
    suffix = "" if crop == "square" else f"-{crop}"
    return Path(cache_dir) / f"v{CACHE_VERSION}-{size}px{suffix}"


def _meta_path(folder: Path, key: str) -> Path:
    return folder / f"{key}.json"


def _read_meta(folder: Path, key: str) -> CachedSeries | None:
    meta = _meta_path(folder, key)
    npy = folder / f"{key}.npy"
    if not (meta.is_file() and npy.is_file()):
        return None
    try:
        d = json.loads(meta.read_text(encoding="utf-8"))
        return CachedSeries(
            key=key,
            path=npy,
            series_instance_uid=d["series_instance_uid"],
            study_instance_uid=d["study_instance_uid"],
            patient_id=d["patient_id"],
            sop_instance_uids=tuple(d["sop_instance_uids"]),
            box=CropBox.from_dict(d["box"]),
            slice_mm=float(d["slice_mm"]) if d.get("slice_mm") is not None else math.nan,
            positions=tuple(float(x) for x in d["positions"])
            if d.get("positions") is not None
            else None,
            source=d.get("source"),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning("%s: unreadable cache entry, rebuilding: %s", meta, err)
        return None


def _build_one(job: tuple[SeriesFiles, str, int, str]) -> CachedSeries:
    from ichkit._atomic import atomic_open, atomic_write_text
    from ichkit.dicom import load_series

    series, folder_text, size, crop = job
    folder = Path(folder_text)
    source = source_fingerprint(series.files)  # before reading: a later change rebuilds
    loaded = load_series(list(series.files), series_instance_uid=series.series_instance_uid)
    volume, box = preprocess_volume(loaded.hu, size=size, crop=crop)
    slice_mm = float(loaded.spacing[0])
    rounded = tuple(round(float(x), 4) for x in loaded.positions)
    known = len(rounded) == len(loaded.sop_instance_uids) and all(map(math.isfinite, rounded))
    positions = rounded if known else None
    with atomic_open(folder / f"{series.key}.npy", "wb") as handle:
        np.save(handle, volume)
    meta = {
        "series_instance_uid": series.series_instance_uid,
        "study_instance_uid": series.study_instance_uid,
        "patient_id": series.patient_id,
        "sop_instance_uids": list(loaded.sop_instance_uids),
        "box": box.to_dict(),
        "findings": [str(f) for f in loaded.findings],
        "slice_mm": slice_mm if math.isfinite(slice_mm) else None,
        "positions": None if positions is None else list(positions),
        "source": source,
    }
    atomic_write_text(_meta_path(folder, series.key), json.dumps(meta))
    return CachedSeries(
        key=series.key,
        path=folder / f"{series.key}.npy",
        series_instance_uid=series.series_instance_uid,
        study_instance_uid=series.study_instance_uid,
        patient_id=series.patient_id,
        sop_instance_uids=tuple(loaded.sop_instance_uids),
        box=box,
        slice_mm=slice_mm,
        positions=positions,
        source=source,
    )


def _worker_init() -> None:
    """One thread per worker, for torch and for the BLAS libraries (numpy's, scipy's).

    The resize is a BLAS matrix product: OpenBLAS would start a thread per
    core in every worker, and two workers of two threads on two cores built
    the cache 3.9x slower than with one thread each (benchmarks/RESULTS.md).
    scipy is imported first so that the limit also covers its own OpenBLAS.
    """
    import scipy.ndimage  # type: ignore[import-untyped]  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    torch.set_num_threads(1)
    threadpool_limits(limits=1)


def build_cache(
    series: Sequence[SeriesFiles],
    cache_dir: str | os.PathLike[str],
    *,
    size: int,
    crop: str = "square",
    workers: int = 1,
    on_done: Callable[[CachedSeries], None] | None = None,
) -> list[CachedSeries]:
    """Decode, crop and resize every series into the cache (skipping cached ones).

    Parameters
    ----------
    series
        From :func:`ichkit.model._data.discover_series`.
    cache_dir
        Cache root; the volumes go to :func:`cache_folder`.
    size
        Input size in pixels.
    crop
        Head crop (:data:`ichkit.model._preprocess.CROPS`); each crop has its own folder.
    workers
        Worker processes (spawned, one torch thread each); 1 builds in this process.
    on_done
        Called with each series when it is ready (cached or built).

    Returns
    -------
    list of CachedSeries
        In the order of ``series``.
    """
    folder = cache_folder(cache_dir, size, crop)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, CachedSeries] = {}
    todo: list[SeriesFiles] = []
    for s in series:
        cached = _read_meta(folder, s.key)
        if cached is not None and _reusable(cached, s):
            out[s.key] = cached
            if on_done is not None:
                on_done(cached)
        else:
            todo.append(s)
    if todo:
        logger.info(
            "caching %d series at %d px in %s (%d workers)", len(todo), size, folder, workers
        )
    jobs = [(s, os.fspath(folder), size, crop) for s in todo]
    if workers <= 1 or len(todo) <= 1:
        for job in jobs:
            done = _build_one(job)
            out[done.key] = done
            if on_done is not None:
                on_done(done)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_worker_init
        ) as pool:
            for done in pool.map(_build_one, jobs, chunksize=4):
                out[done.key] = done
                if on_done is not None:
                    on_done(done)
    return [out[s.key] for s in series]
