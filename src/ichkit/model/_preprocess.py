"""Crop a series to the head's bounding box and resize it to the model's input size.

The same function prepares training data (the cache) and new studies
(``ichkit predict``), so that the model always sees the same geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["AIR_HU", "CropBox", "head_box", "preprocess_volume"]

#: HU of air, used for padding.
AIR_HU = -1024
#: Pixels above this HU count as head (skin and soft tissue lie above -100 HU).
_HEAD_HU = -300
#: Fraction of the box side added on each side.
_MARGIN = 0.04


@dataclass(frozen=True)
class CropBox:
    """The square crop of the original slices that was resized to the input size.

    ``row0``/``col0`` may be negative and ``row0 + side`` may pass the image
    edge: those pixels are air padding.
    """

    row0: int
    col0: int
    side: int
    rows: int
    cols: int

    def to_dict(self) -> dict[str, int]:
        """A JSON-ready dict."""
        return {
            "row0": self.row0,
            "col0": self.col0,
            "side": self.side,
            "rows": self.rows,
            "cols": self.cols,
        }


def head_box(hu: npt.NDArray[np.integer] | npt.NDArray[np.floating]) -> CropBox:
    """The square bounding box of the head in a (slices, rows, cols) HU volume.

    The head is the largest connected region above -300 HU in the maximum
    projection over slices, after a small opening that cuts thin links such as
    the CT table's foam; the box is squared around its centre and widened by
    4 % on each side. An empty volume gives the whole image.
    """
    from scipy import ndimage  # type: ignore[import-untyped]

    rows, cols = int(hu.shape[1]), int(hu.shape[2])
    mask: npt.NDArray[np.bool_] = np.asarray(np.asarray(hu > _HEAD_HU).any(axis=0))
    if mask.any():
        opened = ndimage.binary_opening(mask, iterations=2)
        if opened.any():
            mask = opened
        labels, count = ndimage.label(mask)
        if count > 1:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            mask = np.asarray(labels == int(np.argmax(sizes)))
        r = np.flatnonzero(mask.any(axis=1))
        c = np.flatnonzero(mask.any(axis=0))
        r0, r1, c0, c1 = int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1
    else:
        r0, r1, c0, c1 = 0, rows, 0, cols
    side = max(r1 - r0, c1 - c0)
    side = max(8, round(side * (1 + 2 * _MARGIN)))
    row0 = (r0 + r1) // 2 - side // 2
    col0 = (c0 + c1) // 2 - side // 2
    return CropBox(row0=row0, col0=col0, side=side, rows=rows, cols=cols)


def _crop(hu: npt.NDArray[np.generic], box: CropBox) -> npt.NDArray[np.float32]:
    s = hu.shape[0]
    out = np.full((s, box.side, box.side), AIR_HU, dtype=np.float32)
    r0, c0 = max(box.row0, 0), max(box.col0, 0)
    r1, c1 = min(box.row0 + box.side, box.rows), min(box.col0 + box.side, box.cols)
    if r1 > r0 and c1 > c0:
        out[:, r0 - box.row0 : r1 - box.row0, c0 - box.col0 : c1 - box.col0] = hu[:, r0:r1, c0:c1]
    return out


def preprocess_volume(
    hu: npt.NDArray[np.integer] | npt.NDArray[np.floating],
    *,
    size: int,
    box: CropBox | None = None,
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

    Returns
    -------
    (numpy.ndarray, CropBox)
        int16 HU (slices, size, size) and the crop used (to map outputs back).
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    arr = np.asarray(hu)
    if arr.ndim != 3:
        raise ValueError(f"expected a (slices, rows, cols) volume, got shape {arr.shape}")
    if box is None:
        box = head_box(arr)
    cropped = torch.from_numpy(_crop(arr, box)).unsqueeze(1)
    if box.side != size:
        resized = F.interpolate(
            cropped, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    else:
        resized = cropped
    out = resized.squeeze(1).round_().clamp_(-32768, 32767).numpy().astype(np.int16)
    return out, box
