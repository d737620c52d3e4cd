"""Benchmark ``ichkit synth``: seconds per exam (generate + write DICOM) by size and workers.

Usage::

    .venv/bin/python benchmarks/bench_synth.py [--exams-small 8] [--exams-large 4]

Measures 128x128x16 and 512x512x32 exams (3 sites: uncompressed signed 16-bit,
RLE, RSNA-quirk 12-bit), with 1 and 2 worker processes; prints a Markdown
table. Baseline to beat: the issue's targets, "well under a second per exam" at
128x16 and "a few seconds" at 512x32 on one core. Worker start-up (spawn, about
1-2 s) is included, as a user pays it.

A second table times the DICOM writing alone (``write_exam``, one process, exams
generated beforehand) with the images written the default way (the elements
shared by a series encoded once, the per-image ones spliced in) against the
baseline of pydicom's ``dcmwrite`` for every image (``splice=False``: the same
bytes, as ichkit wrote them before), alternating the two on the same exams.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from ichkit.synth import SynthConfig, generate_exam, plan_dataset, write_dataset
from ichkit.synth._writer import write_exam


def measure(size: int, slices: int, exams: int, workers: int) -> float:
    """Wall seconds per exam for one fresh dataset."""
    cfg = SynthConfig(exams=exams, seed=2019, size=size, slices=slices)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_dataset(cfg, Path(tmp) / "out", workers=workers)
        return (time.perf_counter() - start) / exams


def measure_writer(size: int, slices: int, exams: int, rounds: int) -> tuple[float, float]:
    """CPU seconds per exam of ``write_exam``: (spliced, dcmwrite per image), best of rounds."""
    cfg = SynthConfig(exams=exams, seed=2019, size=size, slices=slices, sites=3)
    plans = plan_dataset(cfg)
    generated = [generate_exam(cfg, plan) for plan in plans]
    best = {True: float("inf"), False: float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for splice in (True, False):
                start = time.process_time()
                for exam, plan in zip(generated, plans, strict=True):
                    write_exam(exam, cfg, plan, Path(tmp) / f"{r}-{splice}", splice=splice)
                best[splice] = min(best[splice], (time.process_time() - start) / exams)
    return best[True], best[False]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exams-small", type=int, default=8)
    parser.add_argument("--exams-large", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the writer table")
    args = parser.parse_args()
    measure(64, 4, 1, 1)  # warm imports (pydicom encoders, matplotlib fonts)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    print("| exam | workers | exams | s/exam |")
    print("|---|---|---|---|")
    for size, slices, exams in ((128, 16, args.exams_small), (512, 32, args.exams_large)):
        for workers in (1, 2):
            s = measure(size, slices, exams, workers)
            print(f"| {size}x{size}x{slices} | {workers} | {exams} | {s:.2f} |", flush=True)
    print()
    print("| exam | exams | write_exam, spliced (s CPU/exam) | dcmwrite per image | ratio |")
    print("|---|---|---|---|---|")
    for size, slices, exams in ((128, 32, args.exams_small), (512, 32, args.exams_large)):
        fast, slow = measure_writer(size, slices, exams, args.rounds)
        print(
            f"| {size}x{size}x{slices} | {exams} | {fast:.3f} | {slow:.3f} | {slow / fast:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
