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

A third table times the dose report's burned-in text (``render_text``: each
line's glyphs drawn by matplotlib's FreeType wrapper) against the baseline of a
matplotlib figure with one text artist per line drawn by the Agg canvas (as
ichkit drew it before), called in turn; ``--dose-report-only`` prints just it.

A fourth table (``--phantom-only`` prints just it) times ``generate_exam`` alone
(one process, CPU seconds per exam) with the phantom rendered in the box the
head reaches against the baseline of rendering every pixel of each plane (as
ichkit did before; the same pixels, tested), alternating the two on the same
exams.
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


def _render_text_figure(lines: list[str], *, size: int) -> object:
    """Baseline: the dose report drawn as a matplotlib figure (the code before)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size / 100.0, size / 100.0), dpi=100, facecolor="black")
    canvas = FigureCanvasAgg(fig)
    for i, line in enumerate(lines):
        fig.text(
            0.04,
            0.95 - i * 0.055,
            line,
            color="white",
            family="DejaVu Sans Mono",
            fontsize=9.5,
            va="top",
        )
    canvas.draw()  # type: ignore[no-untyped-call]
    return np.asarray(canvas.buffer_rgba())[..., 0].copy()  # type: ignore[no-untyped-call]


def measure_dose_text(reports: int) -> tuple[float, float]:
    """CPU seconds per dose report text: (render_text, matplotlib figure), called in turn."""
    from ichkit.synth._writer import render_text

    lines = [
        "Site 1 Hospital",
        "",
        "Patient Name: DOE JANE Q",
        "Patient ID:   A00012345",
        "Accession:    ACC99887766",
        "Exam Date:    Mar 14 2019 09:26",
        "Exam Description: CT HEAD WO CONTRAST",
        "",
        "Series  Type    Scan Range    CTDIvol  DLP",
        "1       Scout   -             -        -",
        "2       Helical 145.0 mm     48.57    704.27",
        "",
        "Total Exam DLP:   704.27 mGy-cm",
        "Phantom: Head 16 cm   Revolution",
    ]
    fns = (render_text, _render_text_figure)
    total = [0.0, 0.0]
    for i in range(reports + 1):
        for j in (0, 1) if i % 2 else (1, 0):
            start = time.process_time()
            fns[j](lines, size=512)
            if i:  # the first call of each loads fonts
                total[j] += time.process_time() - start
    return total[0] / reports, total[1] / reports


def measure_phantom(size: int, exams: int, rounds: int) -> tuple[float, float]:
    """CPU seconds per exam of ``generate_exam``: (head box, whole plane), best of rounds."""
    from unittest import mock

    from ichkit.synth import _phantom

    def whole_plane(mask: object, *, align: int = 1, margin: int = 2) -> tuple[slice, slice]:
        shape = getattr(mask, "shape")  # noqa: B009
        return slice(0, shape[0]), slice(0, shape[1])

    cfg = SynthConfig(
        exams=exams + 1,
        seed=2019,
        size=size,
        sites=3,
        masks=True,
        prevalence=0.4,
        subtype_weights=(1.0, 1.0, 1.0, 1.0, 1.0),
    )
    plans = plan_dataset(cfg)
    generate_exam(cfg, plans[0])  # warm-up
    best = {True: float("inf"), False: float("inf")}
    for r in range(rounds):
        for boxed in (True, False) if r % 2 == 0 else (False, True):
            with mock.patch.object(
                _phantom, "head_box", _phantom.head_box if boxed else whole_plane
            ):
                start = time.process_time()
                for plan in plans[1:]:
                    generate_exam(cfg, plan)
                best[boxed] = min(best[boxed], (time.process_time() - start) / exams)
    return best[True], best[False]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exams-small", type=int, default=8)
    parser.add_argument("--exams-large", type=int, default=4)
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the writer and phantom tables"
    )
    parser.add_argument("--reports", type=int, default=30, help="dose reports of the text table")
    parser.add_argument("--dose-report-only", action="store_true")
    parser.add_argument("--phantom-only", action="store_true")
    parser.add_argument("--phantom-exams", type=int, default=12, help="exams of the phantom table")
    args = parser.parse_args()
    if args.phantom_only or not args.dose_report_only:
        print("| phantom (generate_exam) | exams | head box (s CPU/exam) | whole plane | ratio |")
        print("|---|---|---|---|---|")
        for size in (128, 512):
            n = args.phantom_exams if size == 128 else max(args.phantom_exams // 4, 1)
            fast, slow = measure_phantom(size, n, args.rounds)
            print(f"| {size} px, demo mix | {n} | {fast:.3f} | {slow:.3f} | {slow / fast:.2f}x |")
        if args.phantom_only:
            return
        print()
    if not args.dose_report_only:
        measure_tables(args)
    fast, slow = measure_dose_text(args.reports)
    print()
    print(
        "| dose report text, 512x512 | reports | render_text (s CPU) | matplotlib figure | ratio |"
    )
    print("|---|---|---|---|---|")
    print(f"| 14 lines | {args.reports} | {fast:.4f} | {slow:.4f} | {slow / fast:.2f}x |")


def measure_tables(args: argparse.Namespace) -> None:
    """The per-exam and writer tables."""
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
