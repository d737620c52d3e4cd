"""The phantom's sampling geometry: noise-field interpolation, plane windows, head box."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage  # type: ignore[import-untyped]

from ichkit.synth import SynthConfig, _phantom, generate_exam, plan_dataset
from ichkit.synth._geometry import NoiseField, Plane
from ichkit.synth._phantom import draw_anatomy, head_box, render_anatomy


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


def _plane(size: int) -> Plane:
    """A tilted, rotated plane through the head (pixels 0.9 mm)."""
    rot = np.array([[0.99, -0.1, 0.05], [0.1, 0.98, -0.17], [-0.03, 0.17, 0.98]])
    rot, _ = np.linalg.qr(rot)
    return Plane(
        np.array([-110.0, -120.0, 30.0]), rot[:, 0] * 0.9, rot[:, 1] * 0.9, 0.9, (size, size)
    )


def test_plane_window_is_the_same_pixels() -> None:
    """A window of a plane has the whole plane's coordinates bit for bit, a box of a
    ball in window pixels, and (offsets a multiple of the stride) the same noise."""
    plane = _plane(96)
    box = (slice(10, 70), slice(24, 90))
    win = plane.window(box)
    assert win.shape == (60, 66) and win.offset == (10, 24)
    for whole, part in zip(plane.coords(), win.coords(), strict=True):
        np.testing.assert_array_equal(whole[box], part)
    sub = (slice(3, 9), slice(5, 20))
    inner = win.window(sub)
    assert inner.offset == (13, 29)
    for whole, part in zip(plane.coords(), inner.coords(), strict=True):
        np.testing.assert_array_equal(whole[13:19, 29:44], part)
    u, v, w = plane.coords()
    center = (float(u[40, 50]), float(v[40, 50]), float(w[40, 50]))
    ball = plane.box(center, 6.0)
    in_win = win.box(center, 6.0)
    assert ball is not None and in_win is not None
    assert (in_win[0].start + 10, in_win[1].start + 24) == (ball[0].start, ball[1].start)
    assert (in_win[0].stop + 10, in_win[1].stop + 24) == (ball[0].stop, ball[1].stop)
    assert win.box((center[0] + 500.0, center[1], center[2]), 6.0) is None
    field = NoiseField(np.random.default_rng(3), scales=(3.2, 2.0), step=2.5)
    for stride in (1, 2):
        (whole_tex,) = field.sample(plane, (1,), stride=stride)
        (win_tex,) = field.sample(win, (1,), stride=stride)
        np.testing.assert_array_equal(whole_tex[box], win_tex)
        assert np.abs(whole_tex).max() <= field.abs_max(1)


def test_head_box_bounds_the_mask() -> None:
    mask = np.zeros((50, 40), dtype=bool)
    mask[11, 7] = mask[30, 33] = True
    assert head_box(mask) == (slice(9, 33), slice(5, 36))
    assert head_box(mask, align=2, margin=1) == (slice(10, 32), slice(6, 35))
    assert head_box(np.zeros((5, 5), dtype=bool), align=2) == (slice(0, 2), slice(0, 2))
    assert head_box(np.zeros((5, 5), dtype=bool)) == (slice(0, 2), slice(0, 2))


def test_a_plane_that_misses_the_head_is_air() -> None:
    """A low plane far beside the head (empty box) renders as air, at stride 1 and 2."""
    anatomy = draw_anatomy(np.random.default_rng(4), w_bottom=-40.0)
    fields = NoiseField(np.random.default_rng(5), scales=(3.2, 2.0, 1.6), step=2.5)
    plane = Plane(
        np.array([400.0, -30.0, -10.0]),
        np.array([0.0, 2.0, 0.0]),
        np.array([2.0, 0.0, 0.0]),
        2.0,
        (64, 64),
    )
    for stride in (1, 2):
        ctx = render_anatomy(anatomy, plane, fields=fields, shift=0.0, stride=stride)
        assert ctx.hu.size >= 4 and np.all(ctx.hu == -1000.0) and not ctx.cavity.any()


@pytest.mark.parametrize(
    ("size", "slices", "seed"), [(128, None, 2019), (96, None, 5), (512, 3, 8)]
)
def test_rendering_the_head_box_changes_no_pixel(
    size: int, slices: int | None, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The phantom is rendered only in the box the head reaches; rendering the whole
    plane instead (as before) gives every pixel, label, mask and note the same."""
    config = SynthConfig(
        exams=4, seed=seed, size=size, slices=slices, sites=3, masks=True, prevalence=1.0
    )
    plans = plan_dataset(config)[:2] if size > 256 else plan_dataset(config)
    boxed = [generate_exam(config, plan) for plan in plans]

    def whole_plane(mask: np.ndarray, *, align: int = 1, margin: int = 2) -> tuple[slice, slice]:
        return slice(0, mask.shape[0]), slice(0, mask.shape[1])

    monkeypatch.setattr(_phantom, "head_box", whole_plane)
    for plan, got in zip(plans, boxed, strict=True):
        want = generate_exam(config, plan)
        np.testing.assert_array_equal(got.hu, want.hu)
        np.testing.assert_array_equal(got.labels, want.labels)
        for name in want.masks:
            np.testing.assert_array_equal(got.masks[name], want.masks[name])
        np.testing.assert_array_equal(got.metadata.brain_mask, want.metadata.brain_mask)
        assert got.metadata.mimics == want.metadata.mimics
        assert got.metadata.artefacts == want.metadata.artefacts
    assert any(exam.labels[:, -1].any() for exam in boxed)
