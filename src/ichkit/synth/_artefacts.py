"""Scanner artefacts: correlated noise, beam-hardening streaks, motion blur."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage  # type: ignore[import-untyped]

__all__ = ["add_noise", "add_streaks", "motion_blur"]


def add_noise(
    hu: NDArray[np.float32], rng: np.random.Generator, *, sigma: float, corr_px: float
) -> None:
    """Add Gaussian noise of standard deviation ``sigma`` HU with a correlation
    length of ``corr_px`` pixels (the reconstruction kernel's noise texture), in place."""
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    if corr_px > 0.3:
        noise = ndimage.gaussian_filter(noise, corr_px, mode="wrap")
        x = np.arange(-int(4 * corr_px) - 1, int(4 * corr_px) + 2, dtype=np.float64)
        k = np.exp(-0.5 * (x / corr_px) ** 2)
        k /= k.sum()
        noise /= float(np.sum(k * k))  # 2-D gain = (sum k^2) ** (2 / 2)
    hu += sigma * noise


def add_streaks(
    hu: NDArray[np.float32],
    rng: np.random.Generator,
    *,
    center_rc: tuple[float, float],
    spacing: float,
    head: NDArray[np.float32],
) -> None:
    """Beam-hardening streaks near the skull base, in place.

    A dark band between the petrous bones (the Hounsfield bar) and a few thin
    bright/dark streaks radiating from dense bone; only inside the head.
    """
    rows, cols = hu.shape
    r = np.arange(rows, dtype=np.float32)[:, None]
    c = np.arange(cols, dtype=np.float32)[None, :]
    # (angle, amplitude HU, half-width mm, half-length mm): a dark band between
    # the petrous bones, then thin bright/dark streaks fading along their length
    lines = [(float(rng.normal(0.0, 0.15)), float(rng.uniform(-35, -15)), 4.5, 35.0)]
    for _ in range(int(rng.integers(2, 6))):
        lines.append(
            (
                float(rng.uniform(-np.pi, np.pi)),
                float(rng.choice((-1, 1)) * rng.uniform(15, 45)),
                float(rng.uniform(0.6, 1.5)),
                float(rng.uniform(20.0, 45.0)),
            )
        )
    out = np.zeros_like(hu)
    dr = (r - center_rc[0]) * spacing
    dc = (c - center_rc[1]) * spacing
    for angle, amp, width, length in lines:
        nr, nc = np.cos(angle), -np.sin(angle)  # normal of a line at `angle` to the rows
        dist = dr * nr + dc * nc
        along = dc * nr - dr * nc
        out += amp * np.exp(-((dist / width) ** 2) - (along / length) ** 2)
    hu += out * head


def motion_blur(
    hu: NDArray[np.float32], rng: np.random.Generator, *, spacing: float
) -> NDArray[np.float32]:
    """Blur and ghost a slice along a random in-plane direction (patient motion)."""
    sigma = float(rng.uniform(1.0, 3.0)) / spacing
    axis = int(rng.integers(0, 2))
    blurred = ndimage.gaussian_filter1d(hu, sigma, axis=axis, mode="nearest")
    shift = max(1, round(float(rng.uniform(2.0, 5.0)) / spacing))
    ghost = np.roll(blurred, shift, axis=axis)
    return np.asarray(0.85 * blurred + 0.15 * ghost, dtype=np.float32)
