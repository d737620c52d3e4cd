"""Preprocessing cache vs the naive per-epoch pydicom path.

Usage::

    .venv/bin/python benchmarks/bench_cache.py DATA [--size 96] [--exams 40] [--workers 2]

DATA is an ``ichkit synth`` output (or RSNA layout). Measures, for the first
``--exams`` labelled series:

* naive: what each epoch costs without a cache — decode every DICOM file
  (``ichkit.dicom.load_series``), crop to the head and resize;
* cache build: the same once, written as .npy, with ``--workers`` processes;
* cached epoch: reading every series back (memory-mapped .npy, to float32).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--exams", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
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


if __name__ == "__main__":
    main()
