"""Thick-slab reformats: read a thin-slice series the way the model was trained.

A 2.5-D model learns from slices of one thickness: its neighbouring-slice
channels are one slice spacing apart and its sequence model has seen series of
~30 slices. RSNA 2019 exams (and ``ichkit synth``'s) are ~5 mm axial images, but
scanners also reconstruct 0.5-1.25 mm series: 200-300 slices whose neighbours
are a fifth of the trained distance apart, each noisier. Radiologists read such
a series as thick reformats, and so does ``ichkit predict``: consecutive thin
slices are averaged into slabs of about the model's training thickness (the
mean of HU over a slab approximates a thick reconstruction), the model reads the
slabs, and every thin image gets the prediction of the slab it belongs to, so
the submission still has a row for each image.

The core is pure: :func:`slab_index` groups slice positions, :func:`slab_mean`
averages a volume by those groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["THIN_RATIO", "Slabs", "slab_index", "slab_mean"]

#: A series is reformatted when its slice spacing is below the model's slice
#: thickness divided by this ratio (5 mm models: spacing under 3.3 mm).
THIN_RATIO = 1.5


@dataclass(frozen=True)
class Slabs:
    """How a thin series is grouped into slabs."""

    index: npt.NDArray[np.intp]
    """intp (slices,): slab numbers 0, 1, … in slice order (non-decreasing, none skipped)."""
    spacing_mm: float
    """The series' slice spacing (median gap of the positions)."""
    thickness_mm: float
    """The slabs' thickness along the slice normal."""

    @property
    def count(self) -> int:
        """Number of slabs."""
        return int(self.index[-1]) + 1

    def bounds(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """(first slice, one past the last slice) of each slab."""
        return _runs(self.index)


def _runs(index: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    starts = np.flatnonzero(np.r_[True, np.diff(index) > 0])
    return starts, np.r_[starts[1:], len(index)]


def slab_index(
    positions: npt.ArrayLike, slab_mm: float | None, *, thin_ratio: float = THIN_RATIO
) -> Slabs | None:
    """Slabs of a thin series, or None when the series is read as it is.

    Parameters
    ----------
    positions
        Each slice's position along the slice normal (mm), in ascending order
        (:attr:`ichkit.dicom.Series.positions`).
    slab_mm
        The slab thickness (the model's training slice spacing); None, NaN or
        ≤ 0 = never reformat.
    thin_ratio
        Reformat only when the median slice spacing is below ``slab_mm / thin_ratio``.

    Returns
    -------
    Slabs or None
        Each slice's slab, the slice spacing and the slab thickness, or None
        when there is nothing to reformat (no ``slab_mm``, unknown or thick
        spacing, fewer than two slices).

    Notes
    -----
    The covered length (first to last position plus one spacing) is cut into
    ``round(length / slab_mm)`` equal slabs (150 mm of 0.625 mm slices at
    5 mm: 30 slabs of 8 slices); a slab left empty by missing slices is dropped.
    """
    if slab_mm is None or not math.isfinite(slab_mm) or slab_mm <= 0:
        return None
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 1 or len(pos) < 2 or not np.isfinite(pos).all():
        return None
    gaps = np.diff(pos)
    spacing = float(np.median(gaps))
    if not spacing > 0 or spacing * thin_ratio >= slab_mm:
        return None
    length = float(pos[-1] - pos[0]) + spacing
    n = max(1, round(length / slab_mm))
    start = float(pos[0]) - spacing / 2
    raw = np.clip(np.floor((pos - start) / (length / n)).astype(np.intp), 0, n - 1)
    _, index = np.unique(raw, return_inverse=True)  # drop empty slabs, keep the order
    return Slabs(index.astype(np.intp), spacing, length / n)


def slab_mean(hu: npt.NDArray[np.generic], index: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Average a (slices, rows, cols) HU volume over the slabs of :func:`slab_index`.

    Returns
    -------
    numpy.ndarray
        int16 (slabs, rows, cols): the mean HU of each slab's slices, rounded.
    """
    arr = np.asarray(hu)
    idx = np.asarray(index, dtype=np.intp)
    if arr.ndim != 3 or idx.shape != (arr.shape[0],):
        raise ValueError(
            "expected a (slices, rows, cols) volume and one slab per slice; "
            f"got {arr.shape} and {idx.shape}"
        )
    if len(idx) and (idx[0] != 0 or np.any(np.diff(idx) < 0) or np.any(np.diff(idx) > 1)):
        raise ValueError("slab numbers must start at 0 and rise by 0 or 1 from slice to slice")
    starts, ends = _runs(idx)
    out = np.empty((len(starts), *arr.shape[1:]), dtype=np.int16)
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):  # one slab in float at a time
        out[k] = np.clip(np.rint(arr[a:b].mean(axis=0, dtype=np.float32)), -32768, 32767)
    return out
