"""Splits: patient-disjoint, stratified on labels and site, reproducible, positive enrichment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from ichkit.catalog import (
    Split,
    SyntheticCatalogConfig,
    open_catalog,
    populate_synthetic,
    read_exam_labels,
)
from ichkit.curate import (
    CurationError,
    SplitConfig,
    iterative_stratification,
    make_split,
    read_split,
    split_patients,
    write_split_outputs,
)
from ichkit.labels import LABELS


@pytest.fixture(scope="module")
def synthetic_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('split') / 'c.db'}"
    populate_synthetic(open_catalog(url), SyntheticCatalogConfig(exams=1500, slices=12, sites=4))
    return url


def test_iterative_stratification_keeps_label_shares() -> None:
    rng = np.random.default_rng(0)
    y = rng.random((3000, 8)) < np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    subset = iterative_stratification(y, [0.7, 0.1, 0.2], rng=np.random.default_rng(1))
    assert set(np.unique(subset)) == {0, 1, 2}
    sizes = np.bincount(subset) / len(y)
    np.testing.assert_allclose(sizes, [0.7, 0.1, 0.2], atol=0.01)
    for k in range(y.shape[1]):
        share = np.bincount(subset[y[:, k]], minlength=3) / y[:, k].sum()
        np.testing.assert_allclose(share, [0.7, 0.1, 0.2], atol=0.02)


def test_bad_fractions_are_errors() -> None:
    with pytest.raises(CurationError, match="--test: must be a fraction in"):
        SplitConfig(test=1.5)
    with pytest.raises(CurationError, match="leaves no training patients"):
        SplitConfig(test=0.6, val=0.4)
    with pytest.raises(CurationError, match="--balance-positive: must be a fraction"):
        SplitConfig(balance_positive=1.0)


def test_split_is_patient_disjoint_and_stratified(synthetic_db: str, tmp_path: Path) -> None:
    engine = open_catalog(synthetic_db)
    result = make_split(engine, SplitConfig(test=0.2, val=0.1, seed=3, name="s1"))
    exams = read_exam_labels(engine, "synthetic")
    # Every labelled patient is in exactly one subset, and all its exams with it.
    assert set(result.assignment) == set(exams["patient_id"])
    subset_of_exam = exams["patient_id"].map(result.assignment)
    assert subset_of_exam.groupby(exams["patient_id"]).nunique().max() == 1
    # Achieved label and site shares are close to the requested fractions.
    dist = result.distribution.set_index("subset")
    patients = dist["patients"] / dist["patients"].sum()
    np.testing.assert_allclose(patients[["train", "val", "test"]], [0.7, 0.1, 0.2], atol=0.01)
    for lab in ("intraparenchymal", "subarachnoid", "subdural", "any"):
        positive = exams[lab] >= 0.5
        share = subset_of_exam[positive].value_counts(normalize=True)
        assert abs(share["test"] - 0.2) < 0.04, (lab, share.to_dict())
    sites = pd.crosstab(exams["site"], subset_of_exam, normalize="index")
    assert (sites["test"] - 0.2).abs().max() < 0.04
    # Stored with its config and report, and readable back.
    assert read_split(engine, "s1") == result.assignment
    with engine.connect() as c:
        stored = json.loads(
            c.execute(select(Split.report_json).where(Split.name == "s1")).scalar_one()
        )
    assert stored["config"]["seed"] == 3 and stored["config"]["source"] == "synthetic"
    files = write_split_outputs(result, tmp_path)
    assert json.loads(files[0].read_text())["test"] == 0.2


def test_split_is_reproducible(synthetic_db: str) -> None:
    engine = open_catalog(synthetic_db)
    exams = read_exam_labels(engine, "synthetic")
    a, _ = split_patients(exams, SplitConfig(seed=11))
    b, _ = split_patients(exams, SplitConfig(seed=11))
    c, _ = split_patients(exams, SplitConfig(seed=12))
    assert a == b
    assert a != c


def test_balance_positive_enriches_the_test_set(synthetic_db: str) -> None:
    engine = open_catalog(synthetic_db)
    result = make_split(engine, SplitConfig(test=0.15, seed=2, balance_positive=0.6, name="bal"))
    exams = read_exam_labels(engine, "synthetic")
    patients = exams.groupby("patient_id")["any"].max() >= 0.5
    test = [p for p, s in result.assignment.items() if s == "test"]
    assert abs(patients.loc[test].mean() - 0.6) < 0.01
    assert abs(len(test) / len(patients) - 0.15) < 0.01
    with pytest.raises(CurationError, match="--balance-positive: a test set of"):
        make_split(engine, SplitConfig(test=0.9 - 1e-9, seed=2, balance_positive=0.99))


def test_a_stored_split_is_replaced_only_on_request(synthetic_db: str) -> None:
    """Drawing a split under a used name refuses to change it without replace=True."""
    engine = open_catalog(synthetic_db)
    first = make_split(engine, SplitConfig(test=0.2, seed=11, name="kept"))
    # the same draw again (same seed, same exams) is stored again without fuss
    again = make_split(engine, SplitConfig(test=0.2, seed=11, name="kept"))
    assert again.assignment == first.assignment
    with pytest.raises(CurationError, match=r"split named 'kept' is already stored") as err:
        make_split(engine, SplitConfig(test=0.2, seed=12, name="kept"))
    assert "--replace" in str(err.value) and err.value.field == "name"
    other_draw = split_patients(
        read_exam_labels(engine, "synthetic"), SplitConfig(test=0.2, seed=12, name="kept")
    )[0]
    moved = sum(first.assignment[p] != other_draw[p] for p in first.assignment)
    assert moved and f"({moved} patient(s) in another subset" in str(err.value)
    assert read_split(engine, "kept") == first.assignment  # untouched
    other = make_split(engine, SplitConfig(test=0.2, seed=12, name="kept"), replace=True)
    assert other.assignment != first.assignment
    assert read_split(engine, "kept") == other.assignment
    with engine.connect() as c:
        assert c.execute(select(Split.name).where(Split.name == "kept")).scalars().all() == ["kept"]


def test_rare_subtype_warns(catalog_url: str) -> None:
    engine = open_catalog(catalog_url)
    populate_synthetic(engine, SyntheticCatalogConfig(exams=40, slices=4, sites=2, seed=5))
    exams = read_exam_labels(engine, "synthetic")
    exams["epidural"] = 0.0
    exams.loc[exams.index[0], "epidural"] = 1.0
    _, warnings = split_patients(exams, SplitConfig(test=0.2))
    assert any(
        w.startswith("epidural: 1 positive patient(s); too rare to stratify") for w in warnings
    )
    result = make_split(engine, SplitConfig(test=0.25, seed=1))
    assert set(result.assignment.values()) <= {"train", "test"}
    with pytest.raises(CurationError, match="--split: no split 'nope'; the catalog has: default"):
        read_split(engine, "nope")


def test_large_split_runs_in_seconds(tmp_path: Path) -> None:
    """25,000 exams of ~19,000 patients (RSNA size, Flanders et al. 2020) split in seconds."""
    import time

    rng = np.random.default_rng(0)
    n = 25_000
    exams = pd.DataFrame(
        {
            "patient_id": rng.integers(0, 18_938, n),
            "site": rng.choice([f"s{i}" for i in range(5)], n),
            "n_images": rng.integers(25, 45, n),
            "study_instance_uid": [f"u{i}" for i in range(n)],
            **{
                lab: (rng.random(n) < p).astype(float)
                for lab, p in zip(LABELS, [0.03, 0.18, 0.14, 0.18, 0.22, 0.4], strict=True)
            },
        }
    )
    start = time.perf_counter()
    assignment, _ = split_patients(exams, SplitConfig(test=0.2, val=0.1, seed=0))
    assert time.perf_counter() - start < 30
    assert len(assignment) == exams["patient_id"].nunique()


def test_patients_sharing_a_study_stay_together_and_ids_do_not_matter(synthetic_db: str) -> None:
    """A study under two patients (re-keyed, or sent by two sites) is never split;
    the assignment depends on (site, PatientID), not on the order of ingest."""
    engine = open_catalog(synthetic_db)
    exams = read_exam_labels(engine, "synthetic")
    config = SplitConfig(test=0.3, seed=5)
    base, _ = split_patients(exams, config)
    # the same catalog ingested in another order: other catalog ids, same patients
    ids = sorted(exams["patient_id"].unique())
    renumber = dict(zip(ids, np.random.default_rng(0).permutation(ids) + 10_000, strict=True))
    moved, _ = split_patients(exams.assign(patient_id=exams["patient_id"].map(renumber)), config)
    assert {renumber[p]: s for p, s in base.items()} == moved
    # 40 studies copied under a second patient each (another PatientID at another site)
    copies = exams.iloc[:40].copy()
    copies["patient_id"] = copies["patient_id"] + 100_000
    copies["patient_key"] = "REKEYED-" + copies["patient_key"].astype(str)
    copies["site"] = "site-x"
    joined = pd.concat([exams, copies])
    assignment, warnings = split_patients(joined, config)
    for _, row in copies.iterrows():
        assert assignment[int(row["patient_id"])] == assignment[int(row["patient_id"]) - 100_000]
    assert any(
        "40 StudyInstanceUID(s) are catalogued under more than one patient" in w for w in warnings
    )
