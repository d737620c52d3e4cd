"""Small metric helpers used while training and in reports.

The challenge metric (weighted multi-label log loss, ``any`` weighted 2,
probabilities clipped to [1e-15, 1 - 1e-15]) as ``ichkit score`` defines it,
AUC that is NaN when a label has one class only, and a percentile bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ichkit.labels import LABEL_WEIGHTS
from ichkit.metrics import roc_auc

__all__ = ["auc", "bootstrap_ci", "threshold_for_sensitivity", "weighted_log_loss"]

F64 = npt.NDArray[np.float64]
_EPS = 1e-15


def weighted_log_loss(truth: npt.ArrayLike, probs: npt.ArrayLike) -> float:
    """Mean over rows of the weighted mean of the six binary log losses."""
    y = np.asarray(truth, dtype=np.float64)
    p = np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1 - _EPS)
    if y.size == 0:
        return math.nan
    w = np.asarray(LABEL_WEIGHTS, dtype=np.float64)
    per = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    return float(((per * w).sum(axis=1) / w.sum()).mean())


def auc(truth: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """ROC AUC, NaN when only one class is present.

    :func:`ichkit.metrics.roc_auc` (numpy; equal to scikit-learn's
    ``roc_auc_score``): a report's bootstrap calls it thousands of times, and
    scikit-learn's input checks made that half of ``ichkit evaluate``'s time.
    """
    return roc_auc(np.asarray(truth, dtype=np.float64) > 0.5, score)


def bootstrap_ci(
    stat: Callable[[npt.NDArray[np.intp]], float],
    n: int,
    *,
    rounds: int = 500,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat(indices)`` over ``n`` resampled units."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        v = stat(rng.integers(0, n, size=n))
        if not math.isnan(v):
            values.append(v)
    if not values:
        return (math.nan, math.nan)
    lo, hi = np.percentile(values, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return (float(lo), float(hi))


def threshold_for_sensitivity(truth: npt.ArrayLike, score: npt.ArrayLike, target: float) -> float:
    """The highest threshold whose sensitivity on (truth, score) is at least ``target``.

    Returns NaN when there are no positives: no threshold can be chosen.
    """
    y = np.asarray(truth, dtype=np.float64) > 0.5
    s = np.asarray(score, dtype=np.float64)
    pos = np.sort(s[y])[::-1]
    if pos.size == 0:
        return math.nan
    k = max(1, math.ceil(target * pos.size))
    return float(pos[k - 1])
