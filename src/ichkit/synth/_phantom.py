"""The head phantom: per-exam anatomy drawn at random, rendered plane by plane.

Head coordinates (mm): u to the patient's left, v posterior, w superior, with
w = 0 near the floor of the anterior cranial fossa. The head is three nested
dome-topped elliptical layers (inner table, outer table, skin) over a skull
base whose floor (a smooth height field, :meth:`Anatomy.floor`) steps down
from the anterior fossa (domed orbital roofs) over the curved sphenoid ridges
to the oval bowls of the middle fossae and, behind the curved petrous crests
and the clivus, to the steep-walled bowl of the posterior fossa. Below the
floor: orbits, ethmoid / sphenoid / maxillary sinuses, nasal cavity, mastoid
air cells and the frontal sinus in the frontal bone, all (super)ellipsoids,
so every cut is a smooth curve. Inside: cortex with gyri
(zero crossings of a smooth random field give meandering sulci), white matter,
deep grey nuclei, lateral / third / fourth ventricles, sylvian and
interhemispheric fissures, basal cisterns, brainstem and cerebellum.

HU values follow standard references for non-contrast head CT (e.g.
Hounsfield-unit tables in Osborn's Diagnostic Neuroradiology): grey matter
35-40, white matter 25-30, CSF 0-10, cortical bone 700-1800, fat -100,
air -1000.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ichkit.synth._geometry import (
    F32,
    Box,
    NoiseField,
    Plane,
    ellipse_distance,
    ellipsoid_fraction,
    smoothstep,
    soft,
)

__all__ = [
    "Anatomy",
    "Ellipsoid",
    "PlaneContext",
    "draw_anatomy",
    "head_box",
    "render_anatomy",
]

AIR_HU = -1000.0


@dataclass(frozen=True)
class Ellipsoid:
    """A named ellipsoid in head coordinates (radii in mm; ``angle`` about w, rad)."""

    name: str
    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    angle: float = 0.0

    def fraction(
        self, plane: Plane, width: float, shift: float = 0.0
    ) -> tuple[F32, tuple[slice, slice]] | None:
        """Soft occupancy in the plane's pixel box around it (None when it misses)."""
        c = (self.center[0] + shift, self.center[1], self.center[2])
        box = plane.box(c, max(self.radii) + width)
        if box is None:
            return None
        u, v, w = plane.coords(box)
        return ellipsoid_fraction(u, v, w, c, self.radii, width, self.angle), box


@dataclass(frozen=True)
class Anatomy:
    """Drawn parameters of one head (all lengths in mm, densities in HU)."""

    A: float  # inner-table semi-axis, left-right, at the widest level
    B: float  # inner-table semi-axis, antero-posterior
    H: float  # height of the inner table's dome top above w = 0
    wm: float  # height of the widest level
    cv: float  # antero-posterior offset of the cranial ellipse centre
    skull_t: float
    scalp_t: float
    atrophy: float  # 0 young .. 1 atrophic
    vent_scale: float
    csf_rim: float
    sulcal_width: float  # in units of the unit-variance sulcal field
    sulcal_depth: float
    gm_hu: float
    wm_hu: float
    csf_hu: float
    scalp_hu: float
    bone_hu: float
    diploe_hu: float
    falx_hu: float
    floor_ant: float
    floor_mid: float
    w_bottom: float
    w_top: float
    ventricles: tuple[Ellipsoid, ...] = field(default_factory=tuple)
    nuclei: tuple[Ellipsoid, ...] = field(default_factory=tuple)

    # -- layer shapes -----------------------------------------------------------
    def axes(self, w: F32, grow: float, grow_top: float) -> tuple[F32, F32]:
        """Semi-axes (a, b) of a layer ``grow`` mm outside the inner table at heights w."""
        top = self.H + grow_top
        up = np.clip((w - self.wm) / (top - self.wm), 0.0, 1.0)
        dome = np.sqrt(np.clip(1.0 - up * up, 0.0, 1.0))
        low = np.clip((self.wm - w) / 90.0, 0.0, 1.0)
        taper = 1.0 - 0.22 * low * low
        s = np.where(w >= self.wm, dome, taper).astype(np.float32)
        return (self.A + grow) * s, (self.B + grow * 1.15) * s

    def petrous_v(self, u: F32) -> F32:
        """Antero-posterior position of the posterior face of the petrous ridge at u.

        The ridges run from the petrous apex beside the clivus posterolaterally
        to the mastoid, curving backward laterally.
        """
        au = np.abs(u)
        return (-0.05 * self.B + 0.2 * au + 0.009 * au * au).astype(np.float32)

    def sphenoid_v(self, au: F32) -> F32:
        """Antero-posterior position of the sphenoid ridge (back of the anterior fossa)."""
        x = np.clip(au - 8.0, 0.0, None)
        return np.asarray(-0.20 * self.B - 0.35 * x - 0.006 * x * x, dtype=np.float32)

    def floor(self, u: F32, v: F32) -> F32:
        """Height of the skull-base floor of the cranial cavity below (u, v)."""
        return self.floor_parts(u, v)[0]

    def floor_parts(self, u: F32, v: F32) -> tuple[F32, F32, F32, F32]:
        """(floor height, petrous ridge position, distance to its crest, crest height).

        A smooth height field: the anterior fossa (orbital roofs domed up either
        side of the cribriform plate, rising into the frontal bone), the bowls
        of the middle fossae behind the curved sphenoid ridges, the sphenoid
        body and clinoids between them, the occipital bowl of the posterior
        fossa behind the clivus, and the petrous crests between middle and
        posterior fossae. Level sets of it are the curved bony outlines seen
        on axial slices.
        """
        A, B = self.A, self.B  # noqa: N806
        au = np.abs(u)
        dome = np.exp(-(((au - 0.36 * A) / (0.2 * A)) ** 2) - ((v + 0.6 * B) / (0.22 * B)) ** 2)
        rf = np.sqrt((u / (0.8 * A)) ** 2 + ((v + 0.15 * B) / (0.85 * B)) ** 2)
        front = np.clip((rf - 0.78) / 0.22, 0.0, 1.0) ** 2 * smoothstep((-v - 0.3 * B) / (0.3 * B))
        ant = self.floor_ant - 3.0 * np.exp(-((u / 6.0) ** 2)) + 5.0 * dome + 12.0 * front
        # middle fossae: an oval bowl under each temporal lobe, its pole forward
        # and medial; above the anterior fossa floor the walls give way
        ca, sa = np.cos(0.35), np.sin(0.35)
        x = au - 0.58 * A
        y = v + 0.1 * B
        xr = (ca * x + sa * y) / (0.27 * A)
        yr = (-sa * x + ca * y) / (0.31 * B)
        mid = np.minimum(self.floor_mid + 22.0 * (xr * xr + yr * yr), self.floor_ant - 2.0)
        t1 = smoothstep((v - self.sphenoid_v(au)) / 10.0 + 0.5)
        f = ant + (mid - ant) * t1
        # sphenoid body (planum, sella) and the anterior clinoid processes
        d_body = np.maximum(ellipse_distance(u, v, 11.0, 0.13 * B, 0.0, -0.22 * B), 0.0)
        f = np.maximum(f, -10.0 - 0.3 * d_body * d_body)
        clin = (au - 11.0) ** 2 + (v + 0.2 * B - 2.0) ** 2
        f = np.maximum(f, -3.0 - 0.3 * clin)
        # posterior fossa: the occipital bowl behind the clivus and petrous ridges
        pv = self.petrous_v(u)
        medial = np.exp(-((u / 12.0) ** 2))
        t2 = smoothstep((v - pv - 3.0 * medial) / (6.0 + 8.0 * medial) + 0.5)
        r2 = ((u / 0.8) ** 2 + (v - 0.35 * B) ** 2) / 3600.0
        post = -75.0 + 50.0 * r2 * r2  # steep-walled: the occipital bowl
        f = f + (post - f) * t2
        # petrous crests, falling away to both fossae (widening downward)
        dist, top = self.petrous_crest(u, v)
        f = np.maximum(f, top - 0.25 * dist * dist)
        return np.asarray(f, dtype=np.float32), pv, dist, top

    def petrous_crest(self, u: F32, v: F32) -> tuple[F32, F32]:
        """(perpendicular distance to the petrous crest line, crest height) at (u, v)."""
        au = np.abs(u)
        slope = 0.2 + 0.018 * au
        dist = (v - self.petrous_v(u) + 6.0) / np.sqrt(1.0 + slope * slope)
        top = -11.0 - 0.05 * au - 14.0 * (1.0 - smoothstep((au - 6.0) / 10.0))
        return dist.astype(np.float32), top.astype(np.float32)

    def brainstem_v(self, w: F32) -> F32:
        """Antero-posterior centre of the brainstem at heights w (it leans back downward)."""
        lean = 0.25 * np.clip(w + 20.0, None, 20.0)
        return np.asarray(-0.05 * self.B + 14.5 - lean, dtype=np.float32)

    def tentorium(self, u: F32, v: F32) -> F32:
        """Height of the tentorium cerebelli above (u, v) (posterior fossa roof)."""
        return (6.0 - 0.16 * np.abs(u) - 0.12 * np.clip(v, 0.0, None)).astype(np.float32)


def draw_anatomy(rng: np.random.Generator, *, w_bottom: float) -> Anatomy:
    """Draw one head: size, shape, atrophy, ventricles, densities."""
    A = float(rng.uniform(62.0, 71.0))  # noqa: N806 (semi-axes named as in the dataclass)
    B = float(rng.uniform(81.0, 92.0))  # noqa: N806
    H = float(rng.uniform(92.0, 118.0))  # noqa: N806
    atrophy = float(np.clip(rng.beta(1.6, 2.8), 0.0, 1.0))
    sv = float(np.clip(0.7 + 1.1 * atrophy + rng.normal(0.0, 0.08), 0.6, 1.9))
    skull_t = float(rng.uniform(5.0, 8.0))
    scalp_t = float(rng.uniform(4.0, 7.0))
    gm = float(rng.uniform(35.0, 40.0))
    wmh = float(rng.uniform(25.0, 29.5))
    vents: list[Ellipsoid] = []
    nuclei: list[Ellipsoid] = []
    for side in (-1.0, 1.0):
        tilt = float(rng.normal(0.0, 0.05))
        vents += [
            Ellipsoid(
                "frontal_horn",
                (side * (4.5 + 2.5 * sv), -0.25 * B, 22.0),
                (3.5 * sv, 0.17 * B, 9.0),
                side * (0.3 + tilt),
            ),
            Ellipsoid(
                "body",
                (side * (8.0 + 2.2 * sv), 0.0 * B, 28.0),
                (4.0 * sv, 0.30 * B, 8.0),
                -side * 0.06,
            ),
            Ellipsoid(
                "atrium",
                (side * (15.0 + 2.0 * sv), 0.27 * B, 21.0),
                (5.5 * sv, 0.15 * B, 9.0),
                -side * (0.35 + tilt),
            ),
            Ellipsoid(
                "occipital_horn",
                (side * (16.0 + 1.5 * sv), 0.42 * B, 17.0),
                (3.0 * sv, 0.10 * B, 5.0),
                -side * 0.25,
            ),
            Ellipsoid(
                "temporal_horn",
                (side * 29.0, -0.02 * B, -8.0),
                (2.0 * sv, 0.12 * B, 3.5),
                side * 0.35,
            ),
        ]
        nuclei += [
            Ellipsoid(
                "caudate",
                (side * (11.5 + 3.0 * sv), -0.24 * B, 22.0),
                (3.8, 0.09 * B, 8.0),
                side * 0.2,
            ),
            Ellipsoid(
                "lentiform",
                (side * (22.0 + sv), -0.04 * B, 13.0),
                (5.5, 0.15 * B, 9.0),
                side * 0.28,
            ),
            Ellipsoid(
                "thalamus", (side * (8.0 + sv), 0.10 * B, 14.0), (7.5, 0.10 * B, 8.0), side * 0.1
            ),
        ]
    vents += [
        Ellipsoid("third", (0.0, 0.02 * B, 10.0), (1.0 + 1.5 * sv, 0.13 * B, 7.0)),
        Ellipsoid("fourth", (0.0, -0.05 * B + 25.5, -24.0), (5.0 + 2.0 * sv, 2.0 + sv, 9.0)),
    ]
    return Anatomy(
        A=A,
        B=B,
        H=H,
        wm=float(rng.uniform(22.0, 34.0)),
        cv=float(rng.uniform(-4.0, 4.0)),
        skull_t=skull_t,
        scalp_t=scalp_t,
        atrophy=atrophy,
        vent_scale=sv,
        csf_rim=float(0.8 + 2.5 * atrophy),
        sulcal_width=float(0.10 + 0.16 * atrophy),
        sulcal_depth=float(rng.uniform(11.0, 17.0)),
        gm_hu=gm,
        wm_hu=wmh,
        csf_hu=float(rng.uniform(2.0, 9.0)),
        scalp_hu=float(rng.uniform(30.0, 45.0)),
        bone_hu=float(rng.uniform(1100.0, 1700.0)),
        diploe_hu=float(rng.uniform(450.0, 750.0)),
        falx_hu=float(rng.uniform(40.0, 80.0)),
        floor_ant=float(rng.uniform(-8.0, -2.0)),
        floor_mid=float(rng.uniform(-30.0, -24.0)),
        w_bottom=w_bottom,
        w_top=H + skull_t + scalp_t + 3.0,
        ventricles=tuple(vents),
        nuclei=tuple(nuclei),
    )


@dataclass
class PlaneContext:
    """Fields of one rendered plane that lesions and mimics build on.

    They cover the part of the plane the head reaches (``plane`` is that window;
    ``box`` is where it lies in the whole plane, which is air elsewhere);
    ``w_range`` is the height range of the whole plane.
    """

    plane: Plane
    box: Box
    w_range: tuple[float, float]
    u: F32
    v: F32
    w: F32
    us: F32  # u after the midline shift (deep structures)
    a_in: F32
    b_in: F32
    d_in: F32  # signed distance to the inner table (negative inside)
    depth: F32  # distance into the cavity from its wall (mm)
    cavity: F32  # occupancy of the cranial cavity
    csf_spaces: F32  # subarachnoid spaces: rim, sulci, fissures, cisterns
    cisterns: F32
    vent_left: F32
    vent_right: F32
    brain_hu: F32  # HU of the cavity content before lesions and mimics
    hu: F32  # HU of the whole plane before lesions and mimics
    fissure: F32
    posterior_fossa: F32
    cv: float = 0.0


def render_anatomy(
    g: Anatomy,
    plane: Plane,
    *,
    fields: NoiseField,
    shift: float,
    stride: int,
) -> PlaneContext:
    """Render the normal anatomy on one plane.

    ``shift`` is the midline shift (mm, toward +u) applied to deep structures.
    Regions the plane cannot reach (skull base, posterior fossa, sylvian
    fissures…) are skipped by their height range, and only the box of the plane
    that the head reaches is rendered (the context's ``box``; the rest is air).
    """
    ps = plane.spacing
    u, v, w = plane.coords()
    w_lo, w_hi = float(w.min()), float(w.max())
    sinus_on = w_lo < g.floor_ant + 26.0 and w_hi > g.floor_ant - 4.0
    # Everything but air lies where a layer reaches (a soft edge is > 0 below half a
    # pixel out); the rest of the work is done in that box only. The outer table's
    # outline moves out by at most half the texture's largest value and, on
    # sinus planes, the frontal thickening's 6 mm. The layers are ellipses no wider
    # than at the widest level, so a first box bounds them in u and v (with 10 mm
    # to spare for the approximate distance), a second one by the layers themselves.
    slack = 0.5 * fields.abs_max(1) + (6.0 if sinus_on else 0.0)
    grow = g.skull_t + g.scalp_t
    near = head_box(
        (np.abs(u) < g.A + grow + slack + 10.0)
        & (np.abs(v - g.cv) < g.B + 1.15 * grow + slack + 10.0),
        align=stride,
    )
    plane = plane.window(near)
    u, v, w = u[near], v[near], w[near]
    # --- layers: skin, outer table, inner table --------------------------------
    a_in, b_in = g.axes(w, 0.0, 0.0)
    d_in = ellipse_distance(u, v, a_in, b_in, 0.0, g.cv)
    a_out, b_out = g.axes(w, g.skull_t, g.skull_t * 1.2)
    e_out = ellipse_distance(u, v, a_out, b_out, 0.0, g.cv)
    a_sk, b_sk = g.axes(w, grow, grow * 1.1)
    d_skin = ellipse_distance(u, v, a_sk, b_sk, 0.0, g.cv)
    local = head_box((d_skin < ps) | (e_out - slack < ps) | (d_in < ps), align=stride)
    plane = plane.window(local)
    shape = plane.shape
    u, v, w, a_in, b_in, d_in, e_out, d_skin = (
        x[local] for x in (u, v, w, a_in, b_in, d_in, e_out, d_skin)
    )
    inside: Box = (
        slice(near[0].start + local[0].start, near[0].start + local[0].stop),
        slice(near[1].start + local[1].start, near[1].start + local[1].stop),
    )
    (tex,) = fields.sample(plane, (1,), stride=stride)
    d_out = e_out - 0.5 * tex
    if sinus_on:
        # the frontal bone thickens low in front, around the frontal sinus
        sw_ = np.clip(1.0 - ((w - g.floor_ant - 11.0) / 15.0) ** 2, 0.0, 1.0)
        front = smoothstep((-(v - g.cv) - 0.55 * g.B) / (0.3 * g.B))
        d_out = d_out - 6.0 * np.exp(-((u / 24.0) ** 2)) * sw_ * front
    f_skin = soft(d_skin, ps)
    f_outer = soft(d_out, ps)
    f_in = soft(d_in, ps)

    hu = np.full(shape, AIR_HU, dtype=np.float32)
    hu += f_skin * (g.scalp_hu + 3.0 * tex - AIR_HU)
    # cortical tables with a lower-density diploe between them
    shell = np.maximum(d_in - d_out, 1e-3)
    pos = np.clip(d_in / shell, 0.0, 1.0)
    diploe = np.clip(1.0 - np.abs(pos - 0.5) / 0.25, 0.0, 1.0) * np.clip(
        (shell - 3.0) / 2.0, 0.0, 1.0
    )
    bone = g.bone_hu + 120.0 * tex
    bone = bone + (g.diploe_hu + 120.0 * tex - bone) * diploe
    if sinus_on:
        # frontal sinus: a bilobed air pocket within the frontal bone, low only
        half = 17.0 * np.sqrt(np.clip(1.0 - ((w - g.floor_ant - 8.0) / 11.0) ** 2, 0.0, 1.0))
        in_bone = soft(np.abs(pos - 0.52) - 0.26, 0.12) * np.clip((shell - 5.0) / 3.0, 0.0, 1.0)
        sinus = (
            soft(np.abs(u) - half + 1.5 * tex, ps)
            * (1.0 - soft(np.abs(u - 1.5 * tex) - 0.7, ps))
            * in_bone
            * front
        )
        bone = bone + (AIR_HU - bone) * sinus
    hu += f_outer * (bone - hu)

    # --- skull base --------------------------------------------------------------
    # the floor rises at most ~14 mm above floor_ant (frontal bone, orbital
    # roofs); the brainstem and basal cisterns reach w = 14
    low = w_lo < 14.0
    base_on = w_lo < max(g.floor_ant + 14.0, 8.0)
    f_in_eff = f_in
    if low:
        (n3,) = fields.sample(plane, (2,), stride=stride)
        tent = g.tentorium(u, v)
    if base_on:
        floor, pv, crest_d, crest_top = g.floor_parts(u, v)
        above = w - floor
        # in-plane anti-aliasing of the floor: its vertical offset over its slope
        gr, gc = np.gradient(above, ps)
        slope_px = np.sqrt(gr * gr + gc * gc) * ps
        f_floor = np.clip(0.5 + above / np.maximum(slope_px, 0.5), 0.0, 1.0).astype(np.float32)
        # the face: below the anterior fossa in front, and below the middle
        # fossae in front of the petrous bones, the skull gives way to the
        # bony cavities and soft tissue of the face and jaw out to the skin
        face = np.maximum(
            smoothstep((g.floor_ant - 4.0 - w) / 8.0)
            * smoothstep((-(v - g.cv) - 0.3 * g.B) / (0.3 * g.B)),
            smoothstep((g.floor_mid - 6.0 - w) / 8.0) * smoothstep((pv - 8.0 - v) / 10.0),
        ) * soft(d_skin + 2.5, ps)
        f_in_eff = np.maximum(f_in, face)
        base = _skull_base(
            g, plane, (u, v, w), above, face, d_skin, (pv, crest_d, crest_top), n3, tex
        )
        depth = np.minimum(-d_in, above)
        post = soft(w - tent, 1.5) * smoothstep((v - pv) / 6.0 + 0.5)  # below the tentorium
    else:
        f_floor = np.ones(shape, dtype=np.float32)
        base = np.zeros(shape, dtype=np.float32)
        depth = -d_in
        post = np.zeros(shape, dtype=np.float32)
        pv = g.petrous_v(u) if low else post
    supra = 1.0 - post

    # --- brain -----------------------------------------------------------------
    us = u - shift * np.exp(-(((w - 18.0) / 45.0) ** 2) - ((v / (0.9 * g.B)) ** 2)).astype(
        np.float32
    )
    # gyri: sulci are zero crossings of a field sampled at the point's projection
    # on the inner table (so they run radially), slowly varying with depth
    rho = (
        np.sqrt((u / np.maximum(a_in, 1.0)) ** 2 + ((v - g.cv) / np.maximum(b_in, 1.0)) ** 2) + 1e-6
    )
    lat = -d_in  # sulci run in from the convexity, not from the skull base
    su = 72.0 * u / np.maximum(a_in, 1.0) / rho + 0.35 * lat
    sv = 72.0 * (v - g.cv) / np.maximum(b_in, 1.0) / rho
    (n1,) = fields.at_points(su, sv, w + 0.2 * lat, (0,))
    brain = g.wm_hu + 1.0 * tex
    sw = g.sulcal_width
    sdepth = g.sulcal_depth + 3.0 * tex
    deep_ok = smoothstep((sdepth - lat) / 3.0)
    an1 = np.abs(n1)
    f_sulc = np.clip(0.5 - (an1 - sw) / 0.08, 0.0, 1.0) * deep_ok * supra
    f_gm_gyri = np.clip(0.5 - (an1 - sw - 0.42) / 0.12, 0.0, 1.0) * smoothstep(
        (sdepth + 3.0 - lat) / 2.0
    )
    f_rib = soft(depth - (g.csf_rim + 3.0), ps)
    f_gm = np.maximum(f_gm_gyri, f_rib) * supra
    # deep grey nuclei
    for nuc in g.nuclei:
        hit = nuc.fraction(plane, ps, shift)
        if hit is not None:
            frac, box = hit
            np.maximum(f_gm[box], 0.8 * frac, out=f_gm[box])
    f_folia = np.zeros(shape, dtype=np.float32)
    f_bs = np.zeros(shape, dtype=np.float32)
    cist = np.zeros(shape, dtype=np.float32)
    if low:
        # cerebellum: cortex with fine folia and a midline vallecula; brainstem
        # (midbrain, pons, medulla narrowing downward); basal cisterns
        f_folia = np.clip(0.5 - (np.abs(n3) - 0.08) / 0.08, 0.0, 1.0) * post
        f_gm = np.maximum(f_gm, 0.7 * post)
        bs_v = g.brainstem_v(w)
        narrow = 1.0 - 0.35 * smoothstep((-w - 32.0) / 14.0)
        d_bs = ellipse_distance(us, v, 13.0 * narrow, 10.5 * narrow, 0.0, bs_v)
        f_bs = soft(d_bs, ps) * soft(w - 8.0, 2.0)
        d_sup = ellipse_distance(us, v, 9.5, 7.5, 0.0, -0.17 * g.B)
        sup = soft(d_sup, ps) * smoothstep((w + 12.0) / 3.0) * smoothstep((2.0 - w) / 3.0)
        rim_bs = 1.5 + 2.0 * g.atrophy
        ring_d = ellipse_distance(
            us, v, 13.0 * narrow + rim_bs, 10.5 * narrow + rim_bs, 0.0, bs_v - 0.5
        )
        # ambient cistern round the midbrain; lower only in front (prepontine)
        behind = smoothstep((v - bs_v + 2.0) / 6.0) * smoothstep((-6.0 - w) / 4.0)
        ring = soft(ring_d, ps) * (1.0 - f_bs) * soft(w - 8.0, 2.0) * (1.0 - behind)
        vall = (
            soft(np.abs(us) - 0.8 - 1.2 * g.atrophy, ps)
            * smoothstep((v - bs_v - 16.0) / 4.0)
            * smoothstep((bs_v + 45.0 - v) / 8.0)
            * post
        )
        cist = np.maximum.reduce([sup, ring, vall])
    brain = brain + (g.gm_hu + 1.0 * tex - brain) * f_gm
    brain = brain + (0.5 * (g.gm_hu + g.wm_hu) + tex - brain) * f_bs
    # interhemispheric fissure with its medial cortex
    fis_w = 0.4 + 1.4 * g.atrophy
    fis_on = np.maximum(smoothstep((w - 36.0) / 6.0), smoothstep((np.abs(v) - 0.33 * g.B) / 8.0))
    fis_on = fis_on * smoothstep((w + 5.0) / 6.0) * supra
    aus = np.abs(us)
    f_fis = soft(aus - fis_w, ps) * fis_on
    brain = brain + (g.gm_hu + tex - brain) * soft(
        aus - fis_w - 1.5 - 1.2 * np.abs(tex), ps
    ) * fis_on * (1.0 - f_bs)
    # sylvian fissures: curved clefts from the lateral surface to the insula
    syl = np.zeros(shape, dtype=np.float32)
    if w_lo < 30.0 and w_hi > -8.0:
        on = smoothstep((w + 6.0) / 5.0) * smoothstep((28.0 - w) / 5.0)
        syl_w = 0.8 + 2.2 * g.atrophy
        for side in (-1.0, 1.0):
            x = side * us
            t = np.clip((x - 0.48 * g.A) / (0.55 * g.A), 0.0, 1.0)
            centre_v = -0.03 * g.B - 0.14 * g.B * t * t + 2.5 * tex
            d_syl = np.abs(v - centre_v) + 40.0 * np.clip(0.48 * g.A - x, 0.0, None) / g.A * 10.0
            width = syl_w * (0.6 + 0.8 * t)
            np.maximum(syl, soft(d_syl - width, ps) * on, out=syl)
            brain = brain + (g.gm_hu + tex - brain) * soft(d_syl - width - 2.5, ps) * on
    # CSF: rim under the inner table, sulci, fissures, cisterns
    f_rim = soft(depth - g.csf_rim, ps)
    spaces = np.maximum.reduce([f_rim * supra, f_sulc, f_fis, syl, cist])
    f_csf = np.maximum.reduce([spaces, 0.6 * f_rim * post, 0.45 * f_folia])
    brain = brain + (g.csf_hu - brain) * f_csf
    # ventricles
    vl = np.zeros(shape, dtype=np.float32)
    vr = np.zeros(shape, dtype=np.float32)
    for vent in g.ventricles:
        hit = vent.fraction(plane, ps, shift)
        if hit is None:
            continue
        frac, box = hit
        for target, keep in ((vl, vent.center[0] >= 0), (vr, vent.center[0] <= 0)):
            if keep:
                np.maximum(target[box], frac, out=target[box])
    f_vent = np.maximum(vl, vr)
    brain = brain + (g.csf_hu + 1.0 - brain) * f_vent
    # dense dural folds: falx and tentorium
    dura = soft(aus - 0.35, ps) * fis_on * smoothstep((w - 2.0) / 6.0) * (ps / max(ps, 0.7))
    if low:
        tent_band = (
            soft(np.abs(w - tent) - 0.8, 1.5)
            * smoothstep((v - pv - 10.0) / 6.0)
            * soft(-d_in - 2.0, ps)
        )
        dura = np.maximum(dura, 0.8 * tent_band)
    brain = brain + (g.falx_hu - brain) * dura

    cavity = (f_in * f_floor).astype(np.float32)
    inner = brain + (base - brain) * (1.0 - f_floor) if base_on else brain
    hu = hu + (inner - hu) * f_in_eff
    return PlaneContext(
        plane=plane,
        box=inside,
        w_range=(w_lo, w_hi),
        u=u,
        v=v,
        w=w,
        us=us,
        a_in=a_in,
        b_in=b_in,
        d_in=d_in,
        depth=depth,
        cavity=cavity,
        csf_spaces=spaces.astype(np.float32),
        cisterns=np.maximum(cist, syl),
        vent_left=vl,
        vent_right=vr,
        brain_hu=brain.astype(np.float32),
        hu=hu.astype(np.float32),
        fissure=f_fis.astype(np.float32),
        posterior_fossa=post.astype(np.float32),
        cv=g.cv,
    )


def head_box(mask: NDArray[np.bool_], *, align: int = 1, margin: int = 2) -> Box:
    """Pixel box around the true pixels of ``mask``, ``margin`` pixels wider on each side.

    Its first row and column are multiples of ``align``; an empty mask gives a
    box of at least 2 x 2 pixels in the corner (``np.gradient`` needs 2 per axis).
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        side = max(align, 2)
        return slice(0, min(side, mask.shape[0])), slice(0, min(side, mask.shape[1]))
    cols = np.flatnonzero(mask.any(axis=0))
    out = []
    for idx, n in ((rows, mask.shape[0]), (cols, mask.shape[1])):
        lo = max(int(idx[0]) - margin, 0)
        lo -= lo % align
        out.append(slice(lo, min(int(idx[-1]) + margin + 1, n)))
    return out[0], out[1]


def _ellipsoid_sd(
    u: F32,
    v: F32,
    w: F32,
    c: tuple[float | F32, float | F32, float | F32],
    r: tuple[float, float, float],
    angle: float = 0.0,
    power: float = 2.0,
) -> F32:
    """Approximate signed distance (mm) to a (super)ellipsoid rotated by ``angle`` about w.

    ``power`` 2 gives an ellipsoid, larger values a rounded box.
    """
    du = u - c[0]
    dv = v - c[1]
    if angle:
        ca, sa = np.cos(angle), np.sin(angle)
        du, dv = ca * du + sa * dv, -sa * du + ca * dv
    x = np.abs(du) / r[0]
    y = np.abs(dv) / r[1]
    z = np.abs(w - c[2]) / r[2]
    if power == 2.0:
        q = np.sqrt(x * x + y * y + z * z)
    else:
        q = (x**power + y**power + z**power) ** (1.0 / power)
    return np.asarray((q - 1.0) * min(r), dtype=np.float32)


def _skull_base(
    g: Anatomy,
    plane: Plane,
    uvw: tuple[F32, F32, F32],
    above: F32,
    face: F32,
    d_skin: F32,
    crest: tuple[F32, F32, F32],
    fine: F32,
    tex: F32,
) -> F32:
    """HU below the cranial floor: skull-base bone, petrous and mastoid, sinuses, orbits.

    A cortical plate under the fossae; dense bone in the petrous pyramids,
    the sphenoid body and clivus and around the posterior fossa; soft tissue
    elsewhere (face, infratemporal fossae, nasopharynx) around bony-walled
    cavities (orbits, ethmoid, sphenoid and maxillary sinuses, nasal cavity)
    and mastoid air cells. Every outline is an ellipsoid, rounded box or a
    level set of a smooth field, so the cuts are smooth curves.
    """
    A, B = g.A, g.B  # noqa: N806
    u, v, w = uvw
    pv, dist, top = crest  # petrous ridge position, distance to its crest, crest height
    ps = plane.spacing
    below = -above
    au = np.abs(u)
    vc = v - g.cv
    # where the bone is massive: petrous pyramids, sphenoid body and clivus,
    # occipital bone around the posterior fossa
    pet = (
        soft(np.abs(dist) - np.sqrt(np.clip(top - w, 0.0, None) / 0.25) - 2.0, 3.0)
        * smoothstep((au - 8.0) / 6.0)
        * soft(w - top - 1.0, 2.0)
    )
    body = soft(ellipse_distance(u, vc, 15.0, 0.15 * B, 0.0, -0.2 * B), 4.0)
    occ = smoothstep((v - pv) / 8.0 + 0.5)
    mass = np.maximum.reduce([pet, body, occ])
    plate = soft(below - 2.0, 1.5)
    dense = np.maximum(plate, mass)
    # soft tissue: the outer face and, well below the floor, the infratemporal
    # fossae and nasopharynx; elsewhere bone
    tissue = np.maximum(face * soft(-8.0 - d_skin, 3.0), soft(8.0 - below, 3.0))
    dense = np.maximum(dense, 1.0 - tissue)
    base = 40.0 + 4.0 * tex
    base = base + (g.bone_hu * 0.75 + 150.0 * tex - base) * dense
    base = base + (g.bone_hu * 1.1 + 120.0 * tex - base) * pet
    # mastoid air cells: small dotted air in the bone behind the petrous ridges
    mas_c = (0.8 * A, 0.25 * B + g.cv, g.floor_mid - 10.0)
    for side in (-1.0, 1.0):
        box = plane.box((side * mas_c[0], mas_c[1], mas_c[2]), 18.0)
        if box is None:
            continue
        bu, bv, bw = plane.coords(box)
        d_mas = _ellipsoid_sd(bu, bv, bw, (side * mas_c[0], mas_c[1], mas_c[2]), (11.0, 15.0, 15.0))
        cells = soft(0.35 - fine[box], 0.2) * soft(d_mas, 4.0) * pet[box]
        base[box] += (AIR_HU - base[box]) * cells
    # bony-walled cavities of the face and the sphenoid
    w_orb = g.floor_ant - 13.0
    a_sk, b_sk = g.axes(np.full(1, w_orb, dtype=np.float32), g.skull_t + g.scalp_t, 0.0)
    v_eth = -0.62 * B + g.cv
    cavities: list[tuple[tuple[float, float, float], tuple[float, float, float], float, float]] = []
    for side in (-1.0, 1.0):
        uo = 0.47 * A
        v_front = g.cv - float(b_sk[0]) * np.sqrt(max(1.0 - (uo / float(a_sk[0])) ** 2, 0.0))
        vg = v_front + 15.0
        cavities += [
            ((side * 0.42 * A, vg + 9.0, w_orb), (15.0, 22.0, 17.0), side * 0.35, 2.0),
            ((side * 0.33 * A, vg + 8.0, w_orb - 34.0), (13.0, 17.0, 13.0), 0.0, 2.0),
        ]
    cavities += [
        ((0.0, v_eth, w_orb - 3.0), (11.0, 0.2 * B, 17.0), 0.0, 4.0),
        ((0.0, v_eth - 4.0, w_orb - 36.0), (9.0, 0.22 * B, 16.0), 0.0, 4.0),
        (
            (0.0, -0.28 * B + g.cv, 0.5 * (g.floor_ant + g.floor_mid) - 7.0),
            (13.0, 0.12 * B, 11.0),
            0.0,
            2.0,
        ),
    ]
    fills: list[tuple[Box, F32, F32]] = []
    for idx, (c, r, angle, power) in enumerate(cavities):
        box = plane.box(c, max(r) + 4.0)
        if box is None:
            continue
        bu, bv, bw = plane.coords(box)
        d = _ellipsoid_sd(bu, bv, bw, c, r, angle, power)
        sl = base[box]
        sl += (g.bone_hu * 0.8 + 100.0 * tex[box] - sl) * soft(d - 2.0, 1.5)  # bony wall
        kind = (
            ("orbit", "maxillary")[idx % 2]
            if idx < 4
            else ("ethmoid", "nasal", "sphenoid")[idx - 4]
        )
        if kind == "orbit":
            fill = -90.0 + 5.0 * tex[box]
        elif kind == "ethmoid":
            fill = AIR_HU + (g.bone_hu * 0.6 - AIR_HU) * soft(np.abs(fine[box]) - 0.1, 0.08)
        elif kind == "nasal":
            fill = AIR_HU + (g.bone_hu * 0.5 - AIR_HU) * soft(np.abs(bu) - 1.0, ps)
        elif kind == "sphenoid":
            septum = soft(np.abs(bu - 2.0 * tex[box]) - 0.6, ps)
            fill = AIR_HU + (g.bone_hu * 0.6 - AIR_HU) * septum
        else:
            fill = np.full(d.shape, AIR_HU, dtype=np.float32)
        fills.append((box, d, fill))
        if kind == "orbit":  # the globe at the front of the orbit
            side = 1.0 if c[0] > 0 else -1.0
            gc = (side * 0.47 * A, c[1] - 9.0, w_orb - 3.0)
            d_globe = _ellipsoid_sd(bu, bv, bw, gc, (12.0, 12.0, 12.0))
            fills.append((box, d_globe, 12.0 + 2.0 * tex[box]))
    # cavities stop under the cortical plate of the floor (orbital roofs,
    # cribriform plate, planum sphenoidale), so their tops follow its curves
    under = soft(2.5 - below, 1.0)
    for box, d, fill in fills:
        base[box] += (fill - base[box]) * soft(d, ps) * under[box]
    return np.asarray(base, dtype=np.float32)


def _segment_distance(u: F32, v: F32, p0: tuple[float, float], p1: tuple[float, float]) -> F32:
    """Distance (mm) from (u, v) to the segment p0-p1."""
    du, dv = p1[0] - p0[0], p1[1] - p0[1]
    t = np.clip(((u - p0[0]) * du + (v - p0[1]) * dv) / (du * du + dv * dv), 0.0, 1.0)
    return np.sqrt((u - p0[0] - t * du) ** 2 + (v - p0[1] - t * dv) ** 2).astype(np.float32)


def vent_masks_total(ctx: PlaneContext) -> NDArray[np.float32]:
    """Occupancy of any ventricle in the plane."""
    return np.maximum(ctx.vent_left, ctx.vent_right)
