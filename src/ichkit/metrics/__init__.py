"""Metrics: the RSNA 2019 challenge metric, AUCs, bootstrap intervals, submission scoring.

The challenge metric (:func:`weighted_log_loss`): per image, the weighted mean of
the six binary log losses (weight 2 for ``any``, 1 for each subtype), averaged
over images, probabilities clipped to [1e-15, 1 - 1e-15]. :func:`score_files`
validates a submission CSV against a truth CSV and scores it, as
``ichkit score`` does.

All of it is numpy: :mod:`sklearn` is not imported (its import alone takes
seconds); the tests check the results against scikit-learn.
"""

from __future__ import annotations

from ichkit.metrics._auc import exam_max, per_label_auc, roc_auc
from ichkit.metrics._bootstrap import BootstrapResult, bootstrap_ci
from ichkit.metrics._logloss import (
    EPSILON,
    binary_log_loss,
    per_image_log_loss,
    per_label_log_loss,
    weighted_log_loss,
)
from ichkit.metrics._submission import (
    ScoreReport,
    read_exam_map,
    score,
    score_files,
    validate_submission,
)

__all__ = [
    "EPSILON",
    "BootstrapResult",
    "ScoreReport",
    "binary_log_loss",
    "bootstrap_ci",
    "exam_max",
    "per_image_log_loss",
    "per_label_auc",
    "per_label_log_loss",
    "read_exam_map",
    "roc_auc",
    "score",
    "score_files",
    "validate_submission",
    "weighted_log_loss",
]
