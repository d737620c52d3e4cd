"""Hard negatives that mimic blood: physiological calcifications.

Pineal gland, choroid plexus (in the ventricular atria), globus pallidus and
falx plaques calcify in many normal adults; they are 100-400 HU, bright in the
brain window, and must not be called hemorrhage. Dense falx and tentorium,
partial-volume bone at the skull base and streaks come from the anatomy and
artefact modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ichkit.synth._phantom import Anatomy, Ellipsoid, PlaneContext

__all__ = ["Calcification", "draw_mimics", "paint_mimics"]


@dataclass(frozen=True)
class Calcification:
    """One calcified focus."""

    shape: Ellipsoid
    hu: float

    @property
    def name(self) -> str:
        return self.shape.name


def draw_mimics(rng: np.random.Generator, g: Anatomy) -> list[Calcification]:
    """Draw the calcifications of one head (each present with its prevalence)."""
    out: list[Calcification] = []
    if rng.random() < 0.7:
        r = float(rng.uniform(1.8, 3.5))
        out.append(
            Calcification(
                Ellipsoid("pineal", (0.0, 0.20 * g.B, 12.5), (r, r * 1.2, r)),
                float(rng.uniform(150, 400)),
            )
        )
    if rng.random() < 0.6:
        for side in (-1.0, 1.0):
            atrium = next(e for e in g.ventricles if e.name == "atrium" and e.center[0] * side > 0)
            r = float(rng.uniform(2.0, 3.8))
            c = (atrium.center[0] + side * 1.0, atrium.center[1] + 2.0, atrium.center[2] - 1.0)
            out.append(
                Calcification(
                    Ellipsoid("choroid_plexus", c, (r, r * 1.3, r)), float(rng.uniform(100, 260))
                )
            )
    if rng.random() < 0.2:
        for side in (-1.0, 1.0):
            r = float(rng.uniform(1.5, 3.0))
            out.append(
                Calcification(
                    Ellipsoid("basal_ganglia", (side * 18.5, -0.03 * g.B, 12.0), (r, r * 1.5, r)),
                    float(rng.uniform(100, 200)),
                )
            )
    if rng.random() < 0.25:
        v = float(rng.uniform(-0.5, 0.3) * g.B)
        w = float(rng.uniform(35.0, 70.0))
        out.append(
            Calcification(
                Ellipsoid(
                    "falx_plaque",
                    (0.0, v, w),
                    (1.2, float(rng.uniform(3, 8)), float(rng.uniform(2, 4))),
                ),
                float(rng.uniform(150, 400)),
            )
        )
    return out


def paint_mimics(
    ctx: PlaneContext, hu: np.ndarray, mimics: list[Calcification], shift: float
) -> list[str]:
    """Paint calcifications into ``hu`` (in place); return the names seen in this plane."""
    seen: list[str] = []
    ps = ctx.plane.spacing
    for m in mimics:
        s = shift if m.name in ("pineal", "choroid_plexus") else 0.0
        hit = m.shape.fraction(ctx.plane, ps, s)
        if hit is None:
            continue
        frac, box = hit
        frac = frac * ctx.cavity[box]
        if float(frac.max()) <= 0.0:
            continue
        hu[box] += (m.hu - hu[box]) * frac
        if float(frac.max()) >= 0.5:
            seen.append(m.name)
    return seen
