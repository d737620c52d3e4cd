"""The challenge metric: weighted multi-label log loss (RSNA 2019).

Per image, the weighted mean of the six binary log losses, weight 2 for
``any`` and 1 for each subtype (:data:`ichkit.labels.LABEL_WEIGHTS`); the score
is the mean over images. Probabilities are clipped to [1e-15, 1 - 1e-15].
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ichkit.errors import IchkitError
from ichkit.labels import LABEL_WEIGHTS, LABELS

__all__ = [
    "EPSILON",
    "binary_log_loss",
    "per_image_log_loss",
    "per_label_log_loss",
    "weighted_log_loss",
]

#: Probabilities are clipped to ``[EPSILON, 1 - EPSILON]`` before taking logs.
EPSILON = 1e-15


def _as_pair(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if true.shape != pred.shape or true.ndim != 2 or true.shape[1] != len(LABELS):
        raise IchkitError(
            f"y_true and y_pred must both have shape (images, {len(LABELS)}); "
            f"got {true.shape} and {pred.shape}",
            field="shape",
            value=(true.shape, pred.shape),
        )
    if true.shape[0] == 0:
        raise IchkitError("no images to score", field="shape", value=true.shape)
    return true, pred


def binary_log_loss(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> np.ndarray:
    """Element-wise binary log loss ``-(y log p + (1 - y) log(1 - p))``, p clipped.

    Parameters
    ----------
    y_true, y_pred
        Arrays of the same shape; truths in [0, 1] (normally 0 or 1),
        probabilities (clipped to ``[EPSILON, 1 - EPSILON]``).

    Returns
    -------
    numpy.ndarray
        float64, same shape.
    """
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.clip(np.asarray(y_pred, dtype=np.float64), EPSILON, 1.0 - EPSILON)
    return -(true * np.log(pred) + (1.0 - true) * np.log1p(-pred))


def per_image_log_loss(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> np.ndarray:
    """Weighted mean of the six binary log losses of each image, shape (images,)."""
    true, pred = _as_pair(y_true, y_pred)
    weights = np.asarray(LABEL_WEIGHTS)
    return np.asarray(binary_log_loss(true, pred) @ (weights / weights.sum()))


def weighted_log_loss(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """The RSNA 2019 challenge metric.

    Parameters
    ----------
    y_true
        (images, 6) truths in :data:`~ichkit.labels.LABELS` order (0 or 1).
    y_pred
        (images, 6) probabilities, same order; clipped to [1e-15, 1 - 1e-15].

    Returns
    -------
    float
        Mean over images of the weighted mean of the six binary log losses,
        weights :data:`~ichkit.labels.LABEL_WEIGHTS` (2 for ``any``, 1 for each
        subtype). 0 for a perfect submission, ln 2 for all 0.5.

    Raises
    ------
    IchkitError
        The arrays do not both have shape (images, 6), or there are no images.

    Examples
    --------
    >>> import numpy as np
    >>> round(weighted_log_loss(np.zeros((1, 6)), np.full((1, 6), 0.5)), 6)
    0.693147
    """
    return float(per_image_log_loss(y_true, y_pred).mean())


def per_label_log_loss(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, float]:
    """Mean binary log loss of each label over images, keyed by label name."""
    true, pred = _as_pair(y_true, y_pred)
    means = binary_log_loss(true, pred).mean(axis=0)
    return {name: float(v) for name, v in zip(LABELS, means, strict=True)}


def _log_loss_summary(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike
) -> tuple[float, dict[str, float]]:
    """:func:`weighted_log_loss` and :func:`per_label_log_loss` from one pass."""
    true, pred = _as_pair(y_true, y_pred)
    means = binary_log_loss(true, pred).mean(axis=0)
    weights = np.asarray(LABEL_WEIGHTS)
    overall = float(means @ weights / weights.sum())
    return overall, {name: float(v) for name, v in zip(LABELS, means, strict=True)}
