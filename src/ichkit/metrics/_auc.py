"""ROC AUC, per label and per exam, in numpy.

:func:`roc_auc` equals :func:`sklearn.metrics.roc_auc_score` (the trapezoidal
area, ties counted half) but is computed from one sort as the Mann-Whitney
statistic; this keeps :mod:`sklearn` (whose import alone takes over 2 s on a
2-core machine) out of ``ichkit score`` and lets the bootstrap reuse the sort.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from ichkit.errors import IchkitError
from ichkit.labels import LABELS

__all__ = ["exam_max", "per_label_auc", "roc_auc"]

logger = logging.getLogger(__name__)


class _Ranked:
    """One sort of the scores: tie groups, so that weighted AUCs cost O(n) each."""

    def __init__(self, y_true: np.ndarray, y_score: np.ndarray) -> None:
        order = np.argsort(y_score)
        score = y_score[order]
        self.order = order
        self.positive = y_true[order] > 0.5
        self.starts = np.flatnonzero(np.concatenate(([True], score[1:] != score[:-1])))

    def auc(self, weights: np.ndarray | None = None) -> np.ndarray:
        """AUC for each row of ``weights`` (shape (n,) or (b, n), original order).

        Mann-Whitney: for each tie group of scores, its positives beat the
        negatives below it and tie with its own negatives (counted half).
        """
        if weights is None:
            pos = np.add.reduceat(self.positive.astype(np.float64), self.starts)[None, :]
            size = np.diff(np.append(self.starts, self.positive.size))
            neg = size - pos
        else:
            w = np.atleast_2d(weights)[:, self.order]
            pos = np.add.reduceat(np.where(self.positive, w, 0.0), self.starts, axis=1)
            neg = np.add.reduceat(w, self.starts, axis=1) - pos
        below = np.cumsum(neg, axis=1) - neg
        n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            area = (pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
        area[(n_pos <= 0) | (n_neg <= 0)] = np.nan
        return np.asarray(area)


def roc_auc(
    y_true: npt.ArrayLike, y_score: npt.ArrayLike, *, sample_weight: npt.ArrayLike | None = None
) -> float:
    """Area under the ROC curve of binary truths ``y_true`` for scores ``y_score``.

    Parameters
    ----------
    y_true
        (n,) truths, 0 or 1.
    y_score
        (n,) scores (higher = more likely positive).
    sample_weight
        Optional (n,) non-negative weights.

    Returns
    -------
    float
        The probability that a random positive scores above a random negative
        (ties count half); NaN when only one class is present.
    """
    true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    score = np.asarray(y_score, dtype=np.float64).reshape(-1)
    if true.shape != score.shape:
        raise IchkitError(
            f"y_true and y_score differ in length: {true.shape[0]} and {score.shape[0]}",
            field="shape",
            value=(true.shape, score.shape),
        )
    if true.size == 0:
        return float("nan")
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    return float(_Ranked(true, score).auc(weights)[0])


def per_label_auc(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, float]:
    """ROC AUC of each label, keyed by label name.

    A label with only one class in ``y_true`` gets NaN, and a log message says so.
    """
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    out: dict[str, float] = {}
    for j, name in enumerate(LABELS):
        value = roc_auc(true[:, j], pred[:, j])
        if np.isnan(value):
            logger.info("AUC of %s is undefined: the truth holds one class only", name)
        out[name] = value
    return out


def exam_max(
    values: npt.ArrayLike, exam_codes: npt.ArrayLike, n_exams: int | None = None
) -> np.ndarray:
    """Per-exam maximum over images: (exams, k) from (images, k) and each image's exam code.

    Parameters
    ----------
    values
        (images, k) array (probabilities or truths).
    exam_codes
        (images,) int codes in ``0 .. n_exams - 1``.
    n_exams
        Number of exams (default ``exam_codes.max() + 1``); every exam needs an image.
    """
    values = np.asarray(values, dtype=np.float64)
    codes = np.asarray(exam_codes, dtype=np.int64)
    count = int(codes.max()) + 1 if n_exams is None else n_exams
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= count):
        raise IchkitError(
            f"exam codes must lie in 0 .. {count - 1}", field="exam", value=codes.max()
        )
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_codes[1:] != sorted_codes[:-1])))
    if starts.size != count:
        raise IchkitError(f"{count - starts.size} exam(s) have no image", field="exam", value=count)
    return np.asarray(np.maximum.reduceat(values[order], starts, axis=0))
