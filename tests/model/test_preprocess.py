"""The head crop's mask operations, done with numpy, equal scipy.ndimage's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage  # type: ignore[import-untyped]

from ichkit.model._preprocess import binary_open, head_box, largest_region


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
    assert abs(box.side - alone.side) <= 2 and abs(box.row0 - alone.row0) <= 2
    assert box.col0 == alone.col0 and box.row0 + box.side < 55  # the table is outside
