"""Benchmark the dataset side: ingest (vs a stat walk and a plain pydicom loop), split, stats.

Usage::

    .venv/bin/python benchmarks/bench_dataset.py [--files 2000] [--exams 25000] [--workers 0]

Ingest is measured on uncompressed 512 x 512 CT slices written once into
``.bench/dataset/dicom`` (kept between runs), page cache warm, against two
baselines on the same tree in the same run: ``os.scandir`` + ``stat`` (the
floor of any walk) and a plain ``pydicom.dcmread(stop_before_pixels=True)``
loop. Split and statistics are measured on a synthetic catalog of RSNA size
(25,000 exams, ~874,000 images; rows only, no pixels).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".bench" / "dataset"


def write_tree(folder: Path, n_files: int, per_series: int = 100) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    stamp = folder / ".complete"
    if stamp.exists() and stamp.read_text() == str(n_files):
        return
    if folder.exists():
        shutil.rmtree(folder)
    pixels = (np.arange(512 * 512, dtype=np.int16) % 2000 - 1000).reshape(512, 512).tobytes()
    for i in range(n_files):
        s, k = divmod(i, per_series)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["sop", str(i)])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.PatientID = f"BENCH{s:04d}"
        ds.StudyInstanceUID = generate_uid(entropy_srcs=["study", str(s)])
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series", str(s)])
        ds.SeriesDescription = "HEAD WO"
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = ["-125", "-125", f"{5.0 * k:.1f}"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.PixelSpacing = ["0.488281", "0.488281"]
        ds.SliceThickness = "5"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = 512
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "1"
        ds.PixelData = pixels
        path = folder / f"s{s:04d}" / f"{k:04d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
    stamp.write_text(str(n_files))


def timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()  # type: ignore[operator]
    return time.perf_counter() - start, result


def bench_ingest(n_files: int, workers: int) -> dict[str, object]:
    import pydicom

    from ichkit.catalog import IngestConfig, ingest, open_catalog, walk_files

    tree = BENCH / "dicom"
    write_tree(tree, n_files)
    files = [p for p, _, _ in walk_files(tree)]
    for p in files:  # warm the page cache: every method then reads from memory
        with open(p, "rb") as fh:
            while fh.read(1 << 20):
                pass
    out: dict[str, object] = {"files": len(files), "cpus": os.cpu_count()}
    t, _ = timed(lambda: sum(1 for _ in walk_files(tree)))
    out["stat_walk_files_per_s"] = len(files) / t

    def dcmread_loop() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for p in files:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
                _ = (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.ImagePositionPatient)

    t, _ = timed(dcmread_loop)
    out["pydicom_loop_files_per_s"] = len(files) / t
    for name, config in (
        ("ingest_1_worker_sha256", IngestConfig(workers=1)),
        ("ingest_1_worker_no_checksum", IngestConfig(workers=1, checksum="none")),
        (f"ingest_{workers or os.cpu_count()}_workers_sha256", IngestConfig(workers=workers)),
    ):
        db = BENCH / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        engine = open_catalog(f"sqlite:///{db}")
        t, report = timed(lambda e=engine, c=config: ingest(e, tree, site="bench", config=c))
        out[f"{name}_files_per_s"] = report.added / t  # type: ignore[attr-defined]
        t2, again = timed(lambda e=engine, c=config: ingest(e, tree, site="bench", config=c))
        out[f"{name}_rerun_files_per_s"] = again.seen / t2  # type: ignore[attr-defined]
    return out


def bench_catalog(exams: int) -> dict[str, object]:
    from ichkit.catalog import SyntheticCatalogConfig, open_catalog, populate_synthetic
    from ichkit.curate import SplitConfig, make_split, write_stats

    db = BENCH / f"synthetic-{exams}.db"
    fresh = not db.exists()
    engine = open_catalog(f"sqlite:///{db}")
    out: dict[str, object] = {"exams": exams}
    if fresh:
        t, images = timed(
            lambda: populate_synthetic(engine, SyntheticCatalogConfig(exams=exams, sites=5))
        )
        out["populate_s"] = t
        out["images"] = images
    else:
        from sqlalchemy import func, select

        from ichkit.catalog import Instance

        with engine.connect() as c:
            out["images"] = c.execute(select(func.count()).select_from(Instance)).scalar_one()
    t, result = timed(lambda: make_split(engine, SplitConfig(test=0.2, val=0.1, seed=0)))
    out["split_s"] = t
    t, _ = timed(
        lambda: make_split(
            engine, SplitConfig(test=0.2, val=0.1, seed=0, balance_positive=0.5, name="bal")
        )
    )
    out["split_balanced_s"] = t
    t, _ = timed(lambda: write_stats(engine, BENCH / "stats", split="default"))
    out["stats_s"] = t
    out["patients"] = len(result.assignment)  # type: ignore[attr-defined]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="512x512 files for ingest")
    parser.add_argument("--exams", type=int, default=25_000, help="exams of the synthetic catalog")
    parser.add_argument("--workers", type=int, default=0, help="ingest workers (0: all CPUs)")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-catalog", action="store_true")
    args = parser.parse_args(argv)
    BENCH.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {}
    if not args.skip_ingest:
        results["ingest"] = bench_ingest(args.files, args.workers)
    if not args.skip_catalog:
        results["catalog"] = bench_catalog(args.exams)
    json.dump(results, sys.stdout, indent=2, default=float)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
