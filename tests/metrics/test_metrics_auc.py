"""Tests of the ROC AUC (against scikit-learn) and exam-level aggregation."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ichkit.errors import IchkitError
from ichkit.metrics import exam_max, per_label_auc, roc_auc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_matches_sklearn_with_ties_and_weights(seed: int) -> None:
    rng = np.random.default_rng(seed)
    true = (rng.random(2000) < 0.3).astype(float)
    score = np.round(rng.random(2000) * 0.5 + 0.3 * true, 2)  # rounding makes many ties
    weights = rng.integers(0, 4, 2000).astype(float)
    assert roc_auc(true, score) == pytest.approx(roc_auc_score(true, score), rel=1e-12)
    assert roc_auc(true, score, sample_weight=weights) == pytest.approx(
        roc_auc_score(true, score, sample_weight=weights), rel=1e-12
    )


def test_roc_auc_small_hand_example() -> None:
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4), (0.8>0.1), (0.4=0.4 → 1/2),
    # (0.4>0.1) → (1 + 1 + 0.5 + 1) / 4 = 0.875
    assert roc_auc([1, 0, 1, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(0.875)


def test_roc_auc_one_class_is_nan() -> None:
    assert math.isnan(roc_auc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert math.isnan(roc_auc([], []))
    with pytest.raises(IchkitError, match=r"shape: y_true and y_score differ in length: 2 and 3"):
        roc_auc([0, 1], [0.1, 0.2, 0.3])


def test_per_label_auc_logs_single_class(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    true = (rng.random((100, 6)) < 0.5).astype(float)
    true[:, 0] = 0.0
    pred = rng.random((100, 6))
    with caplog.at_level(logging.INFO, logger="ichkit.metrics"):
        aucs = per_label_auc(true, pred)
    assert math.isnan(aucs["epidural"])
    assert "AUC of epidural is undefined: the truth holds one class only" in caplog.text
    assert aucs["any"] == pytest.approx(roc_auc_score(true[:, 5], pred[:, 5]))


def test_exam_max() -> None:
    values = np.array([[0.1, 0.9], [0.5, 0.2], [0.3, 0.3]])
    out = exam_max(values, np.array([1, 0, 1]))
    np.testing.assert_array_equal(out, [[0.5, 0.2], [0.3, 0.9]])
    with pytest.raises(IchkitError, match=r"exam: 1 exam\(s\) have no image"):
        exam_max(values, np.array([0, 0, 2]))
    with pytest.raises(IchkitError, match=r"exam: exam codes must lie in 0 \.\. 1"):
        exam_max(values, np.array([0, 1, 2]), n_exams=2)
