"""generate_exam: anatomy HU ranges, labels agree with pixels and masks, mimics, plan."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from ichkit.labels import LABELS, SUBTYPES
from ichkit.synth import HU_MAX, HU_MIN, SynthConfig, SynthExam, generate_exam, plan_dataset
from ichkit.synth._generate import _draw_kinds

# All-positive exams at 128 px, 16 slices: every subtype appears in a few exams.
POSITIVE = SynthConfig(exams=10, seed=21, size=128, slices=16, prevalence=1.0, sites=5)
NEGATIVE = SynthConfig(exams=4, seed=22, size=96, slices=12, prevalence=0.0)


@pytest.fixture(scope="module")
def positive_exams() -> list[SynthExam]:
    return [generate_exam(POSITIVE, i) for i in range(POSITIVE.exams)]


@pytest.fixture(scope="module")
def negative_exams() -> list[SynthExam]:
    return [generate_exam(NEGATIVE, i) for i in range(NEGATIVE.exams)]


def test_shapes_and_types(positive_exams: list[SynthExam]) -> None:
    hu, labels, masks, meta = positive_exams[0]
    assert hu.dtype == np.int16 and hu.shape == (16, 128, 128)
    assert labels.dtype == np.uint8 and labels.shape == (16, len(LABELS))
    assert set(masks) == set(SUBTYPES)
    assert all(m.shape == hu.shape and m.dtype == bool for m in masks.values())
    assert meta.brain_mask.shape == hu.shape
    assert int(hu.min()) >= HU_MIN and int(hu.max()) <= HU_MAX
    assert 0.43 * 4 <= meta.pixel_spacing <= 0.5 * 4  # 0.43-0.5 mm at 512, scaled to 128


def test_tissue_densities(negative_exams: list[SynthExam]) -> None:
    """Air, brain and bone where a head CT has them (HU references in _phantom)."""
    hu, _, _, meta = negative_exams[0]
    mid = hu.shape[0] // 2 + 1
    brain = ndimage.binary_erosion(meta.brain_mask[mid], iterations=4)
    assert np.median(hu[mid][brain]) == pytest.approx(30.0, abs=8.0)  # grey/white 25-40
    assert hu[mid, 0, 0] <= -990  # air outside the head
    assert (hu[mid] > 700).sum() > 100  # skull ring


def test_labels_are_max_of_subtypes_and_match_masks(positive_exams: list[SynthExam]) -> None:
    for exam in positive_exams:
        ps = exam.metadata.pixel_spacing
        min_px = max(POSITIVE.min_lesion_area_mm2 / ps**2, 1.0)
        for i, s in enumerate(SUBTYPES):
            area = exam.masks[s].reshape(len(exam.hu), -1).sum(axis=1)
            assert np.array_equal(exam.labels[:, i], (area >= min_px).astype(np.uint8))
        assert np.array_equal(exam.labels[:, -1], exam.labels[:, :-1].max(axis=1))
        assert exam.labels[:, -1].any(), "a positive exam has at least one positive image"
        present = tuple(s for i, s in enumerate(SUBTYPES) if exam.labels[:, i].any())
        assert present == exam.metadata.kinds


def _blood_range_counts(exam: SynthExam) -> np.ndarray:
    """Per slice: voxels at 50-90 HU inside the cranial cavity."""
    hu, inside = exam.hu, exam.metadata.brain_mask
    return ((hu >= 50) & (hu <= 90) & inside).reshape(len(hu), -1).sum(axis=1)


def test_positive_images_hold_more_blood_range_voxels(positive_exams: list[SynthExam]) -> None:
    """Per subtype, every image labelled positive holds more 50-90 HU voxels in
    the cranial cavity than the same image of the exam's lesion-free twin (same
    head, pose, noise and artefacts: lesions draw from their own seed), and the
    positive images hold more than the exam's negative images on average, once
    the twin's (dense falx, skull-base partial volume) baseline is removed."""
    seen: set[str] = set()
    for i, exam in enumerate(positive_exams):
        twin = generate_exam(POSITIVE, replace(plan_dataset(POSITIVE)[i], positive=False))
        assert not twin.labels.any()
        excess = _blood_range_counts(exam) - _blood_range_counts(twin)
        negatives = exam.labels[:, -1] == 0
        for j, s in enumerate(SUBTYPES):
            pos = exam.labels[:, j] == 1
            if not pos.any():
                continue
            seen.add(s)
            assert (excess[pos] > 0).all(), (s, excess, exam.labels[:, j])
            if negatives.any():
                assert excess[pos].mean() > excess[negatives].mean(), (s, excess)
    assert seen == set(SUBTYPES), f"this seed shows subtypes {sorted(seen)} only"


def test_lesion_voxels_are_acute_blood_density(positive_exams: list[SynthExam]) -> None:
    for exam in positive_exams:
        for s in SUBTYPES:
            m = exam.masks[s]
            if m.sum() > 50:
                assert 45 <= float(np.median(exam.hu[m])) <= 90, s


def test_calcification_mimics_in_negative_exams(negative_exams: list[SynthExam]) -> None:
    found = 0
    for exam in negative_exams:
        assert not exam.labels.any()
        for name, slices in exam.metadata.mimics.items():
            for k in slices:
                inside = exam.metadata.brain_mask[k]
                assert (exam.hu[k][inside] >= 100).any(), name
                found += 1
    assert found >= 2


def test_deterministic_and_independent_of_order() -> None:
    a = generate_exam(NEGATIVE, 2)
    b = generate_exam(NEGATIVE, plan_dataset(NEGATIVE)[2])
    assert np.array_equal(a.hu, b.hu)
    other = generate_exam(SynthConfig(exams=4, seed=23, size=96, slices=12, prevalence=0.0), 2)
    assert not np.array_equal(a.hu, other.hu)


def test_prevalence_and_subtype_frequencies() -> None:
    cfg = SynthConfig(exams=2000, seed=5)
    plans = plan_dataset(cfg)
    frac = np.mean([p.positive for p in plans])
    assert 0.37 <= frac <= 0.43  # 0.4 ± 3 binomial SDs (0.011)
    rng = np.random.default_rng(0)
    counts = dict.fromkeys(SUBTYPES, 0)
    for _ in range(3000):
        for k in _draw_kinds(rng, cfg):
            counts[k] += 1
    assert counts["epidural"] < counts["intraventricular"] < counts["subdural"]
    assert counts["subdural"] == max(counts.values())


def test_slice_count_from_head_height() -> None:
    cfg = SynthConfig(exams=3, seed=1, size=64)
    n = [len(generate_exam(cfg, i).hu) for i in range(3)]
    assert all(26 <= k <= 42 for k in n), n  # 5 mm slices over 130-210 mm of head


def test_thin_slices_are_noisier() -> None:
    """Quantum noise goes as 1/sqrt(slice thickness): 1.25 mm slices of the same
    head (same seed) carry twice the noise sigma of 5 mm ones, 10 mm ones 1/sqrt(2)."""
    base = SynthConfig(exams=1, seed=5, size=64, prevalence=0.0)
    sigma = {
        t: generate_exam(replace(base, slice_thickness=t), 0).metadata.noise_sigma
        for t in (1.25, 5.0, 10.0)
    }
    assert sigma[1.25] == pytest.approx(2.0 * sigma[5.0], rel=1e-9)
    assert sigma[10.0] == pytest.approx(sigma[5.0] / 2**0.5, rel=1e-9)
    default = generate_exam(base, 0).metadata
    assert default.slice_thickness == 5.0 and default.noise_sigma == sigma[5.0]
