"""GPU check: synthetic data, a few hundred AMP training steps on CUDA, then inference.

Usage (unattended, < 8 minutes on one H100/H200)::

    bash benchmarks/gpu_check.sh            # or: .venv/bin/python benchmarks/gpu_check.py

1. ``ichkit synth`` writes ``--exams`` exams at ``--size`` px into a temporary folder;
2. ``ichkit train`` (same code as on CPU) trains the ``--encoder`` at ``--input``
   px with AMP (``precision=auto``: bf16 on cards that support it, else fp16 +
   GradScaler), channels_last, for ``--steps`` optimiser steps; images/s per
   epoch are read from metrics.csv;
3. inference: the benchmark of ``bench_model.py`` with the trained checkpoint on
   the GPU (PyTorch) and the SEResNext101 baseline on the GPU.

``--dry-run`` runs 2 steps at tiny sizes (works on a CPU).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main() -> None:
    """Run the check; print a JSON summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exams", type=int, default=200)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--input", type=int, default=224)
    p.add_argument("--encoder", default="medium")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args()
    if a.dry_run:
        a.exams, a.size, a.input, a.encoder, a.steps, a.batch = 6, 64, 32, "tiny", 2, 2
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    summary: dict[str, object] = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
    }
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="ichkit-gpu-") as tmp:
        data, run = Path(tmp) / "synth", Path(tmp) / "run"
        t = time.perf_counter()
        _run(
            [
                py,
                "-m",
                "ichkit",
                "synth",
                str(data),
                "--exams",
                str(a.exams),
                "--size",
                str(a.size),
                "--slices",
                "32",
                "-j",
                "8",
                "--no-progress",
            ]
        )
        summary["synth_s"] = round(time.perf_counter() - t, 1)
        train_exams = int(a.exams * 0.7)
        steps_per_epoch = max(1, train_exams // a.batch)
        epochs = max(1, -(-a.steps // steps_per_epoch))
        t = time.perf_counter()
        _run(
            [
                py,
                "-m",
                "ichkit",
                "train",
                "--preset",
                "rsna",
                "--data",
                str(data),
                "--out",
                str(run),
                "--no-progress",
                "--set",
                f"encoder={a.encoder}",
                "--set",
                f"input_size={a.input}",
                "--set",
                f"batch_exams={a.batch}",
                "--set",
                f"epochs={epochs}",
                "--set",
                "precision=auto",
                "--set",
                "channels_last=true",
                "--set",
                "train_slices=32",
                "--set",
                "cache_workers=8",
                "--set",
                "workers=4",
                "--set",
                "val_fraction=0.15",
                "--set",
                "test_fraction=0.15",
            ]
        )
        summary["train_s"] = round(time.perf_counter() - t, 1)
        rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
        summary["epochs"] = len(rows)
        summary["steps"] = epochs * steps_per_epoch
        summary["images_per_s_by_epoch"] = [round(float(r["images_per_s"]), 1) for r in rows]
        summary["val_loss_by_epoch"] = [round(float(r["val_loss"]), 4) for r in rows]
        study = next((data / "dicom").glob("*/*/*"))
        t = time.perf_counter()
        _run(
            [
                py,
                "-m",
                "ichkit",
                "predict",
                str(study),
                "--model",
                str(run / "best.ckpt"),
                "--out",
                str(Path(tmp) / "preds.csv"),
            ]
        )
        summary["predict_ckpt_s"] = round(time.perf_counter() - t, 2)
        from monai.networks.nets import SEResNext101

        net = SEResNext101(spatial_dims=2, in_channels=3, num_classes=6).to(device).eval()
        x = torch.randn(32, 3, 256, 256, device=device)
        with torch.no_grad(), torch.autocast(device_type=device, enabled=device == "cuda"):
            net(x)
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(5):
                net(x)
            if device == "cuda":
                torch.cuda.synchronize()
        summary["seresnext101_32x256_s"] = round((time.perf_counter() - t) / 5, 4)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
