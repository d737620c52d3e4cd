"""The head phantom: per-exam anatomy drawn at random, rendered plane by plane.

Head coordinates (mm): u to the patient's left, v posterior, w superior, with
w = 0 near the floor of the anterior cranial fossa. The head is three nested
dome-topped elliptical layers (inner table, outer table, skin) over a skull
base whose floor steps down from the anterior fossa to the middle fossa and,
behind the petrous ridges, to the posterior fossa. Inside: cortex with gyri
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
    NoiseField,
    Plane,
    ellipse_distance,
    ellipsoid_fraction,
    smoothstep,
    soft,
)

__all__ = ["Anatomy", "Ellipsoid", "PlaneContext", "draw_anatomy", "render_anatomy"]

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
        taper = 1.0 - 0.16 * low * low
        s = np.where(w >= self.wm, dome, taper).astype(np.float32)
        return (self.A + grow) * s, (self.B + grow * 1.15) * s

    def petrous_v(self, u: F32) -> F32:
        """Antero-posterior position of the petrous ridge at left-right position u."""
        return (-0.06 * self.B + 0.62 * np.abs(u)).astype(np.float32)

    def floor(self, u: F32, v: F32) -> F32:
        """Height of the skull-base floor of the cranial cavity below (u, v)."""
        au = np.abs(u)
        # orbital roofs arch up beside the midline cribriform plate
        ant = (
            self.floor_ant + 7.0 * np.exp(-(((au - 28.0) / 15.0) ** 2)) + 0.04 * (v + 0.3 * self.B)
        )
        mid = self.floor_mid + 15.0 * np.exp(-((u / 13.0) ** 2))
        # sphenoid ridge: runs from the clinoids laterally and forward
        t1 = smoothstep((v + 0.18 * self.B + 0.22 * au) / 10.0 + 0.5)
        t2 = smoothstep((v - self.petrous_v(u)) / 8.0 + 0.5)
        f = ant + (mid - ant) * t1
        return np.asarray(f + (-90.0 - f) * t2, dtype=np.float32)

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
        Ellipsoid("fourth", (0.0, 0.12 * B + 2.0, -24.0), (4.0 * sv, 3.0 + sv, 8.0)),
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
    """Fields of one rendered plane that lesions and mimics build on."""

    plane: Plane
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
    fissures…) are skipped by their height range.
    """
    ps = plane.spacing
    shape = plane.shape
    u, v, w = plane.coords()
    w_lo, w_hi = float(w.min()), float(w.max())
    (tex,) = fields.sample(plane, (1,), stride=stride)
    # --- layers: skin, outer table, inner table --------------------------------
    a_in, b_in = g.axes(w, 0.0, 0.0)
    d_in = ellipse_distance(u, v, a_in, b_in, 0.0, g.cv)
    a_out, b_out = g.axes(w, g.skull_t, g.skull_t * 1.2)
    d_out = ellipse_distance(u, v, a_out, b_out, 0.0, g.cv) - 0.5 * tex
    a_sk, b_sk = g.axes(w, g.skull_t + g.scalp_t, (g.skull_t + g.scalp_t) * 1.1)
    d_skin = ellipse_distance(u, v, a_sk, b_sk, 0.0, g.cv)
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
    hu += f_outer * (bone - hu)

    # --- skull base --------------------------------------------------------------
    low = w_lo < 14.0
    if low:
        floor = g.floor(u, v)
        above = w - floor
        pv = g.petrous_v(u)
        au = np.abs(u)
        ridge_top = -10.0 - 0.06 * au
        f_pet = (
            soft(np.abs(v - pv - 2.0) - (4.0 + 0.04 * au), ps)
            * soft(w - ridge_top, 1.5)
            * soft(10.0 - au, ps)
        )
        f_floor = np.clip(above + 0.5, 0.0, 1.0) * (1.0 - f_pet)
        base = _skull_base(g, u, v, w, above, f_pet, tex, ps)
        depth = np.minimum(-d_in, above)
        tent = g.tentorium(u, v)
        post = soft(w - tent, 1.5) * smoothstep((v - pv) / 6.0 + 0.5)  # below the tentorium
    else:
        f_floor = np.ones(shape, dtype=np.float32)
        base = np.zeros(shape, dtype=np.float32)
        depth = -d_in
        post = np.zeros(shape, dtype=np.float32)
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
    bs_v = 14.0 - 0.06 * g.B
    if low:
        # cerebellum: cortex with fine folia; brainstem; basal cisterns
        (n3,) = fields.sample(plane, (2,), stride=stride)
        f_folia = np.clip(0.5 - (np.abs(n3) - 0.16) / 0.12, 0.0, 1.0) * post
        f_gm = np.maximum(f_gm, 0.7 * post)
        d_bs = ellipse_distance(us, v, 12.5, 11.0, 0.0, bs_v)
        f_bs = soft(d_bs, ps) * soft(w - 8.0, 2.0)
        d_sup = ellipse_distance(us, v, 9.5, 7.5, 0.0, -0.17 * g.B)
        sup = soft(d_sup, ps) * smoothstep((w + 12.0) / 3.0) * smoothstep((2.0 - w) / 3.0)
        ring_d = ellipse_distance(
            us, v, 15.0 + 2.0 * g.atrophy, 13.5 + 2.0 * g.atrophy, 0.0, bs_v + 1.0
        )
        ring = soft(ring_d, ps) * (1.0 - f_bs) * soft(w - 8.0, 2.0)
        cist = np.maximum(sup, ring)
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
    f_csf = np.maximum.reduce([spaces, 0.6 * f_rim * post, 0.6 * f_folia])
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
    inner = brain + (base - brain) * (1.0 - f_floor) if low else brain
    hu = hu + (inner - hu) * f_in
    return PlaneContext(
        plane=plane,
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


def _skull_base(
    g: Anatomy, u: F32, v: F32, w: F32, above: F32, f_pet: F32, tex: F32, ps: float
) -> F32:
    """HU below the cranial floor: bone, petrous bone, sinuses, orbits, soft tissue."""
    below = -above
    au = np.abs(u)
    plate = soft(below - 4.0, 1.5)
    # trabecular bone of the skull base mixed with soft tissue, cortical plate
    # under the fossae
    base = 45.0 + 600.0 * np.clip(tex + 0.3, 0.0, 1.0)
    base = base + (g.bone_hu * 0.8 + 150.0 * tex - base) * plate
    # sinuses: sphenoid (central) and ethmoid / nasal (anterior midline) air
    sph = (
        soft(au - 14.0, ps)
        * soft(np.abs(v + 0.25 * g.B) - 0.13 * g.B, ps)
        * (1.0 - soft(below - 7.0, 2.0))
        * soft(-w - 36.0, 2.0)
    )
    eth = soft(au - 11.0, ps) * soft(v + 0.43 * g.B, ps) * (1.0 - soft(below - 5.0, 2.0))
    eth = eth * np.clip(0.6 + 1.5 * tex, 0.0, 1.0)
    air = np.maximum(sph, eth)
    # orbits: globe in retro-orbital fat, behind them the temporal muscle
    for side in (-1.0, 1.0):
        d_orb = np.sqrt((u - side * 31.0) ** 2 + (v + g.B - 17.0) ** 2 + ((w + 17.0) * 1.1) ** 2)
        inside = 1.0 - soft(below - 4.0, 2.0)
        base = base + (-85.0 + 5.0 * tex - base) * soft(d_orb - 16.0, ps) * inside
        base = base + (12.0 - base) * soft(d_orb - 11.5, ps) * inside
    soft_tissue = (
        soft(0.55 * g.A - au, 4.0) * soft(v + 0.05 * g.B, 4.0) * (1.0 - soft(below - 12.0, 3.0))
    )
    base = base + (45.0 + 4.0 * tex - base) * soft_tissue
    base = base + (AIR_HU - base) * air
    # petrous bone (dense), with mastoid air cells laterally
    pet = g.bone_hu * 1.1 + 150.0 * tex
    mastoid = np.clip((tex - 0.1) / 0.4, 0.0, 1.0) * smoothstep((au - 0.62 * g.A) / 6.0)
    pet = pet + (AIR_HU - pet) * mastoid * 0.9
    base = base + (pet - base) * f_pet
    return np.asarray(base, dtype=np.float32)


def _segment_distance(u: F32, v: F32, p0: tuple[float, float], p1: tuple[float, float]) -> F32:
    """Distance (mm) from (u, v) to the segment p0-p1."""
    du, dv = p1[0] - p0[0], p1[1] - p0[1]
    t = np.clip(((u - p0[0]) * du + (v - p0[1]) * dv) / (du * du + dv * dv), 0.0, 1.0)
    return np.sqrt((u - p0[0] - t * du) ** 2 + (v - p0[1] - t * dv) ** 2).astype(np.float32)


def vent_masks_total(ctx: PlaneContext) -> NDArray[np.float32]:
    """Occupancy of any ventricle in the plane."""
    return np.maximum(ctx.vent_left, ctx.vent_right)
