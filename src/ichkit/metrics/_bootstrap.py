"""Bootstrap confidence intervals for the challenge metric and the AUCs.

Each replicate resamples the images (or, with ``groups``, whole groups such as
exams) with replacement; a replicate is a vector of resampling counts, so the
log losses are one matrix product per chunk of replicates and the AUCs reuse
one sort of the scores (:class:`~ichkit.metrics._auc._Ranked`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ichkit.errors import IchkitError
from ichkit.labels import LABELS
from ichkit.metrics._auc import _Ranked
from ichkit.metrics._logloss import _as_pair, binary_log_loss, per_image_log_loss

__all__ = ["BootstrapResult", "bootstrap_ci", "bootstrap_counts"]

#: Replicates are drawn in chunks of about this many resampled entries.
_CHUNK_ENTRIES = 4_000_000


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile bootstrap intervals.

    Attributes
    ----------
    n_boot, seed, confidence
        The settings used.
    weighted_log_loss
        ``(low, high)`` of the challenge metric.
    log_loss, auc
        ``{label: (low, high)}``; an AUC interval is NaN when a label has one class.
    auc_replicates
        ``{label: count}``: the replicates that drew both classes, from which
        that label's AUC interval is taken (the others have no AUC). Well below
        ``n_boot`` means a label with very few positives (or negatives), whose
        interval is then only a rough guide.
    """

    n_boot: int
    seed: int
    confidence: float
    weighted_log_loss: tuple[float, float]
    log_loss: dict[str, tuple[float, float]] = field(default_factory=dict)
    auc: dict[str, tuple[float, float]] = field(default_factory=dict)
    auc_replicates: dict[str, int] = field(default_factory=dict)


def bootstrap_counts(
    n: int, *, n_boot: int, rng: np.random.Generator, chunk: int | None = None
) -> list[np.ndarray]:
    """Resampling counts: chunks of shape (b, n), each row sums to ``n``."""
    size = max(1, _CHUNK_ENTRIES // max(n, 1)) if chunk is None else chunk
    out = []
    for start in range(0, n_boot, size):
        b = min(size, n_boot - start)
        draws = rng.integers(0, n, size=(b, n))
        draws += np.arange(b)[:, None] * n
        out.append(np.bincount(draws.reshape(-1), minlength=b * n).reshape(b, n))
    return out


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return (float(low), float(high))


def bootstrap_ci(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    groups: npt.ArrayLike | None = None,
) -> BootstrapResult:
    """Percentile bootstrap intervals of the weighted log loss, per-label log loss and AUC.

    Parameters
    ----------
    y_true, y_pred
        (n, 6) truths and probabilities in :data:`~ichkit.labels.LABELS` order.
    n_boot
        Number of replicates.
    seed
        Seed of :func:`numpy.random.default_rng`; same seed, same intervals.
    confidence
        Coverage of the intervals (0.95: 2.5th and 97.5th percentiles).
    groups
        Optional (n,) int codes ``0 .. g - 1``: resample groups (e.g. patients or
        exams) instead of rows, keeping each group's rows together.

    Returns
    -------
    BootstrapResult
    """
    true, pred = _as_pair(y_true, y_pred)
    if n_boot < 1:
        raise IchkitError(f"n_boot must be at least 1, not {n_boot}", field="n_boot", value=n_boot)
    if not 0.0 < confidence < 1.0:
        raise IchkitError(
            f"confidence must lie in (0, 1), not {confidence}", field="confidence", value=confidence
        )
    n = true.shape[0]
    codes = None if groups is None else np.asarray(groups, dtype=np.int64)
    n_units = n if codes is None else int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    image_loss = per_image_log_loss(true, pred)
    label_loss = binary_log_loss(true, pred)
    ranked = [_Ranked(true[:, j], pred[:, j]) for j in range(len(LABELS))]
    wll, lls, aucs = [], [], []
    # chunks of ~_CHUNK_ENTRIES resampled rows: with groups each replicate expands
    # to a weight per row (RSNA's 121k test images in 3.5k exams: ~5 MB a replicate)
    chunk = max(1, _CHUNK_ENTRIES // max(n, 1))
    for counts in bootstrap_counts(n_units, n_boot=n_boot, rng=rng, chunk=chunk):
        weights = counts if codes is None else counts[:, codes]
        weights = weights.astype(np.float64)
        total = weights.sum(axis=1)
        wll.append(weights @ image_loss / total)
        lls.append(weights @ label_loss / total[:, None])
        aucs.append(np.column_stack([r.auc(weights) for r in ranked]))
    wll_all, ll_all, auc_all = np.concatenate(wll), np.vstack(lls), np.vstack(aucs)
    return BootstrapResult(
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
        weighted_log_loss=_interval(wll_all, confidence),
        log_loss={lab: _interval(ll_all[:, j], confidence) for j, lab in enumerate(LABELS)},
        auc={lab: _interval(auc_all[:, j], confidence) for j, lab in enumerate(LABELS)},
        auc_replicates={lab: int(np.isfinite(auc_all[:, j]).sum()) for j, lab in enumerate(LABELS)},
    )
