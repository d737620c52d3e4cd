"""Generation of one exam: plan, geometry, rendering, labels and masks.

Randomness is split by purpose so that an exam never depends on another or on
the worker count: the dataset plan draws from ``SeedSequence(seed,
spawn_key=(0,))``, exam *i* from ``spawn_key=(1, i)`` (its lesions from
``(7, i)``), the head of patient *p* from ``(2, p)`` and the identity of
patient *p* from ``(3, p)``; sites ``(4, s)``; header details ``(5, i)``, ``(6, i)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage  # type: ignore[import-untyped]

from ichkit.labels import LABELS, SUBTYPES
from ichkit.synth._artefacts import add_noise, add_streaks, motion_blur
from ichkit.synth._config import SynthConfig
from ichkit.synth._geometry import NoiseField, Plane
from ichkit.synth._lesions import Lesion, draw_lesions, midline_shift
from ichkit.synth._mimics import draw_mimics, paint_mimics
from ichkit.synth._phantom import AIR_HU, draw_anatomy, render_anatomy
from ichkit.synth._vendors import VendorProfile, profile_for_site

__all__ = [
    "ExamMetadata",
    "ExamPlan",
    "SynthExam",
    "generate_exam",
    "plan_dataset",
    "seed_sequence",
]

#: HU range every stored exam lies in: storable by all vendor encodings
#: (the RSNA quirk storage needs >= -1000; 12-bit unsigned at -1024 needs <= 3071).
HU_MIN, HU_MAX = -1000, 3071
#: A mask pixel needs at least this fraction of its slab to be the subtype's
#: blood, and a noise-free value of at least VISIBLE_HU (acute blood: 50-90 HU).
MIN_BLOOD_FRACTION = 0.35
VISIBLE_HU = 52.0
VISIBLE_HU_MAX = 95.0


def seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """The child seed of one purpose (see the module docstring)."""
    return np.random.SeedSequence(seed, spawn_key=tuple(key))


@dataclass(frozen=True)
class ExamPlan:
    """What the dataset plan fixes for one exam before it is generated."""

    index: int
    site: int
    patient: int  # patient number within the dataset
    visit: int  # 0 for a patient's first study, 1 for a repeat
    positive: bool


def plan_dataset(config: SynthConfig) -> list[ExamPlan]:
    """Assign every exam a site, a patient and whether it holds a hemorrhage."""
    rng = np.random.default_rng(seed_sequence(config.seed, 0))
    plans: list[ExamPlan] = []
    visits: dict[int, int] = {}
    sites: dict[int, int] = {}
    n_patients = 0
    for i in range(config.exams):
        repeat = i > 0 and rng.random() < config.repeat_patient_fraction
        pick = int(rng.integers(0, max(i, 1)))
        site = int(rng.integers(0, config.sites))
        positive = bool(rng.random() < config.prevalence)
        if repeat and visits.get(plans[pick].patient, 0) < 2:
            patient = plans[pick].patient
            site = sites[patient]
        else:
            patient = n_patients
            n_patients += 1
            if patient < config.sites:  # every site gets at least one exam first
                site = patient
            sites[patient] = site
        visit = visits.get(patient, 0)
        visits[patient] = visit + 1
        plans.append(ExamPlan(i, site, patient, visit, positive))
    return plans


@dataclass
class ExamMetadata:
    """Everything about a generated exam besides its pixels, labels and masks."""

    index: int
    site: int
    patient: int
    visit: int
    vendor: VendorProfile
    pixel_spacing: float
    slice_thickness: float
    rows: int
    columns: int
    image_orientation: tuple[float, ...]
    image_positions: NDArray[np.float64]  # (slices, 3), inferior -> superior
    gantry_tilt: float  # degrees
    kinds: tuple[str, ...]
    lesions: list[dict[str, Any]]
    mimics: dict[str, list[int]]  # name -> slice indices where visible
    brain_mask: NDArray[np.bool_]  # (slices, rows, cols) cranial cavity
    noise_sigma: float
    artefacts: dict[str, list[int]] = field(default_factory=dict)
    midline_shift_mm: float = 0.0
    uid_digits: str = ""


class SynthExam(NamedTuple):
    """One generated exam: ``hu, labels, masks, metadata = generate_exam(...)``.

    ``hu`` is int16 Hounsfield units (slices, rows, cols), slices from inferior
    to superior; ``labels`` is uint8 (slices, 6) in :data:`ichkit.labels.LABELS`
    order; ``masks`` maps each subtype to a bool (slices, rows, cols) array of
    the pixels where more than half the slab is that subtype's blood.
    """

    hu: NDArray[np.int16]
    labels: NDArray[np.uint8]
    masks: dict[str, NDArray[np.bool_]]
    metadata: ExamMetadata


def _draw_kinds(rng: np.random.Generator, config: SynthConfig) -> list[str]:
    weights = np.asarray(config.subtype_weights, dtype=np.float64)
    probs = np.array([0.55, 0.30, 0.15][: config.max_kinds], dtype=np.float64)
    n = int(rng.choice(np.arange(1, len(probs) + 1), p=probs / probs.sum()))
    n = min(n, int(np.count_nonzero(weights)))
    picked = rng.choice(len(SUBTYPES), size=n, replace=False, p=weights / weights.sum())
    return [SUBTYPES[int(k)] for k in sorted(picked)]


def _rotation(yaw: float, pitch: float, roll: float) -> NDArray[np.float64]:
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    r_yaw = np.array([[cy, sy, 0.0], [-sy, cy, 0.0], [0.0, 0.0, 1.0]])
    r_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    r_roll = np.array([[cr, 0.0, -sr], [0.0, 1.0, 0.0], [sr, 0.0, cr]])
    return np.asarray(r_roll @ r_pitch @ r_yaw, dtype=np.float64)


def generate_exam(config: SynthConfig, plan: ExamPlan | int) -> SynthExam:
    """Generate one exam of the dataset described by ``config``.

    Parameters
    ----------
    config
        The dataset settings.
    plan
        The exam's plan (from :func:`plan_dataset`) or its index.

    Returns
    -------
    SynthExam
        ``(hu, labels, masks, metadata)``.
    """
    if isinstance(plan, int):
        plan = plan_dataset(config)[plan]
    vendor = profile_for_site(plan.site)
    rng = np.random.default_rng(seed_sequence(config.seed, 1, plan.index))
    head_rng = np.random.default_rng(seed_sequence(config.seed, 2, plan.patient))

    # --- the head (same for every study of a patient) and its pose ----------------------
    anatomy = draw_anatomy(head_rng, w_bottom=-float(head_rng.uniform(30.0, 52.0)))
    fields = NoiseField(head_rng, scales=(3.2, 2.0, 1.6), step=2.5)

    size = config.size
    ps = float(rng.uniform(0.43, 0.50)) * 512.0 / size
    fov = ps * size
    tilt = 0.0
    if rng.random() < vendor.tilt_probability:
        tilt = float(rng.uniform(*vendor.tilt_range))
    yaw = math.radians(float(rng.normal(0.0, 4.0)))
    # the gantry is tilted to follow the head's flexion (orbitomeatal line), so
    # the head pitches with it and the slices stay near-parallel to its base
    pitch = math.radians(float(rng.normal(0.0, 4.0)) - tilt)
    roll = math.radians(float(rng.normal(0.0, 2.0)))
    extent = anatomy.B + anatomy.skull_t * 1.15 + anatomy.scalp_t * 1.15
    room = max(fov / 2.0 - extent - 4.0, 0.0)
    head_x = float(rng.uniform(-1.0, 1.0) * min(room, 12.0))
    head_y = float(rng.uniform(-1.0, 1.0) * min(room, 12.0))
    table_z = float(rng.uniform(-60.0, 120.0))

    coverage = anatomy.w_top - anatomy.w_bottom
    if config.slices is not None:
        n_slices = config.slices
        thickness = config.slice_thickness or round(coverage / n_slices, 2)
    else:
        thickness = config.slice_thickness or 5.0
        n_slices = max(2, math.ceil(coverage / thickness))
    w_center = 0.5 * (anatomy.w_top + anatomy.w_bottom)

    # --- slice geometry in patient coordinates (LPS) ----------------------------------------
    t = math.radians(tilt)
    row_cos = np.array([1.0, 0.0, 0.0])  # along a row (increasing column)
    col_cos = np.array([0.0, math.cos(t), -math.sin(t)])  # down a column
    normal = np.cross(row_cos, col_cos)
    head_center = np.array([head_x, head_y, table_z])
    rot = _rotation(yaw, pitch, roll)
    s_head = float(normal @ head_center)
    half = (size - 1) / 2.0 * ps
    positions = np.empty((n_slices, 3))
    for k in range(n_slices):
        s_k = s_head + w_center + (k + 0.5 - n_slices / 2.0) * thickness
        center = np.array([0.0, 0.0, 0.0]) + (s_k - 0.0) * normal
        positions[k] = center - half * row_cos - half * col_cos

    # --- pathology and mimics -----------------------------------------------------------
    # lesions draw from their own stream, so the negative twin of an exam
    # (same plan with positive=False) differs from it only by its lesions
    les_rng = np.random.default_rng(seed_sequence(config.seed, 7, plan.index))
    kinds = _draw_kinds(les_rng, config) if plan.positive else []
    lesions: list[Lesion] = draw_lesions(les_rng, anatomy, kinds) if kinds else []
    shift = midline_shift(lesions)
    mimics = draw_mimics(head_rng, anatomy)
    # Noise is quoted for 0.43-0.5 mm pixels and 5 mm slices; coarser pixels
    # average it down (as a downsampled 512 image would be), and quantum noise
    # goes as 1/sqrt(slice thickness) at a given dose (thin reconstructions are
    # noisier; the factor is exactly 1 at 5 mm).
    sigma = float(rng.uniform(*vendor.noise_sigma)) * min(1.0, 0.47 / ps)
    sigma *= math.sqrt(5.0 / thickness)
    corr_px = float(rng.uniform(*vendor.noise_corr_mm)) / ps
    streak = rng.random() < 0.35
    motion: list[int] = []
    if rng.random() < 0.15:
        start = int(rng.integers(0, n_slices))
        motion = list(range(start, min(start + int(rng.integers(1, 4)), n_slices)))

    n_sub = int(np.clip(round(thickness / 2.5), 1, 3))
    offsets = [((j + 0.5) / n_sub - 0.5) * thickness for j in range(n_sub)]
    # Render at <= 256 px and upsample: head CT resolves ~0.7 mm, so this
    # loses nothing visible at 512 and quarters the work.
    factor = 2 if size > 256 and size % 2 == 0 else 1
    rsize = size // factor
    rps = ps * factor
    stride = 2 if rsize > 192 else 1
    hu = np.empty((n_slices, size, size), dtype=np.int16)
    blood = np.zeros((len(SUBTYPES), n_slices, size, size), dtype=bool)
    brain = np.empty((n_slices, size, size), dtype=bool)
    mimic_slices: dict[str, list[int]] = {}
    streak_slices: list[int] = []
    sub_index = {s: i for i, s in enumerate(SUBTYPES)}
    half_px = (factor - 1) / 2.0 * ps
    for k in range(n_slices):
        acc = np.zeros((rsize, rsize), dtype=np.float32)
        cav = np.zeros((rsize, rsize), dtype=np.float32)
        head = np.zeros((rsize, rsize), dtype=np.float32)
        les_acc = np.zeros((len(SUBTYPES), rsize, rsize), dtype=np.float32)
        w_mid = 0.0
        for off in offsets:
            corner = positions[k] + half_px * (row_cos + col_cos) + off * normal
            origin = rot @ (corner - head_center)
            plane = Plane(origin, rot @ (col_cos * rps), rot @ (row_cos * rps), rps, (rsize, rsize))
            ctx = render_anatomy(anatomy, plane, fields=fields, shift=shift, stride=stride)
            # the context covers the head's box (ctx.box) of the plane, air elsewhere
            plane_hu = ctx.hu.copy()
            sub_blood = np.zeros((len(SUBTYPES), *plane_hu.shape), dtype=np.float32)
            for les in lesions:
                got = les.render(ctx)
                if got is None:
                    continue
                frac, oedema, box = got
                sl = box if box is not None else (slice(None), slice(None))
                cavity = ctx.cavity[sl]
                if oedema is not None:
                    plane_hu[sl] += (ctx.brain_hu[sl] - 10.0 - plane_hu[sl]) * oedema * cavity
                frac = frac * cavity
                plane_hu[sl] += (les.hu - plane_hu[sl]) * frac
                target = sub_blood[sub_index[les.subtype]][sl]
                np.maximum(target, frac, out=target)  # one subtype's lesions may overlap
            les_acc[:, ctx.box[0], ctx.box[1]] += sub_blood / n_sub
            for name in paint_mimics(ctx, plane_hu, mimics, shift):
                if k not in mimic_slices.setdefault(name, []):
                    mimic_slices[name].append(k)
            whole = np.full((rsize, rsize), AIR_HU, dtype=np.float32)
            whole[ctx.box] = plane_hu
            acc += whole
            cav[ctx.box] += ctx.cavity
            head[ctx.box] += (plane_hu > -500).astype(np.float32)
            middle = (slice(rsize // 2, rsize // 2 + 1),) * 2
            w_mid += float(plane.coords(middle)[2][0, 0])
        img = _up(acc / n_sub, factor)
        brain[k] = _up(cav / n_sub, factor) >= 0.5
        w_mid /= n_sub
        if k in motion:
            img = motion_blur(img, rng, spacing=ps)
        if streak and -32.0 < w_mid < -4.0:
            streak_slices.append(k)
            c_rc = _pixel_of(
                rot, positions[k], head_center, row_cos, col_cos, ps, (0.0, 0.08 * anatomy.B)
            )
            add_streaks(
                img,
                rng,
                center_rc=c_rc,
                spacing=ps,
                head=np.clip(_up(head / n_sub, factor), 0.0, 1.0),
            )
        # a pixel shows a subtype's blood when a good part of the slab is that
        # blood and the noise-free pixel (after motion and streaks) is in the
        # acute-blood range
        visible = (img >= VISIBLE_HU) & (img <= VISIBLE_HU_MAX)  # not bone partial volume
        for i in range(len(SUBTYPES)):
            if les_acc[i].any():
                blood[i, k] = (_up(les_acc[i], factor) >= MIN_BLOOD_FRACTION) & visible
        add_noise(img, rng, sigma=sigma, corr_px=corr_px)
        np.clip(np.rint(img), HU_MIN, HU_MAX, out=img)
        hu[k] = img.astype(np.int16)

    if vendor.padding is not None:
        # The scanner's reconstruction circle: the writer fills the corners with
        # PixelPaddingValue, which reads back as air (AIR_HU). A tilted head can
        # reach past the circle, so the truth holds air (HU_MIN) and no blood there
        # too (else the masks and labels would count blood the DICOM does not show).
        rr, cc = np.mgrid[:size, :size]
        c0 = (size - 1) / 2.0
        outside = (rr - c0) ** 2 + (cc - c0) ** 2 > (size / 2.0) ** 2
        hu[:, outside] = HU_MIN
        blood[:, :, outside] = False
        brain[:, outside] = False

    # --- labels and masks ------------------------------------------------------------------
    masks = {s: blood[i] for i, s in enumerate(SUBTYPES)}
    labels = np.zeros((n_slices, len(LABELS)), dtype=np.uint8)
    min_px = max(config.min_lesion_area_mm2 / (ps * ps), 1.0)
    for i, s in enumerate(SUBTYPES):
        labels[:, i] = masks[s].reshape(n_slices, -1).sum(axis=1) >= min_px
    labels[:, -1] = labels[:, :-1].max(axis=1)
    present = tuple(s for i, s in enumerate(SUBTYPES) if labels[:, i].any())
    meta = ExamMetadata(
        index=plan.index,
        site=plan.site,
        patient=plan.patient,
        visit=plan.visit,
        vendor=vendor,
        pixel_spacing=ps,
        slice_thickness=float(thickness),
        rows=size,
        columns=size,
        image_orientation=(*row_cos.tolist(), *col_cos.tolist()),
        image_positions=positions,
        gantry_tilt=tilt,
        kinds=present,
        lesions=[les.describe() for les in lesions],
        mimics={k: sorted(v) for k, v in sorted(mimic_slices.items())},
        brain_mask=brain,
        noise_sigma=sigma,
        artefacts={"streaks": streak_slices, "motion": motion},
        midline_shift_mm=shift,
        uid_digits=f"{int(rng.integers(10**9, 10**10))}{plan.index}",
    )
    return SynthExam(hu, labels, masks, meta)


def _up(img: NDArray[np.floating[Any]], factor: int) -> NDArray[np.float32]:
    """Upsample a rendered plane by ``factor`` (pixel edges aligned; linear)."""
    if factor == 1:
        return np.asarray(img, dtype=np.float32)
    out = ndimage.zoom(img, factor, order=1, mode="nearest", grid_mode=True)
    return np.asarray(out, dtype=np.float32)


def _pixel_of(
    rot: NDArray[np.float64],
    ipp: NDArray[np.float64],
    head_center: NDArray[np.float64],
    row_cos: NDArray[np.float64],
    col_cos: NDArray[np.float64],
    ps: float,
    uv: tuple[float, float],
) -> tuple[float, float]:
    """(row, col) of the head point (u, v) projected on the slice."""
    point = head_center + rot.T @ np.array([uv[0], uv[1], 0.0])
    d = point - ipp
    return float(d @ col_cos / ps), float(d @ row_cos / ps)
