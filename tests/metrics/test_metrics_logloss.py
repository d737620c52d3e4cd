"""Tests of the challenge metric (weighted multi-label log loss)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss

from ichkit.errors import IchkitError
from ichkit.labels import LABEL_WEIGHTS
from ichkit.metrics import (
    EPSILON,
    binary_log_loss,
    per_image_log_loss,
    per_label_log_loss,
    weighted_log_loss,
)


def _random(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = (rng.random((n, 6)) < 0.2).astype(float)
    true[:, 5] = true[:, :5].max(axis=1)
    pred = np.clip(0.6 * true + 0.5 * rng.random((n, 6)), 0.001, 0.999)
    return true, pred


def test_matches_sklearn_weighted_log_loss_over_long_rows() -> None:
    """Independent computation: sklearn's log loss over the long rows, weights 1/1/1/1/1/2.

    Per image the weighted mean is sum(w*l)/7; the mean over images of that is
    sum over all rows of w*l / (7 n) = sklearn's weighted log_loss.
    """
    true, pred = _random(500, 0)
    weights = np.tile(LABEL_WEIGHTS, len(true))
    expected = log_loss(true.reshape(-1), pred.reshape(-1), sample_weight=weights)
    assert weighted_log_loss(true, pred) == pytest.approx(expected, rel=1e-12)


def test_hand_computed_example() -> None:
    # truth (epidural, intraparenchymal, intraventricular, subarachnoid, subdural, any)
    #       = (1, 0, 0, 0, 0, 1), prediction (0.8, 0.1, 0.5, 0.2, 0.3, 0.9):
    # losses -ln .8, -ln .9, -ln .5, -ln .8, -ln .7, -ln .9 (weight 2), divided by 7:
    # (0.223144 + 0.105361 + 0.693147 + 0.223144 + 0.356675 + 2 * 0.105361) / 7
    #   = 1.812191 / 7 = 0.258884
    true = np.array([[1, 0, 0, 0, 0, 1]], dtype=float)
    pred = np.array([[0.8, 0.1, 0.5, 0.2, 0.3, 0.9]])
    expected = (
        -(
            math.log(0.8)
            + math.log(0.9)
            + math.log(0.5)
            + math.log(0.8)
            + math.log(0.7)
            + 2 * math.log(0.9)
        )
        / 7
    )
    assert weighted_log_loss(true, pred) == pytest.approx(expected, rel=1e-14)
    assert expected == pytest.approx(0.258884, abs=1e-6)


def test_perfect_and_uninformative_submissions() -> None:
    true, _ = _random(200, 1)
    assert weighted_log_loss(true, true) == pytest.approx(0.0, abs=1e-14)
    assert weighted_log_loss(true, np.full_like(true, 0.5)) == pytest.approx(math.log(2), rel=1e-15)


def test_clipping_of_certain_wrong_predictions() -> None:
    ones, zeros = np.ones((3, 6)), np.zeros((3, 6))
    # truth 1, prediction 0 → clipped to 1e-15: loss -ln(1e-15) for every label and image
    assert weighted_log_loss(ones, zeros) == pytest.approx(-math.log(EPSILON), rel=1e-15)
    # truth 0, prediction 1 → clipped to 1 - 1e-15: loss -ln(1 - (1 - 1e-15)) (float64 rounding)
    wrong = weighted_log_loss(zeros, ones)
    assert math.isfinite(wrong)
    assert wrong == pytest.approx(-math.log1p(-(1 - EPSILON)), rel=1e-12)
    assert wrong == pytest.approx(34.5388, abs=1e-3)


def test_permutation_invariance() -> None:
    true, pred = _random(300, 2)
    order = np.random.default_rng(5).permutation(300)
    assert weighted_log_loss(true[order], pred[order]) == pytest.approx(
        weighted_log_loss(true, pred), rel=1e-14
    )


def test_per_label_and_per_image() -> None:
    true, pred = _random(400, 3)
    per_label = per_label_log_loss(true, pred)
    assert list(per_label) == [
        "epidural",
        "intraparenchymal",
        "intraventricular",
        "subarachnoid",
        "subdural",
        "any",
    ]
    for j, value in enumerate(per_label.values()):
        assert value == pytest.approx(log_loss(true[:, j], pred[:, j], labels=[0, 1]), rel=1e-12)
    # the challenge metric is the weighted mean of the per-label means
    combined = sum(w * v for w, v in zip(LABEL_WEIGHTS, per_label.values(), strict=True)) / 7
    assert weighted_log_loss(true, pred) == pytest.approx(combined, rel=1e-12)
    assert per_image_log_loss(true, pred).shape == (400,)
    assert binary_log_loss(np.array([1.0]), np.array([0.25]))[0] == pytest.approx(math.log(4))


@pytest.mark.parametrize(
    ("true", "pred", "pattern"),
    [
        (np.zeros((2, 6)), np.zeros((2, 5)), r"shape: y_true and y_pred must both have shape"),
        (np.zeros(6), np.zeros(6), r"must both have shape \(images, 6\)"),
        (np.zeros((0, 6)), np.zeros((0, 6)), r"shape: no images to score"),
    ],
)
def test_shape_errors(true: np.ndarray, pred: np.ndarray, pattern: str) -> None:
    with pytest.raises(IchkitError, match=pattern):
        weighted_log_loss(true, pred)
