"""The head crop's mask operations, done with numpy, equal scipy.ndimage's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage  # type: ignore[import-untyped]

from ichkit.model._preprocess import (
    CropBox,
    binary_open,
    head_box,
    largest_region,
    preprocess_volume,
)


def _masks(seed: int, n: int) -> list[np.ndarray]:
    """Random masks: salt and pepper of any density, blobs, shapes of 1 to 40 pixels a side."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        h, w = (int(x) for x in rng.integers(1, 41, size=2))
        if k % 3 == 0:
            seeds = rng.random((h, w)) < 0.05
            out.append(ndimage.binary_dilation(seeds, iterations=int(rng.integers(1, 4))))
        else:
            out.append(rng.random((h, w)) < rng.uniform(0.05, 0.95))
    return out


@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_binary_open_equals_scipy(iterations: int) -> None:
    for m in _masks(1, 400):
        want = ndimage.binary_opening(m, iterations=iterations)
        assert np.array_equal(binary_open(m, iterations=iterations), want)


def test_largest_region_equals_scipy_label_argmax() -> None:
    checked = 0
    for m in _masks(2, 600):
        if not m.any():
            continue
        labels, _ = ndimage.label(m)
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        want = labels == int(np.argmax(sizes))
        assert np.array_equal(largest_region(m), want)
        checked += 1
    assert checked > 500


def test_largest_region_ties_go_to_the_first_in_raster_order() -> None:
    m = np.zeros((6, 9), dtype=bool)
    m[4, 0:3] = True  # three pixels, first reached by a raster scan at row 4
    m[1, 6:9] = True  # three pixels, first reached at row 1: this one
    m[3, 5] = True  # diagonal neighbours are not connected (4-connectivity)
    got = largest_region(m)
    assert got[1, 6:9].all() and got.sum() == 3


def test_head_box_keeps_the_head_not_the_table() -> None:
    """A head joined to a wider table by a thin strip: the opening cuts the strip and the
    box is the head's (give or take the strip's stub), the table left out."""
    head = np.full((3, 64, 64), -1000, dtype=np.int16)
    yy, xx = np.mgrid[:64, :64]
    head[:, (yy - 28) ** 2 + (xx - 32) ** 2 < 18**2] = 40
    hu = head.copy()
    hu[:, 55:61, 2:62] = 200  # the table: wider than the head
    hu[:, 46:55, 31:33] = 30  # a 2-pixel strip (foam, cable) from the head to the table
    box, alone = head_box(hu), head_box(head)
    assert abs(box.height - alone.height) <= 2 and abs(box.row0 - alone.row0) <= 2
    assert box.col0 == alone.col0 and box.row0 + box.height < 55  # the table is outside


def _oval_head(rows: int = 100, cols: int = 120) -> np.ndarray:
    """An upright oval head 61 rows long and 41 columns wide, with a 3-column stripe of blood."""
    hu = np.full((2, rows, cols), -1000, dtype=np.int16)
    yy, xx = np.mgrid[:rows, :cols]
    hu[:, ((yy - 50) / 30.5) ** 2 + ((xx - 60) / 20.5) ** 2 <= 1.0] = 30
    hu[:, 35:66, 59:62] = 70  # 3 columns wide, 31 rows long
    return hu


def test_fit_crop_stretches_each_axis_to_the_input() -> None:
    hu = _oval_head()
    square, fit = head_box(hu), head_box(hu, crop="fit")
    # the head spans rows 20-80 (61) and columns 40-80 (41); 4 % margin each side
    assert (square.height, square.width) == (66, 66)
    assert (fit.height, fit.width) == (66, 44)
    assert fit.row0 == square.row0 and fit.col0 == 60 - 22
    a, box_a = preprocess_volume(hu, size=64)
    b, box_b = preprocess_volume(hu, size=64, crop="fit")
    assert box_a == square and box_b == fit
    assert a.shape == b.shape == (2, 64, 64)
    # the blood stripe: as long in both, 1.5x as wide in the fit crop (66 / 44)
    wide_a = int((a[0, 32] > 50).sum())
    wide_b = int((b[0, 32] > 50).sum())
    long_a = int((a[0, :, 32] > 50).sum())
    long_b = int((b[0, :, 32] > 50).sum())
    assert long_a == long_b and wide_b > wide_a
    assert abs(wide_b / wide_a - 1.5) < 0.35
    # the fit crop leaves almost no air beside the head; the square one a band of it
    assert (b[0, 32] < -500).sum() <= 4 < (a[0, 32] < -500).sum()
    # a given box is used as it is, whatever the crop
    assert np.array_equal(preprocess_volume(hu, size=64, box=fit)[0], b)
    with pytest.raises(ValueError, match="crop is 'tight'; expected one of square, fit"):
        head_box(hu, crop="tight")


def test_crop_box_reads_the_square_boxes_of_older_caches() -> None:
    box = CropBox(row0=-3, col0=2, height=60, width=44, rows=100, cols=120)
    assert CropBox.from_dict(box.to_dict()) == box
    old = {"row0": 1, "col0": -2, "side": 50, "rows": 64, "cols": 64}
    assert CropBox.from_dict(old) == CropBox(1, -2, 50, 50, 64, 64)
