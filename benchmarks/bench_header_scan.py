"""Benchmark: ichkit's header scan (``ichkit dicom ls``) vs a plain ``pydicom.dcmread`` loop.

Makes a folder of uncompressed 512x512 CT slices (copies of the real
rsna-series-b slices with new UIDs, one new series per 36 files) or takes
``--dir``, warms the page cache, then times in the same run, best of
``--repeat`` alternating rounds:

- ``ichkit``: :func:`ichkit.dicom.scan_series` (walk, header read, grouping,
  per-series geometry and findings);
- ``dcmread``: ``for f in files: pydicom.dcmread(f)`` (full read, no decoding);
- ``dcmread-header``: ``dcmread(f, stop_before_pixels=True)`` plus reading
  the same fields through pydicom attributes (an informed baseline).

Usage::

    .venv/bin/python benchmarks/bench_header_scan.py --files 3000
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "realdata" / "rsna-series-b"


def make_files(folder: Path, n: int) -> list[Path]:
    """Write ``n`` copies of rsna-series-b slices with fresh UIDs into ``folder``."""
    import pydicom
    from pydicom.uid import generate_uid

    if not SOURCE.is_dir():
        sys.exit(f"{SOURCE} is absent: pass --dir with uncompressed CT files instead")
    sources = [pydicom.dcmread(p) for p in sorted(SOURCE.glob("*.dcm"))]
    paths = []
    series_uid = ""
    for i in range(n):
        ds = sources[i % len(sources)]
        if i % len(sources) == 0:
            series_uid = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
        ds.SeriesInstanceUID = series_uid
        ds.StudyInstanceUID = series_uid + ".1"
        ds.SOPInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = folder / f"ID_{i:07d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def run_ichkit(folder: Path, files: list[Path], workers: int) -> int:
    from ichkit.dicom import scan_series

    result = scan_series(folder, workers=workers)
    return sum(r.n_files for r in result.series) + len(result.unreadable)


def run_dcmread(folder: Path, files: list[Path], workers: int) -> int:
    import pydicom

    for path in files:
        pydicom.dcmread(path)
    return len(files)


def run_dcmread_header(folder: Path, files: list[Path], workers: int) -> int:
    import pydicom

    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        _ = (
            ds.SeriesInstanceUID,
            ds.StudyInstanceUID,
            ds.PatientID,
            ds.Modality,
            ds.ImagePositionPatient,
            ds.ImageOrientationPatient,
            ds.Rows,
            ds.Columns,
            ds.get("PixelSpacing"),
        )
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="folder of DICOM files (default: generate)")
    parser.add_argument("--files", type=int, default=3000, help="files to generate")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument("--workers", type=int, default=1, help="ichkit header processes")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the baselines read RSNA-style data; keep output clean

    tmp = None
    if args.dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="ichkit-bench-"))
        print(f"writing {args.files} files to {tmp} ...", flush=True)
        make_files(tmp, args.files)
        folder = tmp
    else:
        folder = args.dir
    try:
        from ichkit.dicom import iter_files

        files = list(iter_files(folder))
        size_mb = sum(os.path.getsize(p) for p in files) / 1e6
        for path in files:  # warm the page cache so both methods read from memory
            with open(path, "rb") as fp:
                while fp.read(1 << 20):
                    pass
        methods: dict[str, Callable[[Path, list[Path], int], int]] = {
            "ichkit": run_ichkit,
            "dcmread": run_dcmread,
            "dcmread-header": run_dcmread_header,
        }
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            for name, fn in methods.items():
                start = time.perf_counter()
                count = fn(folder, files, args.workers)
                elapsed = time.perf_counter() - start
                if count != len(files):
                    sys.exit(f"{name} saw {count} files, expected {len(files)}")
                best[name] = min(best.get(name, float("inf")), elapsed)
        rate = {name: len(files) / t for name, t in best.items()}
        print(
            f"{len(files)} files, {size_mb:.0f} MB, best of {args.repeat}, "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
        )
        for name in methods:
            print(f"  {name:15s} {rate[name]:10.0f} files/s  ({best[name]:.3f} s)")
        ratio = rate["ichkit"] / rate["dcmread"]
        ratio_h = rate["ichkit"] / rate["dcmread-header"]
        print(f"  ratio ichkit / dcmread: {ratio:.1f}x; ichkit / dcmread-header: {ratio_h:.1f}x")
        print("RESULTS.md line:")
        print(
            f"| {len(files)} uncompressed 512x512 CT files (rsna-series-b copies) "
            f"| workers={args.workers} | ichkit {rate['ichkit']:.0f} files/s "
            f"| dcmread {rate['dcmread']:.0f} files/s | {ratio:.1f}x "
            f"| dcmread-header {rate['dcmread-header']:.0f} files/s | {ratio_h:.1f}x |"
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
