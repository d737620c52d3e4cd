"""Time the bootstrap intervals of ``ichkit evaluate``'s report at RSNA test scale.

ichkit: :func:`ichkit.model._report.compute_metrics`, whose intervals come from
the vectorised :func:`ichkit.metrics.bootstrap_ci` (exams resampled; each image
weighted by its exam's count). Baseline, in the same process: the per-round
loop the report used before (:func:`ichkit.model._metrics.bootstrap_ci` over
resampled exam indices, the images of the drawn exams gathered each round, one
call per statistic: 2 log losses and 12 AUCs).

    .venv/bin/python benchmarks/bench_report_bootstrap.py --exams 3500 --slices 35 --rounds 500

It also times ``ichkit.metrics.bootstrap_ci(..., groups=exams)`` (``ichkit score
--exams``) and its peak traced memory, with replicates drawn in chunks sized by
rows (ichkit) against chunks sized by groups (the baseline: the earlier chunking,
reproduced by scaling the module's chunk constant by rows / groups).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.typing as npt

from ichkit.labels import LABELS
from ichkit.model._metrics import auc, bootstrap_ci, weighted_log_loss
from ichkit.model._report import compute_metrics


def baseline(
    yi_parts: list[np.ndarray], pi_parts: list[np.ndarray], pe: np.ndarray, rounds: int
) -> None:
    """The earlier report's intervals: a Python loop of resampled indices per statistic."""
    n = len(yi_parts)
    ye = np.stack([y.max(axis=0) for y in yi_parts])
    yi, pi = np.concatenate(yi_parts), np.concatenate(pi_parts)
    starts = np.cumsum([0] + [len(y) for y in yi_parts])

    def images_of(idx: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        return np.concatenate([np.arange(starts[i], starts[i + 1]) for i in idx])

    def image_loss(idx: npt.NDArray[np.intp]) -> float:
        sel = images_of(idx)
        return weighted_log_loss(yi[sel], pi[sel])

    bootstrap_ci(image_loss, n, rounds=rounds)
    bootstrap_ci(lambda idx: weighted_log_loss(ye[idx], pe[idx]), n, rounds=rounds)
    for j in range(len(LABELS)):

        def image_auc(idx: npt.NDArray[np.intp], j: int = j) -> float:
            sel = images_of(idx)
            return auc(yi[sel, j], pi[sel, j])

        bootstrap_ci(image_auc, n, rounds=rounds)
        bootstrap_ci(lambda idx, j=j: auc(ye[idx, j], pe[idx, j]), n, rounds=rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exams", type=int, default=3500)
    parser.add_argument("--slices", type=int, default=35)
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    truth = [(rng.random((args.slices, 6)) < 0.05).astype(float) for _ in range(args.exams)]
    probs = [np.clip(t * 0.5 + rng.random(t.shape) * 0.5, 0, 1) for t in truth]
    exams = [p.max(axis=0) for p in probs]
    t0 = time.perf_counter()
    compute_metrics(truth, probs, exams, rounds=args.rounds)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    baseline(truth, probs, np.stack(exams), args.rounds)
    base = time.perf_counter() - t0
    print(
        f"{args.exams} exams x {args.slices} images, {args.rounds} rounds: "
        f"compute_metrics {ours:.1f} s; per-round baseline {base:.1f} s; ratio {base / ours:.1f}x"
    )
    yi, pi = np.concatenate(truth), np.concatenate(probs)
    codes = np.repeat(np.arange(args.exams), args.slices)
    rows = {}
    for name, scale in (("rows", 1), ("groups (baseline)", args.slices)):
        rows[name] = _grouped(yi, pi, codes, args.rounds, scale)
    (t_new, m_new), (t_old, m_old) = rows["rows"], rows["groups (baseline)"]
    print(
        f"grouped bootstrap_ci, {args.rounds} replicates: chunks by rows {t_new:.1f} s, "
        f"{m_new:.0f} MB peak; chunks by groups {t_old:.1f} s, {m_old:.0f} MB peak; "
        f"ratio {t_old / t_new:.1f}x time, {m_old / m_new:.1f}x memory"
    )


def _grouped(
    yi: np.ndarray, pi: np.ndarray, codes: np.ndarray, rounds: int, scale: int
) -> tuple[float, float]:
    """Seconds and peak traced MB of a grouped bootstrap, chunk constant times ``scale``."""
    import tracemalloc

    from ichkit.metrics import _bootstrap, bootstrap_ci

    saved = _bootstrap._CHUNK_ENTRIES
    _bootstrap._CHUNK_ENTRIES = saved * scale
    try:
        tracemalloc.start()
        t0 = time.perf_counter()
        bootstrap_ci(yi, pi, n_boot=rounds, groups=codes)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
        _bootstrap._CHUNK_ENTRIES = saved
    return seconds, peak


if __name__ == "__main__":
    main()
