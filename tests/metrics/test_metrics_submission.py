"""Tests of submission validation and file scoring (ichkit.metrics.score_files)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from ichkit.errors import LabelsError, SubmissionError
from ichkit.labels import LABELS, read_label_rows, read_labels_long
from ichkit.metrics import (
    bootstrap_ci,
    read_exam_map,
    score,
    score_files,
    validate_submission,
    weighted_log_loss,
)

TRUTH = {
    "a": (0, 1, 0, 0, 0, 1),
    "b": (0, 0, 0, 0, 0, 0),
    "c": (1, 0, 0, 0, 1, 1),
}


def _csv(path: Path, rows: Sequence[tuple[str, object]], header: str = "ID,Label") -> Path:
    path.write_text(header + "\n" + "".join(f"{rid},{v}\n" for rid, v in rows), encoding="utf-8")
    return path


def _table_rows(table: Mapping[str, tuple[float, ...]]) -> list[tuple[str, object]]:
    return [
        (f"ID_{img}_{lab}", v)
        for img, vals in table.items()
        for lab, v in zip(LABELS, vals, strict=True)
    ]


PRED = {
    "a": (0.1, 0.8, 0.2, 0.1, 0.1, 0.9),
    "b": (0.1, 0.1, 0.1, 0.2, 0.1, 0.3),
    "c": (0.7, 0.2, 0.1, 0.1, 0.6, 0.8),
}


@pytest.fixture
def truth(tmp_path: Path) -> Path:
    return _csv(tmp_path / "truth.csv", _table_rows(TRUTH))


def _sub(tmp_path: Path, rows: list[tuple[str, object]] | None = None) -> Path:
    return _csv(tmp_path / "sub.csv", _table_rows(PRED) if rows is None else rows)


def test_score_files_matches_array_metric(tmp_path: Path, truth: Path) -> None:
    report = score_files(_sub(tmp_path), truth)
    true = np.array(list(TRUTH.values()), dtype=float)
    pred = np.array(list(PRED.values()))
    assert report.weighted_log_loss == pytest.approx(weighted_log_loss(true, pred), rel=1e-14)
    assert report.n_images == 3
    # any: truth (1, 0, 1), prediction (0.9, 0.3, 0.8): positives above the negative → AUC 1
    assert report.auc["any"] == 1.0
    assert math.isnan(report.auc["intraventricular"])  # no positive in the truth
    payload = report.to_dict()
    assert set(payload) >= {"weighted_log_loss", "per_label", "n_images"}
    assert payload["per_label"]["intraventricular"]["auc"] is None


def test_row_order_does_not_matter(tmp_path: Path, truth: Path) -> None:
    rows = _table_rows(PRED)
    shuffled = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    a = score_files(_sub(tmp_path), truth)
    b = score_files(_csv(tmp_path / "shuffled.csv", shuffled), truth)
    assert a.weighted_log_loss == pytest.approx(b.weighted_log_loss, rel=1e-15)


def test_truth_with_identical_duplicates_scores(tmp_path: Path) -> None:
    rows = _table_rows(TRUTH)
    truth = _csv(tmp_path / "dup.csv", [*rows, rows[3], rows[0]])
    assert score_files(_sub(tmp_path), truth).n_images == 3


def test_truth_errors(tmp_path: Path) -> None:
    rows = _table_rows(TRUTH)
    sub = _sub(tmp_path)
    conflicting = _csv(tmp_path / "conf.csv", [*rows, ("ID_a_any", 0)])
    with pytest.raises(LabelsError, match=r"conf\.csv: lines 7 and 20: conflicting duplicate"):
        score_files(sub, conflicting)
    soft = _csv(tmp_path / "soft.csv", [*rows[:-1], ("ID_c_any", 0.5)])
    with pytest.raises(LabelsError, match=r"soft\.csv: Label: truth value 0\.5 of ID_c_any is not"):
        score_files(sub, soft)
    empty = _csv(tmp_path / "empty.csv", [])
    with pytest.raises(LabelsError, match=r"empty\.csv: truth file holds no images"):
        score_files(sub, empty)
    try:
        score_files(sub, conflicting)
    except LabelsError as err:
        assert not isinstance(err, SubmissionError)


def _replace(
    rows: list[tuple[str, object]], index: int, row: tuple[str, object]
) -> list[tuple[str, object]]:
    out = list(rows)
    out[index] = row
    return out


P = _table_rows(PRED)


@pytest.mark.parametrize(
    ("rows", "pattern"),
    [
        # value outside [0, 1] or NaN (line = index + 2)
        (_replace(P, 4, ("ID_a_subdural", 1.5)), r"line 6: value of ID_a_subdural 1\.5 is outside"),
        (_replace(P, 4, ("ID_a_subdural", -0.1)), r"line 6: value of ID_a_subdural -0\.1 is"),
        (_replace(P, 2, ("ID_a_intraventricular", "nan")), r"line 4: value of ID_a_intraventr"),
        (_replace(P, 2, ("ID_a_intraventricular", "")), r"line 4: .* is NaN \(empty or 'nan'\)"),
        # unknown image
        ([*P, ("ID_zzz_any", 0.5)], r"line 20: image 'zzz' of row ID_zzz_any is not in the truth"),
        # repeated row (even with the same value), naming both lines
        ([*P, ("ID_b_epidural", 0.1)], r"line 20: row ID_b_epidural repeats line 8; each image"),
        # malformed rows
        (_replace(P, 0, ("ID_a_epidurall", 0.1)), r"line 2: unknown label 'epidurall'"),
        (_replace(P, 7, ("a_any", 0.1)), r"line 9: ID 'a_any' is not of the form"),
        (_replace(P, 7, ("ID_b_epidural", "high")), r"line 9: Label 'high' of 'ID_b_epidural'"),
        # missing rows: first missing ID in truth order (b's intraparenchymal before c's)
        (P[:7] + P[8:12] + P[13:], r"ID: row ID_b_intraparenchymal is missing \(truth image 2"),
        ([r for r in P if not r[0].startswith("ID_a")], r"ID: row ID_a_epidural is missing"),
        # the earliest offending line wins over later ones, and over missing rows
        (
            [*_replace(P[:-1], 10, ("ID_b_subdural", 2)), ("ID_q_any", 0.5)],
            r"line 12: value of ID_b_subdural 2",
        ),
        (
            [("ID_q_any", 0.5), *_replace(P, 3, ("ID_a_bogus", 0.5))],
            r"line 2: image 'q' of row ID_q_any",
        ),
        ([*P[:5], ("ID_a_any", 0.2), *P[5:]], r"line 8: row ID_a_any repeats line 7"),
    ],
)
def test_submission_errors_name_first_offending_row(
    tmp_path: Path, truth: Path, rows: list[tuple[str, object]], pattern: str
) -> None:
    with pytest.raises(SubmissionError, match=rf"sub\.csv: {pattern}"):
        score_files(_sub(tmp_path, rows), truth)


def test_submission_file_errors(tmp_path: Path, truth: Path) -> None:
    with pytest.raises(SubmissionError, match=r"nope\.csv: file not found"):
        score_files(tmp_path / "nope.csv", truth)
    bad_header = _csv(tmp_path / "sub.csv", P, header="id,label")
    with pytest.raises(SubmissionError, match=r"sub\.csv: line 1: header is 'id,label'"):
        score_files(bad_header, truth)


def test_validate_submission_with_long_table(tmp_path: Path) -> None:
    long = read_labels_long(_sub(tmp_path))
    pred = validate_submission(long, ["c", "a", "b"])
    np.testing.assert_array_equal(pred[0], PRED["c"])
    rows = read_label_rows(_sub(tmp_path), strict=False)
    np.testing.assert_array_equal(validate_submission(rows, ["a", "b", "c"])[2], PRED["c"])
    with pytest.raises(SubmissionError, match=r"row ID_d_epidural is missing \(truth image 4"):
        validate_submission(rows, ["a", "b", "c", "d"])


def test_sop_uids_with_prefix_and_dots(tmp_path: Path) -> None:
    uids = {"1.2.840.10008.9": TRUTH["a"], "ID_not_hex": TRUTH["c"]}
    truth_rows = [
        (f"ID_{img.removeprefix('ID_')}_{lab}", v)
        for img, vals in uids.items()
        for lab, v in zip(LABELS, vals, strict=True)
    ]
    truth = _csv(tmp_path / "t.csv", truth_rows)
    sub = _csv(tmp_path / "sub.csv", [(rid, 0.5) for rid, _ in truth_rows])
    assert truth_rows[6][0] == "ID_not_hex_epidural"
    report = score_files(sub, truth)
    assert report.weighted_log_loss == pytest.approx(math.log(2))


def _exams(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_exam_level_auc_and_bootstrap(tmp_path: Path, truth: Path) -> None:
    exams = _exams(tmp_path / "ex.csv", "SOPInstanceUID,StudyInstanceUID\nID_a,s1\nID_b,s2\nc,s1\n")
    assert read_exam_map(exams) == {"a": "s1", "b": "s2", "c": "s1"}
    report = score_files(_sub(tmp_path), truth, exams_path=exams, n_boot=20, seed=1)
    assert report.n_exams == 2
    assert report.exam_auc is not None
    # exam s1 = max(a, c): any truth 1, prediction 0.9; s2 = b: truth 0, prediction 0.3
    assert report.exam_auc["any"] == 1.0
    payload = report.to_dict()
    assert payload["n_exams"] == 2
    assert set(payload["bootstrap"]) == {
        "n_boot",
        "seed",
        "confidence",
        "weighted_log_loss",
        "per_label",
        "exam_auc",
        "exam_auc_replicates",
        "resampled",
    }
    assert payload["bootstrap"]["resampled"] == "exams"


def test_bootstrap_resamples_exams_when_mapped() -> None:
    """With exam codes the image-level intervals resample whole exams."""
    rng = np.random.default_rng(5)
    codes = np.repeat(np.arange(40), 20)
    # an exam-level effect: all images of an exam share its truth and its score shift
    exam_truth = rng.random(40) < 0.4
    true = np.repeat(exam_truth[:, None], 20, axis=0) * np.ones((1, 6))
    pred = np.clip(0.3 + 0.4 * true + rng.normal(0, 0.25, (40, 1)).repeat(20, axis=0), 0.01, 0.99)
    mapped = score(true, pred, exam_codes=codes, n_boot=200, seed=2)
    plain = score(true, pred, n_boot=200, seed=2)
    assert mapped.bootstrap is not None and plain.bootstrap is not None
    grouped = bootstrap_ci(true, pred, n_boot=200, seed=2, groups=codes)
    assert mapped.bootstrap.weighted_log_loss == grouped.weighted_log_loss
    width = [
        b.weighted_log_loss[1] - b.weighted_log_loss[0] for b in (mapped.bootstrap, plain.bootstrap)
    ]
    assert width[0] > 2 * width[1]
    assert plain.to_dict()["bootstrap"]["resampled"] == "images"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("image,patient\na,p\n", r"ex\.csv: line 1: header 'image,patient' lacks an image column"),
        ("image_id,study\na,s1\nb,s2\na,s3\n", r"ex\.csv: lines 2 and 4: image 'a' is mapped to"),
        ("image_id,study\na,\n", r"ex\.csv: line 2: empty study cell"),
        ("image_id,study\na\n", r"ex\.csv: line 2: row has 1 field\(s\); expected 2"),
        ("image_id,exam\na,s1\nb,s1\n", r"ex\.csv: image_id: truth image 'c' has no exam"),
    ],
)
def test_exam_map_errors(tmp_path: Path, truth: Path, text: str, pattern: str) -> None:
    exams = _exams(tmp_path / "ex.csv", text)
    with pytest.raises(LabelsError, match=pattern):
        score_files(_sub(tmp_path), truth, exams_path=exams)


def test_exam_map_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match=r"none\.csv: file not found"):
        read_exam_map(tmp_path / "none.csv")
