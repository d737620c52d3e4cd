"""Discovery: walk a tree, read headers only, group the files into series.

Built to stream over very large trees (the RSNA 2019 stage 2 layout holds
874k flat ``ID_*.dcm`` files): files are listed with ``os.scandir``, headers
are read one at a time (or in worker processes) and only the grouped
per-series records are kept.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ichkit.dicom._findings import Finding, FindingKind
from ichkit.dicom._geometry import assemble
from ichkit.dicom._header import SliceHeader, read_header
from ichkit.dicom._hu import has_rsna_12bit_quirk
from ichkit.dicom._series import iter_files
from ichkit.errors import DicomError, SeriesError

__all__ = [
    "ScanResult",
    "SeriesRecord",
    "UnreadableFile",
    "group_series",
    "iter_headers",
    "scan_series",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UnreadableFile:
    """A file the scan could not use, and why.

    Parameters
    ----------
    path
        The file.
    reason
        The error message (names the file, the field and the value).
    error
        The error's class name, e.g. ``NotDicomError``.
    """

    path: Path
    reason: str
    error: str


@dataclass(frozen=True)
class SeriesRecord:
    """One series found by a header scan.

    Parameters
    ----------
    patient_id, study_instance_uid, series_instance_uid, modality, series_description
        Identification (PS3.3 C.7.1.1, C.7.2.1, C.7.3.1).
    n_slices
        Number of slices kept (after dropping duplicates, odd sizes, …).
    slice_spacing
        Median gap between projected ImagePositionPatient, mm (NaN if unknown).
    findings
        Problems seen in the headers (no pixel data is read).
    files
        The kept files, ordered along the slice normal.
    n_files
        Number of files of this SeriesInstanceUID, kept or not.
    left_out
        The files of this SeriesInstanceUID that were not kept (duplicate
        positions, odd sizes or orientations, no position), named in ``findings``.
    normal
        The unit slice normal of the kept slices (row x column cosines of
        ImageOrientationPatient), None without orientation.
    image_type
        ImageType (0008,0008) of the first kept slice, e.g. ``("ORIGINAL",
        "PRIMARY", "AXIAL")``; empty when absent.
    """

    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    series_description: str
    n_slices: int
    slice_spacing: float
    findings: list[Finding] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    n_files: int = 0
    left_out: list[Path] = field(default_factory=list)
    normal: tuple[float, float, float] | None = None
    image_type: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (paths as strings, NaN spacing as None)."""
        spacing = None if self.slice_spacing != self.slice_spacing else self.slice_spacing
        return {
            "patient_id": self.patient_id,
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "modality": self.modality,
            "series_description": self.series_description,
            "n_slices": self.n_slices,
            "n_files": self.n_files,
            "slice_spacing": spacing,
            "findings": [{"kind": str(f.kind), "detail": f.detail} for f in self.findings],
            "files": [str(p) for p in self.files],
        }


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan_series` found.

    Parameters
    ----------
    series
        One record per SeriesInstanceUID, sorted by patient, study, series.
    unreadable
        Files that could not be read as DICOM headers, with reasons.
    """

    series: list[SeriesRecord]
    unreadable: list[UnreadableFile]


def _header_or_error(path: Path) -> SliceHeader | UnreadableFile:
    try:
        header = read_header(path)
    except DicomError as err:
        return UnreadableFile(path, str(err), type(err).__name__)
    if not header.series_instance_uid:
        missing = SeriesError(
            "no (0020,000E) SeriesInstanceUID: cannot be grouped into a series",
            path=path,
            field="SeriesInstanceUID",
            value="",
        )
        return UnreadableFile(path, str(missing), type(missing).__name__)
    return header


def iter_headers(
    paths: Iterable[str | os.PathLike[str]], *, workers: int = 1, chunksize: int = 256
) -> Iterator[SliceHeader | UnreadableFile]:
    """Read the header of each file, yielding a header or an :class:`UnreadableFile`.

    Never raises for a bad file. Results come in the order of ``paths``.

    Parameters
    ----------
    paths
        Files to read (a generator is fine; it is consumed lazily when ``workers == 1``).
    workers
        Number of processes; 1 reads in this process.
    chunksize
        Files per task sent to a worker process.
    """
    files = (Path(p) for p in paths)
    if workers <= 1:
        for path in files:
            yield _header_or_error(path)
        return
    # spawned, not forked: training scans after torch has started its threads
    # (and maybe CUDA), and a fork of a threaded process can deadlock its children
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(_header_or_error, files, chunksize=chunksize)


def _record(uid: str, headers: list[SliceHeader]) -> SeriesRecord:
    geometry = assemble(headers)
    findings = list(geometry.findings)
    kept = geometry.headers
    quirky = [
        h
        for h in kept
        if has_rsna_12bit_quirk(
            bits_stored=h.bits_stored,
            pixel_representation=h.pixel_representation,
            rescale_intercept=h.rescale_intercept,
        )
    ]
    if quirky:
        findings.append(
            Finding(
                FindingKind.RESCALE_QUIRK,
                f"{len(quirky)} slice(s) have BitsStored 12, PixelRepresentation 0 and "
                f"RescaleIntercept {quirky[0].rescale_intercept:g} > -100 "
                "(fixed when pixels are read)",
            )
        )
    first = kept[0] if kept else headers[0]
    kept_ids = {id(h) for h in kept}
    return SeriesRecord(
        patient_id=first.patient_id,
        study_instance_uid=first.study_instance_uid,
        series_instance_uid=uid,
        modality=first.modality,
        series_description=first.series_description,
        n_slices=len(kept),
        slice_spacing=geometry.slice_spacing,
        findings=findings,
        files=[h.path for h in kept],
        n_files=len(headers),
        left_out=[h.path for h in headers if id(h) not in kept_ids],
        normal=geometry.normal,
        image_type=tuple(first.image_type or ()),
    )


def group_series(
    items: Iterable[SliceHeader | UnreadableFile],
    *,
    on_item: Callable[[SliceHeader | UnreadableFile], None] | None = None,
) -> ScanResult:
    """Group header records by SeriesInstanceUID into :class:`SeriesRecord` s.

    Parameters
    ----------
    items
        What :func:`iter_headers` yields.
    on_item
        Called with each item as it is consumed (e.g. to advance a progress bar).
    """
    by_series: dict[str, list[SliceHeader]] = {}
    unreadable: list[UnreadableFile] = []
    for item in items:
        if on_item is not None:
            on_item(item)
        if isinstance(item, UnreadableFile):
            logger.debug("unreadable: %s", item.reason)
            unreadable.append(item)
        else:
            by_series.setdefault(item.series_instance_uid, []).append(item)
    records = [_record(uid, headers) for uid, headers in by_series.items()]
    records.sort(key=lambda r: (r.patient_id, r.study_instance_uid, r.series_instance_uid))
    return ScanResult(series=records, unreadable=unreadable)


def scan_series(
    root: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    workers: int = 1,
    on_item: Callable[[SliceHeader | UnreadableFile], None] | None = None,
) -> ScanResult:
    """Find the DICOM series under a folder from their headers only.

    Walks ``root`` (nested folders or a flat layout such as RSNA's
    ``ID_*.dcm``; hidden entries skipped), reads each file's header up to
    (7FE0,0010) Pixel Data with :func:`read_header`, groups by (0020,000E)
    SeriesInstanceUID and orders and checks each series from
    ImagePositionPatient / ImageOrientationPatient (PS3.3 C.7.6.2) as
    :func:`ichkit.dicom.load_series` would. A bad file never stops the scan:
    it is listed in :attr:`ScanResult.unreadable`.

    Parameters
    ----------
    root
        A folder, or an iterable of files.
    workers
        Header-reading processes (1 = this process).
    on_item
        Called once per file read (progress reporting).

    Returns
    -------
    ScanResult
        Per-series records and unreadable files.

    Raises
    ------
    SeriesError
        ``root`` is a path that does not exist.
    """
    if isinstance(root, str | os.PathLike):
        folder = Path(root)
        if not folder.exists():
            raise SeriesError("no such file or folder", path=folder, field="DIR", value=str(folder))
        paths: Iterable[str | os.PathLike[str]] = (
            iter_files(folder) if folder.is_dir() else [folder]
        )
    else:
        paths = root
    return group_series(iter_headers(paths, workers=workers), on_item=on_item)
