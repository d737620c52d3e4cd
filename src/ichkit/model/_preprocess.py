"""Crop a series to the head's bounding box and resize it to the model's input size.

The same function prepares training data (the cache) and new studies
(``ichkit predict``), so that the model always sees the same geometry.

Two crops (:data:`CROPS`): ``square`` squares the head's box around its centre
and keeps the aspect ratio (air pads the narrower side); ``fit`` resizes the
head's own box to the square input, so that each axis is stretched to fill it.
A head is about three quarters as wide as it is long, so ``fit`` gives a
structure about 1.3 x as many pixels from left to right at the same input size
(and the same compute); the model must be trained and run with one crop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ichkit.model.config import CROPS

__all__ = [
    "AIR_HU",
    "CROPS",
    "CropBox",
    "binary_open",
    "head_box",
    "largest_region",
    "preprocess_volume",
    "resize_weights",
]

#: HU of air, used for padding.
AIR_HU = -1024
#: Pixels above this HU count as head (skin and soft tissue lie above -100 HU).
_HEAD_HU = -300
#: Fraction of the box side added on each side.
_MARGIN = 0.04


@dataclass(frozen=True)
class CropBox:
    """The crop of the original slices that was resized to the input size.

    ``height`` × ``width`` original pixels from (``row0``, ``col0``), in images
    of ``rows`` × ``cols``. ``row0``/``col0`` may be negative and the box may
    pass the image edge: those pixels are air padding. A ``square`` crop has
    ``height == width``.
    """

    row0: int
    col0: int
    height: int
    width: int
    rows: int
    cols: int

    def to_dict(self) -> dict[str, int]:
        """A JSON-ready dict."""
        return {
            "row0": self.row0,
            "col0": self.col0,
            "height": self.height,
            "width": self.width,
            "rows": self.rows,
            "cols": self.cols,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CropBox:
        """Inverse of :meth:`to_dict`; also reads the square boxes of older caches (``side``)."""
        values = dict(d)
        if "side" in values:
            values.setdefault("height", values["side"])
            values.setdefault("width", values["side"])
        names = ("row0", "col0", "height", "width", "rows", "cols")
        return cls(*(int(values[name]) for name in names))


def head_box(
    hu: npt.NDArray[np.integer] | npt.NDArray[np.floating], *, crop: str = "square"
) -> CropBox:
    """The bounding box of the head in a (slices, rows, cols) HU volume.

    The head is the largest connected region above -300 HU in the maximum
    projection over slices, after a small opening that cuts thin links such as
    the CT table's foam. Its box is widened by 4 % on each side; with
    ``crop="square"`` it is first squared around its centre (the longer side).
    An empty volume gives the whole image.

    The opening and the connected regions are those of ``scipy.ndimage``
    (``binary_opening(mask, iterations=2)``, ``label`` with 4-connectivity;
    tested equal), computed here with numpy so that ``ichkit predict`` need
    not import scipy (half a second on a slow CPU, against its 2-s target).
    """
    if crop not in CROPS:
        raise ValueError(f"crop is {crop!r}; expected one of {', '.join(CROPS)}")
    rows, cols = int(hu.shape[1]), int(hu.shape[2])
    mask: npt.NDArray[np.bool_] = np.asarray(np.asarray(hu > _HEAD_HU).any(axis=0))
    if mask.any():
        opened = binary_open(mask, iterations=2)
        if opened.any():
            mask = opened
        mask = largest_region(mask)
        r = np.flatnonzero(mask.any(axis=1))
        c = np.flatnonzero(mask.any(axis=0))
        r0, r1, c0, c1 = int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1
    else:
        r0, r1, c0, c1 = 0, rows, 0, cols
    height, width = r1 - r0, c1 - c0
    if crop == "square":
        height = width = max(height, width)
    height = max(8, round(height * (1 + 2 * _MARGIN)))
    width = max(8, round(width * (1 + 2 * _MARGIN)))
    row0 = (r0 + r1) // 2 - height // 2
    col0 = (c0 + c1) // 2 - width // 2
    return CropBox(row0=row0, col0=col0, height=height, width=width, rows=rows, cols=cols)


def _crop(hu: npt.NDArray[np.generic], box: CropBox) -> npt.NDArray[np.float32]:
    s = hu.shape[0]
    out = np.full((s, box.height, box.width), AIR_HU, dtype=np.float32)
    r0, c0 = max(box.row0, 0), max(box.col0, 0)
    r1, c1 = min(box.row0 + box.height, box.rows), min(box.col0 + box.width, box.cols)
    if r1 > r0 and c1 > c0:
        out[:, r0 - box.row0 : r1 - box.row0, c0 - box.col0 : c1 - box.col0] = hu[:, r0:r1, c0:c1]
    return out


def binary_open(mask: npt.NDArray[np.bool_], iterations: int = 1) -> npt.NDArray[np.bool_]:
    """Binary opening of a 2-D mask by the 4-neighbour cross, ``iterations`` times each way.

    ``iterations`` erosions, then as many dilations, with everything outside
    the image counted as background: ``scipy.ndimage.binary_opening(mask,
    iterations=iterations)``.
    """
    out = np.asarray(mask, dtype=bool)
    for _ in range(iterations):
        out = _cross(out, erode=True)
    for _ in range(iterations):
        out = _cross(out, erode=False)
    return out


def _cross(m: npt.NDArray[np.bool_], *, erode: bool) -> npt.NDArray[np.bool_]:
    """Each pixel AND (erode) or OR (dilate) its 4 neighbours; outside the image is background."""
    op = np.logical_and if erode else np.logical_or
    out = m.copy()
    op(out[1:], m[:-1], out=out[1:])
    op(out[:-1], m[1:], out=out[:-1])
    op(out[:, 1:], m[:, :-1], out=out[:, 1:])
    op(out[:, :-1], m[:, 1:], out=out[:, :-1])
    if erode:  # a pixel on the edge has a background neighbour
        out[0] = out[-1] = False
        out[:, 0] = out[:, -1] = False
    return out


def largest_region(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """The largest 4-connected region of a 2-D mask (ties: the first in raster order).

    The region ``scipy.ndimage.label(mask)`` numbers ``argmax`` of its sizes.
    Regions are found as runs of each row joined to the overlapping runs of
    the next row (union-find over runs, not pixels).
    """
    m = np.asarray(mask, dtype=bool)
    rows, cols = m.shape
    edges = np.diff(np.pad(m.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    run_row, start = np.nonzero(edges == 1)  # raster order
    _, stop = np.nonzero(edges == -1)
    n = len(start)
    if n == 0:
        return m.copy()
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    bounds = np.searchsorted(run_row, np.arange(rows + 1)).tolist()
    lo_s, lo_e = start.tolist(), stop.tolist()
    for r in range(rows - 1):
        a, a_end = bounds[r], bounds[r + 1]
        b, b_end = bounds[r + 1], bounds[r + 2]
        while a < a_end and b < b_end:
            if lo_s[a] < lo_e[b] and lo_s[b] < lo_e[a]:  # the runs share a column
                ra, rb = root(a), root(b)
                if ra != rb:  # the earlier run (raster order) stays the root
                    parent[max(ra, rb)] = min(ra, rb)
            if lo_e[a] < lo_e[b]:
                a += 1
            else:
                b += 1
    roots = np.fromiter((root(i) for i in range(n)), dtype=np.intp, count=n)
    sizes = np.bincount(roots, weights=stop - start, minlength=n)
    best = int(np.argmax(sizes))  # a root is its region's first run: ties go to the first
    keep = np.flatnonzero(roots == best)
    marks = np.zeros((rows, cols + 1), dtype=np.int32)
    np.add.at(marks, (run_row[keep], start[keep]), 1)
    np.add.at(marks, (run_row[keep], stop[keep]), -1)
    out: npt.NDArray[np.bool_] = np.cumsum(marks, axis=1)[:, :cols] > 0
    return out


def preprocess_volume(
    hu: npt.NDArray[np.integer] | npt.NDArray[np.floating],
    *,
    size: int,
    box: CropBox | None = None,
    crop: str = "square",
) -> tuple[npt.NDArray[np.int16], CropBox]:
    """Crop a HU volume to the head and resize every slice to ``size`` × ``size``.

    Parameters
    ----------
    hu
        (slices, rows, cols) Hounsfield units (a :class:`ichkit.dicom.Series` ``.hu``).
    size
        Output side in pixels.
    box
        Use this crop instead of finding the head.
    crop
        ``square`` or ``fit`` (:data:`CROPS`), when the head is found here.

    Returns
    -------
    (numpy.ndarray, CropBox)
        int16 HU (slices, size, size) and the crop used (to map outputs back).
    """
    arr = np.asarray(hu)
    if arr.ndim != 3:
        raise ValueError(f"expected a (slices, rows, cols) volume, got shape {arr.shape}")
    if box is None:
        box = head_box(arr, crop=crop)
    resized = _crop(arr, box)
    # separable: rows then columns, one BLAS product per pass over every slice
    if box.height != size:
        resized = np.matmul(resize_weights(box.height, size), resized)  # (slices, size, width)
    if box.width != size:
        resized = np.matmul(resized, resize_weights(box.width, size).T)  # (slices, size, size)
    out = np.clip(np.rint(resized), -32768, 32767).astype(np.int16)
    return out, box


def resize_weights(n_in: int, n_out: int) -> npt.NDArray[np.float32]:
    """The (n_out, n_in) matrix of a bilinear resize with antialiasing.

    Same weights as ``torch.nn.functional.interpolate(mode="bilinear",
    antialias=True, align_corners=False)`` (and Pillow's bilinear resize): a
    triangle filter stretched by the scale when shrinking, normalised per
    output pixel. Plain numpy, so that inference needs no torch.
    """
    scale = n_in / n_out
    support = scale if scale >= 1.0 else 1.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    w = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        j = np.arange(lo, hi)
        tri = np.clip(1.0 - np.abs((j - center + 0.5) * inv), 0.0, None)
        total = tri.sum()
        if total > 0:
            w[i, lo:hi] = tri / total
    return w.astype(np.float32)
