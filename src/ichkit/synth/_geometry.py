"""Sampling planes, signed distances and smooth random fields for the phantom.

Everything is vectorised over the pixels of one plane. A :class:`Plane` maps
pixel (row, col) to *head* coordinates (u, v, w) in mm: u to the patient's
left, v to the back (posterior), w up (superior) from the skull-base reference
plane. Small structures are evaluated only in the pixel box around them
(:meth:`Plane.box`), large ones on the whole plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage  # type: ignore[import-untyped]

F32 = NDArray[np.float32]
Box = tuple[slice, slice]

__all__ = [
    "F32",
    "Box",
    "NoiseField",
    "Plane",
    "ellipse_distance",
    "ellipsoid_fraction",
    "smoothstep",
    "soft",
]


@dataclass(frozen=True)
class Plane:
    """An image plane in head coordinates: point(r, c) = origin + r*d_row + c*d_col.

    ``d_row`` and ``d_col`` are orthogonal, each of length ``spacing`` mm. A
    window of a larger plane (:meth:`window`) keeps that plane's ``origin`` and
    records where it starts (``offset``, pixels): its pixel (r, c) is the
    larger plane's (r + offset[0], c + offset[1]), with bit-identical coordinates.
    """

    origin: NDArray[np.float64]
    d_row: NDArray[np.float64]
    d_col: NDArray[np.float64]
    spacing: float
    shape: tuple[int, int]
    offset: tuple[int, int] = (0, 0)

    def window(self, box: Box) -> Plane:
        """The part of this plane in ``box`` (slices of its pixels), as a plane."""
        rs, cs = box
        return Plane(
            self.origin,
            self.d_row,
            self.d_col,
            self.spacing,
            (rs.stop - rs.start, cs.stop - cs.start),
            (self.offset[0] + rs.start, self.offset[1] + cs.start),
        )

    def axis_positions(self, stride: int = 1, extra: int = 0) -> tuple[NDArray[np.float64], ...]:
        """Row and column indices (float, in the un-windowed plane) of every ``stride``-th pixel.

        ``extra`` more samples are taken past the last pixel.
        """
        (n_r, n_c), (o_r, o_c) = self.shape, self.offset
        r = np.arange(o_r, o_r + n_r + extra * stride, stride, dtype=np.float64)
        c = np.arange(o_c, o_c + n_c + extra * stride, stride, dtype=np.float64)
        return r, c

    def coords(self, box: Box | None = None) -> tuple[F32, F32, F32]:
        """(u, v, w) arrays (float32) of the pixels in ``box`` (whole plane if None)."""
        rs, cs = box if box is not None else (slice(0, self.shape[0]), slice(0, self.shape[1]))
        o_r, o_c = self.offset
        r = np.arange(o_r + rs.start, o_r + rs.stop, dtype=np.float64)[:, None]
        c = np.arange(o_c + cs.start, o_c + cs.stop, dtype=np.float64)[None, :]
        out = []
        for k in range(3):
            a = self.origin[k] + r * self.d_row[k] + c * self.d_col[k]
            out.append(a.astype(np.float32))
        return out[0], out[1], out[2]

    def box(self, center: tuple[float, float, float], radius: float) -> Box | None:
        """Pixel box holding the plane's intersection with a ball, or None if none."""
        p = np.asarray(center, dtype=np.float64) - self.origin
        s2 = self.spacing**2
        r0 = float(p @ self.d_row) / s2
        c0 = float(p @ self.d_col) / s2
        foot = r0 * self.d_row + c0 * self.d_col
        h2 = float(np.sum((p - foot) ** 2))
        if h2 >= radius**2:
            return None
        r0 -= self.offset[0]
        c0 -= self.offset[1]
        rad = np.sqrt(radius**2 - h2) / self.spacing + 2.0
        r_lo, r_hi = max(int(np.floor(r0 - rad)), 0), min(int(np.ceil(r0 + rad)) + 1, self.shape[0])
        c_lo, c_hi = max(int(np.floor(c0 - rad)), 0), min(int(np.ceil(c0 + rad)) + 1, self.shape[1])
        if r_lo >= r_hi or c_lo >= c_hi:
            return None
        return slice(r_lo, r_hi), slice(c_lo, c_hi)


def soft(distance: NDArray[np.floating], width: float) -> F32:
    """Occupancy in [0, 1] of a region given a signed distance (mm, negative inside).

    A linear ramp one ``width`` wide gives anti-aliased, partial-volume edges.
    """
    return np.asarray(np.clip(0.5 - distance / width, 0.0, 1.0), dtype=np.float32)


def smoothstep(x: NDArray[np.floating]) -> F32:
    """Smooth step from 0 (x <= 0) to 1 (x >= 1)."""
    t = np.clip(x, 0.0, 1.0)
    return np.asarray(t * t * (3.0 - 2.0 * t), dtype=np.float32)


def ellipse_distance(
    u: NDArray[np.floating],
    v: NDArray[np.floating],
    a: NDArray[np.floating] | float,
    b: NDArray[np.floating] | float,
    cu: float = 0.0,
    cv: NDArray[np.floating] | float = 0.0,
) -> F32:
    """Approximate signed distance (mm) to an axis-aligned ellipse, negative inside.

    First-order estimate (rho - 1) / |grad rho| with rho the normalised radius;
    accurate near the boundary, which is where it is used.
    """
    a = np.maximum(a, 1e-3)
    b = np.maximum(b, 1e-3)
    du = (u - cu) / a
    dv = (v - cv) / b
    rho = np.sqrt(du * du + dv * dv) + 1e-6
    grad = np.sqrt((du / a) ** 2 + (dv / b) ** 2) / rho + 1e-6
    return np.asarray((rho - 1.0) / grad, dtype=np.float32)


def ellipsoid_fraction(
    u: F32,
    v: F32,
    w: F32,
    center: tuple[float, float, float],
    radii: tuple[float, float, float],
    width: float,
    angle: float = 0.0,
) -> F32:
    """Soft occupancy of an ellipsoid (rotated by ``angle`` rad about the w axis)."""
    du = u - center[0]
    dv = v - center[1]
    if angle:
        ca, sa = np.cos(angle), np.sin(angle)
        du, dv = ca * du + sa * dv, -sa * du + ca * dv
    x = du / radii[0]
    y = dv / radii[1]
    z = (w - center[2]) / radii[2]
    q = np.sqrt(x * x + y * y + z * z) + 1e-6
    grad = np.sqrt((x / radii[0]) ** 2 + (y / radii[1]) ** 2 + (z / radii[2]) ** 2) / q + 1e-6
    return soft((q - 1.0) / grad, width)


class NoiseField:
    """Smooth random 3-D fields with unit standard deviation, in head coordinates.

    One channel per entry of ``scales``: white noise on a coarse grid (``step``
    mm) covering the head, smoothed by a Gaussian of that scale (mm), sampled
    by trilinear interpolation. Large planes are sampled on every
    ``stride``-th pixel and upsampled bilinearly.
    """

    LOW = np.array([-105.0, -125.0, -65.0])
    HIGH = np.array([105.0, 125.0, 155.0])

    def __init__(self, rng: np.random.Generator, *, scales: tuple[float, ...], step: float) -> None:
        shape = tuple(
            int(np.ceil((h - lo) / step)) + 2 for lo, h in zip(self.LOW, self.HIGH, strict=True)
        )
        self.flat: list[F32] = []
        for scale in scales:
            raw = rng.standard_normal(shape, dtype=np.float32)
            smooth = ndimage.gaussian_filter(raw, sigma=scale / step, mode="wrap", truncate=3.0)
            smooth /= float(smooth.std()) + 1e-9
            self.flat.append(np.ascontiguousarray(smooth, dtype=np.float32).reshape(-1))
        # trilinear and bilinear interpolation are convex combinations of grid values
        self._abs_max = [float(np.abs(flat).max()) for flat in self.flat]
        self.shape = shape
        self.step = step

    def sample(self, plane: Plane, channels: tuple[int, ...], stride: int = 1) -> list[F32]:
        """Values of the given channels at the pixels of ``plane``.

        With ``stride`` > 1 a window of a plane (:meth:`Plane.window`) gets the
        same values as the same pixels of the whole plane when its offset is a
        multiple of ``stride`` (the samples fall on the same grid).
        """
        n_r, n_c = plane.shape
        r, c = plane.axis_positions(stride, extra=1 if stride > 1 else 0)
        pts = [
            plane.origin[k] + r[:, None] * plane.d_row[k] + c[None, :] * plane.d_col[k]
            for k in range(3)
        ]
        out = self.at_points(pts[0], pts[1], pts[2], channels)
        if stride > 1:
            out = [_upsample(ch, stride, (n_r, n_c)) for ch in out]
        return out

    def abs_max(self, channel: int) -> float:
        """Largest magnitude the channel takes anywhere (a bound for every sample)."""
        return self._abs_max[channel]

    def at_points(
        self,
        u: NDArray[np.floating],
        v: NDArray[np.floating],
        w: NDArray[np.floating],
        channels: tuple[int, ...],
    ) -> list[F32]:
        """Values of the given channels at arbitrary head coordinates (trilinear)."""
        idx = []
        frac = []
        for k, coord in enumerate((u, v, w)):
            p = np.clip((coord - self.LOW[k]) / self.step, 0.0, self.shape[k] - 1.001)
            i = p.astype(np.int32)
            idx.append(i)
            frac.append((p - i).astype(np.float32))
        sy, sz = self.shape[1] * self.shape[2], self.shape[2]
        base = idx[0] * sy + idx[1] * sz + idx[2]
        fx, fy, fz = frac
        gx, gy, gz = 1 - fx, 1 - fy, 1 - fz
        corners = [
            (base, gx * gy * gz),
            (base + 1, gx * gy * fz),
            (base + sz, gx * fy * gz),
            (base + sz + 1, gx * fy * fz),
            (base + sy, fx * gy * gz),
            (base + sy + 1, fx * gy * fz),
            (base + sy + sz, fx * fy * gz),
            (base + sy + sz + 1, fx * fy * fz),
        ]
        out = []
        for ch in channels:
            flat = self.flat[ch]
            acc = np.zeros(base.shape, dtype=np.float32)
            for index, weight in corners:
                acc += np.take(flat, index) * weight
            out.append(acc)
        return out


def _upsample(coarse: F32, f: int, shape: tuple[int, int]) -> F32:
    """Bilinear upsampling of samples taken every ``f`` pixels to ``shape``."""
    out = coarse
    for axis, n in enumerate(shape):
        pos = np.arange(n, dtype=np.float32) / f
        i0 = np.minimum(pos.astype(np.int64), out.shape[axis] - 2)
        t = pos - i0
        a = np.take(out, i0, axis=axis)
        b = np.take(out, i0 + 1, axis=axis)
        shape_t = [1, 1]
        shape_t[axis] = n
        t = t.reshape(shape_t)
        out = a + (b - a) * t
    return out.astype(np.float32, copy=False)
