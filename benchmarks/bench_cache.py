"""Preprocessing cache vs the naive per-epoch pydicom path.

Usage::

    .venv/bin/python benchmarks/bench_cache.py DATA [--size 96] [--exams 40] [--workers 2]

DATA is an ``ichkit synth`` output (or RSNA layout). Measures, for the first
``--exams`` labelled series:

* naive: what each epoch costs without a cache — decode every DICOM file
  (``ichkit.dicom.load_series``), crop to the head and resize;
* cache build: the same once, written as .npy, with ``--workers`` processes;
* cached epoch: reading every series back (memory-mapped .npy, to float32).

With ``--blas-baseline`` it also times the parallel cache build as ichkit runs
it (each worker limited to one BLAS thread) against the baseline of workers
that leave numpy's BLAS at its default thread count (one per core: the
build before that limit), alternated ``--rounds`` times in this process.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _torch_threads_only() -> None:
    """Baseline worker initializer: one torch thread, BLAS threads left as they are."""
    import torch

    torch.set_num_threads(1)


def _time_build(series: Sequence[Any], size: int, workers: int, init: Callable[[], None]) -> float:
    """Seconds to build the cache of ``series`` afresh with ``init`` as the worker initializer."""
    import ichkit.model._cache as cache_module

    original = cache_module._worker_init
    cache_module._worker_init = init
    tmp = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        t = time.perf_counter()
        cache_module.build_cache(series, tmp, size=size, workers=workers)
        return time.perf_counter() - t
    finally:
        cache_module._worker_init = original
        shutil.rmtree(tmp)


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--exams", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--blas-baseline", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from ichkit.dicom import load_series
    from ichkit.labels import read_labels
    from ichkit.model._cache import build_cache
    from ichkit.model._data import discover_series, find_layout
    from ichkit.model._preprocess import preprocess_volume

    layout = find_layout(args.data)
    table = read_labels(layout.labels)
    series = discover_series(layout, set(table.index), workers=args.workers)[: args.exams]
    slices = sum(len(s.files) for s in series)
    t = time.perf_counter()
    for s in series:
        v = load_series(list(s.files), series_instance_uid=s.series_instance_uid)
        preprocess_volume(v.hu, size=args.size)
    naive = time.perf_counter() - t
    tmp = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        t = time.perf_counter()
        cached = build_cache(series, tmp, size=args.size, workers=args.workers)
        build = time.perf_counter() - t
        t = time.perf_counter()
        for c in cached:
            np.asarray(c.load(), dtype=np.float32).sum()
        read = time.perf_counter() - t
    finally:
        shutil.rmtree(tmp)
    print(f"{len(series)} series, {slices} slices, {args.size} px, {args.workers} workers")
    print("| path | seconds | slices/s |\n|---|---|---|")
    print(f"| naive epoch (pydicom decode + crop + resize) | {naive:.2f} | {slices / naive:.0f} |")
    print(f"| cache build (once, {args.workers} processes) | {build:.2f} | {slices / build:.0f} |")
    print(f"| cached epoch (mmap .npy) | {read:.3f} | {slices / read:.0f} |")
    print(f"speed-up per epoch: {naive / read:.0f}x")
    if args.blas_baseline:
        from ichkit.model._cache import _worker_init

        limited: list[float] = []
        default: list[float] = []
        for _ in range(args.rounds):
            limited.append(_time_build(series, args.size, args.workers, _worker_init))
            default.append(_time_build(series, args.size, args.workers, _torch_threads_only))
        print(f"\ncache build, {args.workers} workers, best of {args.rounds} alternated rounds")
        print("| workers' BLAS threads | seconds | slices/s |\n|---|---|---|")
        for name, times in (("1 (ichkit)", limited), ("default (baseline)", default)):
            best = min(times)
            print(f"| {name} | {best:.2f} | {slices / best:.0f} |")
        print(f"ratio: {min(default) / min(limited):.2f}x")


if __name__ == "__main__":
    main()
