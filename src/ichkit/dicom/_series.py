"""Assemble the files of one series into a HU volume."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ichkit.dicom._findings import Finding, FindingKind
from ichkit.dicom._geometry import assemble
from ichkit.dicom._header import SliceHeader
from ichkit.dicom._read import DicomImage, read_image
from ichkit.errors import DicomError, SeriesError

__all__ = ["Series", "iter_files", "load_series"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Series:
    """One CT series as a Hounsfield-unit volume, slices ordered along their normal.

    The dataclass is frozen (fields cannot be reassigned); ``hu`` and the lists
    are not copied, so do not mutate them in place if you share the object.

    Parameters
    ----------
    hu
        int16 HU, shape (slices, rows, columns), ordered inferior→superior for
        axial series: ImagePositionPatient projected on the slice normal
        (PS3.3 C.7.6.2.1.1), never InstanceNumber or file name.
    sop_instance_uids
        (0008,0018) SOPInstanceUID of each slice, in the order of ``hu``.
    positions
        float64 (slices,): each slice's ImagePositionPatient projected on
        ``normal`` (mm).
    spacing
        (slice, row, column) in mm: the median gap of ``positions``, then
        (0028,0030) PixelSpacing (adjacent-row, adjacent-column spacing).
        The slice spacing is NaN when unknown (one slice without
        SpacingBetweenSlices/SliceThickness, or no positions).
    findings
        Problems found while assembling it (see :class:`FindingKind`).
    series_instance_uid, study_instance_uid, patient_id, modality
        Identification of the series (PS3.3 C.7.3.1, C.7.2.1, C.7.1.1).
    series_description
        (0008,103E), empty when absent.
    image_orientation_patient
        The (row, column) direction cosines shared by the slices, or None.
    normal
        The unit slice normal the positions are projected on, or None.
    window_center, window_width
        First value of (0028,1050)/(0028,1051) of the first slice, or None.
    paths
        The file of each slice, in the order of ``hu``.
    headers
        The header fields of each slice (ImagePositionPatient,
        InstanceNumber, rescale, …), in the order of ``hu``.
    """

    hu: npt.NDArray[np.int16]
    sop_instance_uids: list[str]
    positions: npt.NDArray[np.float64]
    spacing: tuple[float, float, float]
    findings: list[Finding] = field(default_factory=list)
    series_instance_uid: str = ""
    study_instance_uid: str = ""
    patient_id: str = ""
    modality: str = ""
    series_description: str = ""
    image_orientation_patient: tuple[float, float, float, float, float, float] | None = None
    normal: tuple[float, float, float] | None = None
    window_center: float | None = None
    window_width: float | None = None
    paths: list[Path] = field(default_factory=list)
    headers: list[SliceHeader] = field(default_factory=list)

    @property
    def image_position_patient(self) -> npt.NDArray[np.float64]:
        """(0020,0032) ImagePositionPatient of each slice, shape (slices, 3), mm."""
        return np.array(
            [h.image_position_patient or (math.nan,) * 3 for h in self.headers],
            dtype=np.float64,
        ).reshape(len(self.headers), 3)

    def has(self, kind: FindingKind | str) -> bool:
        """Whether a finding of this kind was reported."""
        return any(f.kind == kind for f in self.findings)


def iter_files(root: str | os.PathLike[str]) -> Iterable[Path]:
    """Yield every regular file under ``root``, depth first, skipping hidden entries.

    Uses ``os.scandir`` (no stat call per file on most file systems), so it
    streams large trees such as the flat RSNA layout of 874k ``ID_*.dcm`` files.
    """
    stack = [os.fspath(root)]
    seen: set[tuple[int, int]] = set()  # (device, inode) of the folders walked
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue  # a symbolic link back to a folder already walked (or a loop)
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            logger.warning("%s: cannot list folder: %s", folder, err.strerror)
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=True):
                    subfolders.append(entry.path)
                elif entry.is_file(follow_symlinks=True):
                    yield Path(entry.path)
            except OSError as err:  # a broken or looping link
                logger.warning("%s: skipped: %s", entry.path, err.strerror)
        stack.extend(reversed(subfolders))


def _resolve(source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(source, str | os.PathLike):
        root = Path(source)
        if root.is_dir():
            return list(iter_files(root))
        if root.is_file():
            return [root]
        raise SeriesError("no such file or folder", path=root, field="source", value=str(root))
    return [Path(p) for p in source]


def load_series(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    series_instance_uid: str | None = None,
) -> Series:
    """Read the files of one series into a :class:`Series` of Hounsfield units.

    Every file is read with :func:`read_image` (compressed transfer syntaxes
    decode; the RSNA 12-bit quirk is fixed; padding becomes air); files that
    cannot be read are left out and reported as ``unreadable_file``; the rest
    are chosen, ordered and spaced by :func:`ichkit.dicom.assemble` rules
    (majority size and orientation, one slice per position, ordered along the
    slice normal), every deviation reported in ``findings``.

    Parameters
    ----------
    source
        A folder (searched recursively, hidden entries skipped), one file, or
        an iterable of files, all of ONE series.
    series_instance_uid
        Keep only this series; by default the series with the most files is
        kept and others are reported as ``multiple_series``.

    Returns
    -------
    Series
        The volume and its metadata.

    Raises
    ------
    SeriesError
        No file was readable, the source does not exist, or
        ``series_instance_uid`` is not among the files.
    """
    paths = _resolve(source)
    if not paths:
        raise SeriesError("no files to read", path=_source_name(source), field="source", value=0)
    images: dict[Path, DicomImage] = {}
    findings: list[Finding] = []
    unreadable: list[str] = []
    for path in paths:
        try:
            images[path] = read_image(path)
        except DicomError as err:
            unreadable.append(str(err))
            logger.warning("left out: %s", err)
    if unreadable:
        shown = "; ".join(unreadable[:3]) + (
            f"; and {len(unreadable) - 3} more" if len(unreadable) > 3 else ""
        )
        findings.append(
            Finding(FindingKind.UNREADABLE_FILE, f"{len(unreadable)} file(s) left out: {shown}")
        )
    if not images:
        raise SeriesError(
            f"none of the {len(paths)} file(s) is a readable DICOM image; first: {unreadable[0]}",
            path=_source_name(source),
            field="source",
            value=len(paths),
        )
    headers = [image.header for image in images.values()]
    if series_instance_uid is not None:
        headers = [h for h in headers if h.series_instance_uid == series_instance_uid]
        if not headers:
            found = sorted({image.header.series_instance_uid for image in images.values()})
            raise SeriesError(
                f"SeriesInstanceUID {series_instance_uid!r} not found; the files hold {found}",
                path=_source_name(source),
                field="SeriesInstanceUID",
                value=series_instance_uid,
            )
    geometry = assemble(headers)
    findings.extend(geometry.findings)
    ordered = [images[h.path] for h in geometry.headers]
    quirky = sum(image.quirk_fixed for image in ordered)
    if quirky:
        detail = (
            f"{quirky} slice(s) had BitsStored 12, PixelRepresentation 0 and RescaleIntercept "
            f"{ordered[0].header.rescale_intercept:g} > -100; stored values reinterpreted "
            "(px + 1000, wrapped at 4096, intercept -1000)"
        )
        findings.append(Finding(FindingKind.RESCALE_QUIRK, detail))
        # Expected on RSNA data and recorded as a finding: not a warning.
        logger.info("%s: RSNA 12-bit quirk fixed: %s", _source_name(source), detail)
    first = ordered[0].header
    row_spacing, col_spacing = first.pixel_spacing or (math.nan, math.nan)
    hu = np.stack([image.hu for image in ordered]) if ordered else np.zeros((0, 0, 0), np.int16)
    for finding in geometry.findings:
        logger.info("%s: %s", _source_name(source), finding)
    return Series(
        hu=hu,
        sop_instance_uids=[h.sop_instance_uid for h in geometry.headers],
        positions=geometry.positions,
        spacing=(geometry.slice_spacing, row_spacing, col_spacing),
        findings=findings,
        series_instance_uid=first.series_instance_uid,
        study_instance_uid=first.study_instance_uid,
        patient_id=first.patient_id,
        modality=first.modality,
        series_description=first.series_description,
        image_orientation_patient=first.image_orientation_patient,
        normal=geometry.normal,
        window_center=first.window_center[0] if first.window_center else None,
        window_width=first.window_width[0] if first.window_width else None,
        paths=[h.path for h in geometry.headers],
        headers=list(geometry.headers),
    )


def _source_name(source: object) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    if isinstance(source, list | tuple) and source:
        return f"{os.fspath(source[0])} (+{len(source) - 1} files)"
    return "<file list>"
