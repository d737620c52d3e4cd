"""Tests of the bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ichkit.errors import IchkitError
from ichkit.labels import LABELS
from ichkit.metrics import bootstrap_ci, weighted_log_loss
from ichkit.metrics._bootstrap import bootstrap_counts


def _data(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    true = (rng.random((n, 6)) < 0.3).astype(float)
    pred = np.clip(0.4 * true + 0.6 * rng.random((n, 6)), 0.01, 0.99)
    return true, pred


def test_seeded_and_covering_the_estimate() -> None:
    true, pred = _data()
    a = bootstrap_ci(true, pred, n_boot=200, seed=3)
    b = bootstrap_ci(true, pred, n_boot=200, seed=3)
    assert a == b
    low, high = a.weighted_log_loss
    assert low < weighted_log_loss(true, pred) < high
    assert set(a.auc) == set(LABELS) and set(a.log_loss) == set(LABELS)
    assert all(lo < hi for lo, hi in a.auc.values())
    c = bootstrap_ci(true, pred, n_boot=200, seed=4)
    assert c.weighted_log_loss != a.weighted_log_loss


def test_replicates_equal_resampling_by_hand() -> None:
    """Count-weighted replicate metrics equal those of explicitly resampled rows."""
    true, pred = _data(60)
    rng = np.random.default_rng(11)
    (counts,) = bootstrap_counts(60, n_boot=5, rng=rng)
    assert counts.shape == (5, 60) and (counts.sum(axis=1) == 60).all()
    from ichkit.metrics._auc import _Ranked

    for row in counts:
        idx = np.repeat(np.arange(60), row)
        weighted = _Ranked(true[:, 5], pred[:, 5]).auc(row.astype(float))[0]
        assert weighted == pytest.approx(roc_auc_score(true[idx, 5], pred[idx, 5]), rel=1e-12)


def test_group_bootstrap_and_errors() -> None:
    true, pred = _data(90)
    groups = np.repeat(np.arange(30), 3)
    result = bootstrap_ci(true, pred, n_boot=50, groups=groups)
    assert result.n_boot == 50
    assert all(0 < result.auc_replicates[lab] <= 50 for lab in LABELS)
    with pytest.raises(IchkitError, match=r"n_boot: n_boot must be at least 1, not 0"):
        bootstrap_ci(true, pred, n_boot=0)
    with pytest.raises(IchkitError, match=r"confidence: confidence must lie in \(0, 1\), not 1.5"):
        bootstrap_ci(true, pred, n_boot=5, confidence=1.5)


def test_auc_replicates_count_the_rounds_with_both_classes() -> None:
    """One positive among 40: only the rounds that draw it have an AUC."""
    true = np.zeros((40, 6))
    true[0] = 1.0
    pred = np.full((40, 6), 0.2)
    pred[0] = 0.9
    result = bootstrap_ci(true, pred, n_boot=400, seed=1)
    # P(the positive is drawn) = 1 - (39/40)^40 ~ 0.64
    assert 200 < result.auc_replicates["any"] < 320
