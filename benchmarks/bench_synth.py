"""Benchmark ``ichkit synth``: seconds per exam (generate + write DICOM) by size and workers.

Usage::

    .venv/bin/python benchmarks/bench_synth.py [--exams-small 8] [--exams-large 4]

Measures 128x128x16 and 512x512x32 exams (3 sites: uncompressed signed 16-bit,
RLE, RSNA-quirk 12-bit), with 1 and 2 worker processes; prints a Markdown
table. Baseline to beat: the issue's targets, "well under a second per exam" at
128x16 and "a few seconds" at 512x32 on one core. Worker start-up (spawn, about
1-2 s) is included, as a user pays it.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from ichkit.synth import SynthConfig, write_dataset


def measure(size: int, slices: int, exams: int, workers: int) -> float:
    """Wall seconds per exam for one fresh dataset."""
    cfg = SynthConfig(exams=exams, seed=2019, size=size, slices=slices)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_dataset(cfg, Path(tmp) / "out", workers=workers)
        return (time.perf_counter() - start) / exams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exams-small", type=int, default=8)
    parser.add_argument("--exams-large", type=int, default=4)
    args = parser.parse_args()
    measure(64, 4, 1, 1)  # warm imports (pydicom encoders, matplotlib fonts)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    print("| exam | workers | exams | s/exam |")
    print("|---|---|---|---|")
    for size, slices, exams in ((128, 16, args.exams_small), (512, 32, args.exams_large)):
        for workers in (1, 2):
            s = measure(size, slices, exams, workers)
            print(f"| {size}x{size}x{slices} | {workers} | {exams} | {s:.2f} |", flush=True)


if __name__ == "__main__":
    main()
