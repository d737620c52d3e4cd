"""The phantom's sampling geometry: noise-field interpolation."""

from __future__ import annotations

import numpy as np
from scipy import ndimage  # type: ignore[import-untyped]

from ichkit.synth._geometry import NoiseField


def test_noise_field_samples_are_trilinear() -> None:
    """``at_points`` is trilinear interpolation of the smoothed grid (scipy's order-1
    ``map_coordinates`` as the reference), clamped to the grid at its edges."""
    field = NoiseField(np.random.default_rng(11), scales=(3.2, 1.6), step=2.5)
    grid = [f.reshape(field.shape) for f in field.flat]
    rng = np.random.default_rng(12)
    pts = [
        rng.uniform(lo + 1.0, hi - 1.0, size=(40, 50)).astype(np.float32)
        for lo, hi in zip(NoiseField.LOW, NoiseField.HIGH, strict=True)
    ]
    got = field.at_points(pts[0], pts[1], pts[2], (0, 1))
    idx = [
        (p.astype(np.float64) - lo) / field.step for p, lo in zip(pts, NoiseField.LOW, strict=True)
    ]
    for ch in (0, 1):
        want = ndimage.map_coordinates(grid[ch].astype(np.float64), idx, order=1)
        assert got[ch].dtype == np.float32 and got[ch].shape == (40, 50)
        np.testing.assert_allclose(got[ch], want, atol=2e-5)
    # far outside: clamped to the grid's first point, and to 0.001 of a cell inside its last
    outside = [np.array([[-1e4, 1e4]], dtype=np.float32) for _ in range(3)]
    (edge,) = field.at_points(outside[0], outside[1], outside[2], (0,))
    first = grid[0][0, 0, 0]
    last = ndimage.map_coordinates(
        grid[0].astype(np.float64), [[n - 1.001] for n in field.shape], order=1
    )[0]
    np.testing.assert_allclose(edge[0], [first, last], atol=2e-5)
