"""Series geometry from headers: keep, order and space the slices of one series.

Pure functions over :class:`~ichkit.dicom._header.SliceHeader` records, shared
by :func:`ichkit.dicom.load_series` and the header-only discovery scan.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

import numpy as np
import numpy.typing as npt

from ichkit.dicom._findings import Finding, FindingKind
from ichkit.dicom._header import SliceHeader

__all__ = ["Geometry", "assemble", "slice_normal"]

K = TypeVar("K")

#: Positions closer than this (mm) along the normal are the same position.
DUPLICATE_TOLERANCE_MM = 0.01
#: Direction cosines differing by more than this are another orientation.
ORIENTATION_TOLERANCE = 1e-3
#: Stacking more than this many degrees off the normal is a gantry tilt.
TILT_TOLERANCE_DEG = 0.5
#: A gap this many times the median gap means missing slices.
MISSING_RATIO = 1.5


@dataclass(frozen=True, slots=True)
class Geometry:
    """The kept slices of one series, in order, with their geometry.

    Parameters
    ----------
    headers
        The kept slices, ordered along the slice normal (inferior→superior for axial).
    positions
        Their ImagePositionPatient projected on the normal, mm, ascending.
    slice_spacing
        Median gap between positions (mm); from SpacingBetweenSlices or
        SliceThickness for a single slice; NaN when unknown.
    normal
        The unit slice normal used (row × column cosines, sign chosen so that
        its largest component is positive), or None without orientation.
    findings
        Problems found; dropped slices are named there.
    """

    headers: list[SliceHeader]
    positions: npt.NDArray[np.float64]
    slice_spacing: float
    normal: tuple[float, float, float] | None
    findings: list[Finding]


def slice_normal(
    image_orientation_patient: Sequence[float],
) -> npt.NDArray[np.float64]:
    """Return the unit normal of an image plane (PS3.3 C.7.6.2.1.1).

    The normal is the cross product of the row and column direction cosines
    of ImageOrientationPatient, with its sign chosen so that its largest
    component is positive: for axial slices (LPS patient coordinates) it then
    points superior, so ascending projected positions go inferior→superior.
    """
    iop = np.asarray(image_orientation_patient, dtype=np.float64)
    normal = np.cross(iop[:3], iop[3:6])
    norm = float(np.linalg.norm(normal))
    if norm == 0.0:
        return normal
    normal /= norm
    if normal[int(np.argmax(np.abs(normal)))] < 0:
        normal = -normal
    return normal


def _names(headers: Sequence[SliceHeader], limit: int = 3) -> str:
    names = [h.path.name for h in headers[:limit]]
    more = len(headers) - limit
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _majority(headers: list[SliceHeader], keys: list[K]) -> tuple[list[SliceHeader], K, Counter[K]]:
    """Keep the headers whose key is the most common one (ties: first seen)."""
    counts: Counter[K] = Counter(keys)
    best = max(counts, key=lambda k: (counts[k], -keys.index(k)))
    kept = [h for h, k in zip(headers, keys, strict=True) if k == best]
    return kept, best, counts


def _orientation_key(
    iop: tuple[float, ...], clusters: list[tuple[float, ...]]
) -> tuple[float, ...]:
    for ref in clusters:
        if max(abs(a - b) for a, b in zip(iop, ref, strict=True)) <= ORIENTATION_TOLERANCE:
            return ref
    clusters.append(iop)
    return iop


def assemble(headers: Sequence[SliceHeader]) -> Geometry:
    """Choose, order and space the slices of one series from their headers.

    Rules, each reported as a :class:`Finding` rather than raised:

    - several SeriesInstanceUIDs: keep the one with most files (``multiple_series``);
    - several (StudyInstanceUID, PatientID) under one series: keep the largest
      (``mixed_studies``);
    - several Rows x Columns: keep the majority size (``mixed_size``);
    - no ImagePositionPatient / ImageOrientationPatient (PS3.3 C.7.6.2): drop
      those slices (``missing_position``); if none has them, keep all in
      InstanceNumber order, spacing unknown;
    - several orientations: keep the majority (``mixed_orientation``);
    - order by ImagePositionPatient projected on the slice normal, never by
      InstanceNumber or file name; equal positions keep one slice
      (``duplicate_position``);
    - gaps ≥ 1.5 x the median gap: ``missing_slices``; other gaps off the
      median: ``uneven_spacing``; stacking direction off the normal or a
      non-zero GantryDetectorTilt: ``gantry_tilt``.

    Parameters
    ----------
    headers
        Headers of the files of one series, in any order.

    Returns
    -------
    Geometry
        The kept slices in order, their positions, spacing and findings.
    """
    findings: list[Finding] = []
    kept = sorted(headers, key=lambda h: str(h.path))
    if not kept:
        return Geometry([], np.zeros(0), math.nan, None, findings)

    # One series.
    uids = [h.series_instance_uid for h in kept]
    if len(set(uids)) > 1:
        kept, best_uid, uid_counts = _majority(kept, uids)
        others = ", ".join(f"{uid} ({n} files)" for uid, n in uid_counts.items() if uid != best_uid)
        findings.append(
            Finding(
                FindingKind.MULTIPLE_SERIES,
                f"{len(uid_counts)} SeriesInstanceUIDs given; kept {best_uid} "
                f"({uid_counts[best_uid]} files), "
                f"left out {others}",
            )
        )

    # One study and patient: a SeriesInstanceUID reused across exams (a broken
    # archive, a re-keyed export) would otherwise interleave two scans in one volume.
    owners = [(h.study_instance_uid, h.patient_id) for h in kept]
    if len(set(owners)) > 1:
        before = kept
        kept, best_owner, owner_counts = _majority(kept, owners)
        dropped = [h for h in before if (h.study_instance_uid, h.patient_id) != best_owner]
        findings.append(
            Finding(
                FindingKind.MIXED_STUDIES,
                f"one SeriesInstanceUID spans {len(owner_counts)} (study, patient) pairs; kept "
                f"study {best_owner[0]} ({owner_counts[best_owner]} files), left out "
                f"{_names(dropped)}",
            )
        )

    # One size.
    sizes = [(h.rows, h.columns) for h in kept]
    if len(set(sizes)) > 1:
        before = kept
        kept, best_size, size_counts = _majority(kept, sizes)
        dropped = [h for h in before if (h.rows, h.columns) != best_size]
        sizes_text = ", ".join(f"{r}x{c}: {n}" for (r, c), n in size_counts.items())
        findings.append(
            Finding(
                FindingKind.MIXED_SIZE,
                f"Rows x Columns differ ({sizes_text}); kept {best_size[0]}x{best_size[1]}, "
                f"left out {_names(dropped)}",
            )
        )

    # Geometry present.
    with_geometry = [
        h
        for h in kept
        if h.image_position_patient is not None and h.image_orientation_patient is not None
    ]
    if not with_geometry:
        ordered = sorted(kept, key=lambda h: (h.instance_number is None, h.instance_number or 0))
        findings.append(
            Finding(
                FindingKind.MISSING_POSITION,
                "no slice has ImagePositionPatient and ImageOrientationPatient; "
                "slices kept in InstanceNumber order, slice spacing unknown",
            )
        )
        return Geometry(ordered, np.full(len(ordered), np.nan), math.nan, None, findings)
    if len(with_geometry) < len(kept):
        have = {id(h) for h in with_geometry}
        dropped = [h for h in kept if id(h) not in have]
        findings.append(
            Finding(
                FindingKind.MISSING_POSITION,
                f"{len(dropped)} slice(s) without ImagePositionPatient or "
                f"ImageOrientationPatient left out: {_names(dropped)}",
            )
        )
        kept = with_geometry

    # One orientation.
    clusters: list[tuple[float, ...]] = []
    keys = [_orientation_key(h.image_orientation_patient or (), clusters) for h in kept]
    if len(clusters) > 1:
        before = kept
        kept, best_iop, iop_counts = _majority(kept, keys)
        dropped = [h for h, k in zip(before, keys, strict=True) if k != best_iop]
        findings.append(
            Finding(
                FindingKind.MIXED_ORIENTATION,
                f"{len(clusters)} ImageOrientationPatient values; kept "
                f"{list(best_iop)} ({iop_counts[best_iop]} slices), left out {_names(dropped)}",
            )
        )

    # Order along the normal.
    normal = slice_normal(cast(tuple[float, ...], kept[0].image_orientation_patient))
    ipp = np.array([h.image_position_patient for h in kept], dtype=np.float64)
    projected = ipp @ normal
    order = np.argsort(projected, kind="stable")
    kept = [kept[i] for i in order]
    projected = projected[order]
    ipp = ipp[order]

    # Duplicates: keep the first of each run of equal positions.
    if len(kept) > 1:
        same = np.diff(projected) < DUPLICATE_TOLERANCE_MM
        if same.any():
            keep_mask = np.concatenate([[True], ~same])
            dropped = [h for h, k in zip(kept, keep_mask, strict=True) if not k]
            pos_text = ", ".join(f"{p:.3f}" for p in np.unique(projected[1:][same].round(3))[:5])
            findings.append(
                Finding(
                    FindingKind.DUPLICATE_POSITION,
                    f"{len(dropped)} slice(s) share a position with another (at {pos_text} mm "
                    f"along the normal); kept one each, left out {_names(dropped)}",
                )
            )
            kept = [h for h, k in zip(kept, keep_mask, strict=True) if k]
            projected = projected[keep_mask]
            ipp = ipp[keep_mask]

    # Spacing, gaps.
    spacing = math.nan
    if len(kept) > 1:
        gaps = np.diff(projected)
        spacing = float(np.median(gaps))
        ratio = gaps / spacing
        missing = ratio >= MISSING_RATIO
        if missing.any():
            counts_missing = np.maximum(np.rint(ratio[missing]).astype(int) - 1, 1)
            where = ", ".join(
                f"{projected[i]:.3f}→{projected[i + 1]:.3f} mm ({kept[i].path.name}→"
                f"{kept[i + 1].path.name})"
                for i in np.flatnonzero(missing)[:3]
            )
            findings.append(
                Finding(
                    FindingKind.MISSING_SLICES,
                    f"about {int(counts_missing.sum())} slice(s) missing in {int(missing.sum())} "
                    f"gap(s) larger than {MISSING_RATIO} x the median spacing {spacing:.3f} mm: "
                    f"{where}",
                )
            )
        tolerance = max(0.05, 0.05 * spacing)
        uneven = (~missing) & (np.abs(gaps - spacing) > tolerance)
        if uneven.any():
            findings.append(
                Finding(
                    FindingKind.UNEVEN_SPACING,
                    f"{int(uneven.sum())} gap(s) differ from the median spacing {spacing:.3f} mm "
                    f"by more than {tolerance:.3f} mm (gaps from {gaps.min():.3f} to "
                    f"{gaps.max():.3f} mm)",
                )
            )
    else:
        h = kept[0]
        spacing = h.spacing_between_slices or h.slice_thickness or math.nan

    # Gantry tilt: stacking direction vs normal, or the header's tilt.
    tilt_angle = 0.0
    if len(kept) > 1:
        stack = ipp[-1] - ipp[0]
        length = float(np.linalg.norm(stack))
        if length > 0:
            cos = min(1.0, abs(float(stack @ normal)) / length)
            tilt_angle = math.degrees(math.acos(cos))
    header_tilt = kept[0].gantry_detector_tilt
    if tilt_angle > TILT_TOLERANCE_DEG or (header_tilt is not None and abs(header_tilt) > 0.01):
        tilt_text = "" if header_tilt is None else f"; GantryDetectorTilt {header_tilt:g}°"
        findings.append(
            Finding(
                FindingKind.GANTRY_TILT,
                f"slices are stacked {tilt_angle:.1f}° off their normal{tilt_text}; "
                "voxels are sheared unless resampled",
            )
        )

    # Pixel spacing consistency.
    spacings = {h.pixel_spacing for h in kept}
    if len(spacings) > 1:
        findings.append(
            Finding(
                FindingKind.MIXED_PIXEL_SPACING,
                f"PixelSpacing differs between slices: {sorted(map(str, spacings))[:4]}; "
                f"using {kept[0].pixel_spacing}",
            )
        )

    n = normal
    return Geometry(kept, projected, spacing, (float(n[0]), float(n[1]), float(n[2])), findings)
