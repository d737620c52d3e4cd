"""Acute hemorrhages: shape, place and density of each subtype.

Acute blood is 50-90 HU. Each subtype has its typical geometry:

* epidural: biconvex lens against the inner table, mostly temporal, limited in
  extent (sutures), thick centre;
* subdural: crescent of even thickness along the inner table over the
  convexity, wide and tall (crosses sutures), or along the falx;
* subarachnoid: blood filling the CSF spaces (sulci, sylvian fissures, basal
  cisterns) of a region: basal (aneurysmal) or convexity pattern;
* intraventricular: layering in the dependent occipital horns (supine patient:
  posterior) or a cast of one or both lateral ventricles;
* intraparenchymal: rounded or lobulated mass in the basal ganglia, thalamus or
  a lobe, with a hypodense oedema rim; large deep ones may rupture into the
  ventricles (an intraventricular hemorrhage is then added).

Each lesion returns its blood occupancy per plane; the caller multiplies by the
cranial cavity occupancy and paints the HU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ichkit.synth._geometry import F32, Box, smoothstep, soft
from ichkit.synth._phantom import Anatomy, PlaneContext

__all__ = ["Lesion", "draw_lesions", "midline_shift"]


@dataclass(frozen=True)
class Lesion:
    """One hemorrhage (parameters in head coordinates, mm and HU)."""

    subtype: str
    pattern: str
    hu: float
    center: tuple[float, float, float]
    size: float  # radius / half-extent, mm
    thickness: float  # mm (extra-axial) or oedema rim width (parenchymal)
    side: float  # +1 left, -1 right, 0 both
    extra: tuple[float, ...] = ()

    def describe(self) -> dict[str, object]:
        """A JSON-ready description (for metadata and logs)."""
        return {
            "subtype": self.subtype,
            "pattern": self.pattern,
            "hu": round(self.hu, 1),
            "center_mm": [round(c, 1) for c in self.center],
            "size_mm": round(self.size, 1),
            "thickness_mm": round(self.thickness, 1),
            "side": "left" if self.side > 0 else "right" if self.side < 0 else "both",
        }

    # -- rendering -------------------------------------------------------------------
    def render(self, ctx: PlaneContext) -> tuple[F32, F32 | None, Box | None] | None:
        """Blood occupancy (and oedema occupancy) on the plane, or None when absent.

        Returns ``(blood, oedema, box)``; arrays cover ``box`` (whole plane if None).
        """
        w_lo, w_hi = ctx.w_range
        reach = self.size + self.thickness + 10.0
        if self.subtype in ("epidural", "subdural") and (
            w_hi < self.center[2] - reach or w_lo > self.center[2] + reach
        ):
            return None
        fn = getattr(self, f"_render_{self.subtype}")
        result: tuple[F32, F32 | None, Box | None] | None = fn(ctx)
        return result

    def _surface_coords(self, ctx: PlaneContext) -> tuple[F32, F32]:
        """(arc length from the lesion centre along the inner table, depth below it)."""
        theta = np.arctan2(
            (ctx.v - _cv(ctx)) / np.maximum(ctx.b_in, 1.0), ctx.u / np.maximum(ctx.a_in, 1.0)
        )
        d_theta = np.angle(np.exp(1j * (theta - self.extra[0]))).astype(np.float32)
        radius = 0.5 * (ctx.a_in + ctx.b_in)
        return d_theta * radius, -ctx.d_in

    def _render_epidural(self, ctx: PlaneContext) -> tuple[F32, None, None]:
        arc, depth = self._surface_coords(ctx)
        s = np.sqrt(arc**2 + (ctx.w - self.center[2]) ** 2) / self.size
        prof = np.clip(1.0 - s * s, 0.0, 1.0) ** 0.6
        h = self.thickness * prof
        blood = soft(depth - h, ctx.plane.spacing) * np.clip(h / ctx.plane.spacing, 0.0, 1.0)
        return blood.astype(np.float32), None, None

    def _render_subdural(self, ctx: PlaneContext) -> tuple[F32, None, None]:
        ps = ctx.plane.spacing
        if self.pattern == "falx":
            half_len, half_h = self.size, self.extra[1]
            env = np.clip(1.0 - (np.abs(ctx.v - self.center[1]) / half_len) ** 3, 0.0, 1.0)
            env = env * np.clip(1.0 - (np.abs(ctx.w - self.center[2]) / half_h) ** 3, 0.0, 1.0)
            t = self.thickness * env**0.5
            off = ctx.us - self.side * (0.5 * t + 0.6)
            blood = soft(np.abs(off) - 0.5 * t, ps) * np.clip(t / ps, 0.0, 1.0)
            return blood.astype(np.float32), None, None
        arc, depth = self._surface_coords(ctx)
        x = np.abs(arc) / self.size
        z = np.abs(ctx.w - self.center[2]) / self.extra[1]
        prof = np.clip(1.0 - x**3, 0.0, 1.0) * np.clip(1.0 - z**3, 0.0, 1.0)
        h = self.thickness * prof**0.5
        blood = soft(depth - h, ps) * np.clip(h / ps, 0.0, 1.0)
        return blood.astype(np.float32), None, None

    def _render_subarachnoid(self, ctx: PlaneContext) -> tuple[F32, None, None]:
        c = self.center
        d2 = (ctx.u - c[0]) ** 2 + (ctx.v - c[1]) ** 2 + (ctx.w - c[2]) ** 2
        weight = smoothstep((1.0 - np.sqrt(d2) / self.size) / 0.3)
        spaces = ctx.cisterns if self.pattern == "basal" else ctx.csf_spaces
        if self.pattern == "basal":
            spaces = np.maximum(spaces, 0.8 * ctx.csf_spaces)
        blood = spaces * weight * self.thickness
        return blood.astype(np.float32), None, None

    def _render_intraventricular(self, ctx: PlaneContext) -> tuple[F32, None, None]:
        if self.side > 0:
            vent = ctx.vent_left
        elif self.side < 0:
            vent = ctx.vent_right
        else:
            vent = np.maximum(ctx.vent_left, ctx.vent_right)
        if self.pattern == "layering":
            level = self.center[1]
            blood = vent * smoothstep((ctx.v - level) / 3.0 + 0.5)
        else:
            blood = vent * self.thickness
        return blood.astype(np.float32), None, None

    def _render_intraparenchymal(self, ctx: PlaneContext) -> tuple[F32, F32, Box] | None:
        c = self.center
        amp = self.extra[0]
        rim = self.thickness
        box = ctx.plane.box(c, self.size * (1.0 + amp) + rim + 2.0 * ctx.plane.spacing)
        if box is None:
            return None
        u, v, w = ctx.u[box], ctx.v[box], ctx.w[box]
        du, dv, dw = u - c[0], v - c[1], w - c[2]
        d = np.sqrt(du * du + dv * dv + dw * dw) + 1e-6
        az = np.arctan2(dv, du)
        el = dw / d
        lobes = (
            self.extra[1] * np.cos(2.0 * az + self.extra[2])
            + self.extra[3] * np.cos(3.0 * az + self.extra[4])
            + 0.5 * self.extra[1] * el
        )
        r_eff = self.size * (1.0 + amp * lobes)
        ps = ctx.plane.spacing
        blood = soft(d - r_eff, ps)
        oedema = soft(d - r_eff - rim, ps)
        return blood.astype(np.float32), oedema.astype(np.float32), box


def _cv(ctx: PlaneContext) -> float:
    return ctx.cv


def _severity(rng: np.random.Generator) -> float:
    """0 (subtle) .. 1 (large), skewed toward small lesions."""
    return float(rng.beta(1.3, 2.2))


def draw_lesions(rng: np.random.Generator, g: Anatomy, kinds: list[str]) -> list[Lesion]:
    """Draw one lesion of each subtype in ``kinds`` (an IPH may add an IVH)."""
    out: list[Lesion] = []
    for kind in kinds:
        sev = _severity(rng)
        side = float(rng.choice((-1.0, 1.0)))
        blood = float(rng.uniform(55.0, 85.0))
        if kind == "epidural":
            temporal = rng.random() < 0.7
            phi = float(rng.uniform(-0.7, 0.3)) if temporal else float(rng.uniform(-1.3, -0.6))
            theta = phi if side > 0 else np.pi - phi
            w0 = float(rng.uniform(0.0, 30.0)) if temporal else float(rng.uniform(20.0, 65.0))
            out.append(
                Lesion(
                    kind,
                    "temporal" if temporal else "frontoparietal",
                    blood,
                    (0.0, 0.0, w0),
                    14.0 + 22.0 * sev,
                    4.0 + 18.0 * sev,
                    side,
                    (float(theta),),
                )
            )
        elif kind == "subdural":
            if rng.random() < 0.15:
                v0 = float(rng.uniform(-0.3, 0.3) * g.B)
                w0 = float(rng.uniform(25.0, 55.0))
                out.append(
                    Lesion(
                        kind,
                        "falx",
                        blood,
                        (0.0, v0, w0),
                        float(rng.uniform(0.25, 0.5) * g.B),
                        2.0 + 4.0 * sev,
                        side,
                        (0.0, float(rng.uniform(12.0, 25.0))),
                    )
                )
            else:
                phi = float(rng.uniform(-1.0, 1.0))
                theta = phi if side > 0 else np.pi - phi
                out.append(
                    Lesion(
                        kind,
                        "convexity",
                        blood,
                        (0.0, 0.0, float(rng.uniform(15.0, 55.0))),
                        float(rng.uniform(45.0, 95.0)),
                        2.0 + 14.0 * sev,
                        side,
                        (float(theta), float(rng.uniform(20.0, 45.0))),
                    )
                )
        elif kind == "subarachnoid":
            if rng.random() < 0.5:
                c = (
                    float(rng.normal(0.0, 6.0)),
                    float(-0.12 * g.B + rng.normal(0.0, 5.0)),
                    float(rng.uniform(-4.0, 8.0)),
                )
                out.append(
                    Lesion(
                        kind,
                        "basal",
                        float(rng.uniform(60.0, 80.0)),
                        c,
                        25.0 + 35.0 * sev,
                        float(rng.uniform(0.9, 1.0)),
                        0.0,
                    )
                )
            else:
                phi = float(rng.uniform(-1.4, 1.4))
                theta = phi if side > 0 else np.pi - phi
                w0 = float(rng.uniform(20.0, 70.0))
                c = (float(0.85 * g.A * np.cos(theta)), float(0.85 * g.B * np.sin(theta)), w0)
                out.append(
                    Lesion(
                        kind,
                        "convexity",
                        float(rng.uniform(60.0, 80.0)),
                        c,
                        18.0 + 30.0 * sev,
                        float(rng.uniform(0.9, 1.0)),
                        side,
                    )
                )
        elif kind == "intraventricular":
            out.append(_ivh(rng, g, sev, side, blood))
        elif kind == "intraparenchymal":
            r = rng.random()
            if r < 0.45:
                pattern, c = "basal_ganglia", (side * 22.0, -0.04 * g.B, 13.0)
            elif r < 0.6:
                pattern, c = "thalamic", (side * 10.0, 0.10 * g.B, 14.0)
            else:
                pattern = "lobar"
                theta = float(rng.uniform(0.0, 2.0 * np.pi))
                w0 = float(rng.uniform(15.0, 60.0))
                depth = float(rng.uniform(18.0, 32.0))
                scale = np.sqrt(max(1.0 - ((w0 - 28.0) / (g.H - 28.0)) ** 2, 0.2))
                c = (
                    float((g.A * scale - depth) * np.cos(theta)),
                    float((g.B * scale - depth) * np.sin(theta)),
                    w0,
                )
                side = 1.0 if c[0] >= 0 else -1.0
            jitter = rng.normal(0.0, 2.5, 3)
            c = (c[0] + float(jitter[0]), c[1] + float(jitter[1]), c[2] + float(jitter[2]))
            size = 4.0 + 20.0 * sev if pattern != "thalamic" else 4.0 + 10.0 * sev
            lobes = (
                float(rng.uniform(0.1, 0.3)),
                float(rng.uniform(-1, 1)),
                float(rng.uniform(0, 6.3)),
                float(rng.uniform(-1, 1)),
                float(rng.uniform(0, 6.3)),
            )
            out.append(
                Lesion(
                    kind,
                    pattern,
                    float(rng.uniform(60.0, 85.0)),
                    c,
                    size,
                    float(rng.uniform(0.15, 0.5)) * size + 1.0,
                    side,
                    lobes,
                )
            )
            if (
                pattern != "lobar"
                and size > 12.0
                and rng.random() < 0.4
                and "intraventricular" not in kinds
            ):
                out.append(_ivh(rng, g, sev, side, blood))
    return out


def _ivh(rng: np.random.Generator, g: Anatomy, sev: float, side: float, blood: float) -> Lesion:
    if rng.random() < 0.55:
        level = float((0.42 - 0.2 * sev) * g.B)
        sides = 0.0 if rng.random() < 0.6 else side
        return Lesion("intraventricular", "layering", blood, (0.0, level, 18.0), 10.0, 1.0, sides)
    return Lesion(
        "intraventricular",
        "cast",
        blood,
        (0.0, 0.0, 20.0),
        20.0,
        float(rng.uniform(0.7, 1.0)),
        side if rng.random() < 0.6 else 0.0,
    )


def midline_shift(lesions: list[Lesion]) -> float:
    """Midline shift (mm, toward +u = left) caused by the lesions' mass effect."""
    shift = 0.0
    for les in lesions:
        if les.subtype == "epidural":
            shift -= les.side * 0.35 * les.thickness * les.size / 30.0
        elif les.subtype == "subdural" and les.pattern == "convexity":
            shift -= les.side * 0.45 * les.thickness * min(les.size / 60.0, 1.2)
        elif les.subtype == "intraparenchymal" and les.size > 10.0:
            shift -= les.side * 0.3 * (les.size - 6.0)
    return float(np.clip(shift, -14.0, 14.0))
