"""GPU check: synthetic data, a few hundred AMP training steps on CUDA, then inference.

Usage (unattended; its time on an H100/H200 is not yet measured, and
``gpu_check.sh`` stops it at 420 s)::

    .venv/bin/python benchmarks/gpu_wheels.py   # here, once: wheels the GPU machine lacks, in .whl/
    bash benchmarks/gpu_check.sh      # there (installs .whl/ when present)

1. ``ichkit synth`` writes ``--exams`` exams at ``--size`` px into a temporary folder;
2. ``ichkit train`` (same code as on CPU) trains the ``--encoder`` at ``--input``
   px with AMP (``precision=auto``: bf16 on cards that support it, else fp16 +
   GradScaler), channels_last, for about ``--steps`` optimiser steps; images/s
   per epoch are read from metrics.csv;
3. inference, the benchmark of ``bench_model.py`` on the GPU: one fresh
   32-slice study at ``--infer-size`` px (512, as the CPU target's study) from
   DICOM files to probabilities with the trained checkpoint (PyTorch on CUDA,
   warm, median of ``--repeat`` passes: scan, decode, preprocess, model), and,
   as the named baseline, the RSNA 2019 1st-place encoder (MONAI SEResNext101
   at 256 px, random weights, one model, no TTA) on the same 32 slices in
   fp32, as ``ichkit predict`` runs a checkpoint (and with autocast, for
   reference); then the whole ``ichkit predict`` command in a fresh process.
   The model stage runs the checkpoint's test-time views (the ``rsna`` preset:
   ``tta=lr``, 2 views) at ``--input`` px; the summary records them and
   whether CUDA may use TF32 for fp32 work;
4. two-stage training (the ``demo`` preset's path: stage 1 on slices, frozen
   embeddings, stage 2), 2 + 2 epochs, to check that path on the device.

After each phase it prints the JSON summary so far (and writes it to
``--json``), so a run stopped by its time limit still reports what it
measured. ``--dry-run`` runs 2 steps at tiny sizes (works on a CPU).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def _synth(py: str, out: Path, exams: int, size: int, seed: int, workers: int) -> None:
    _run(
        [
            py,
            "-m",
            "ichkit",
            "synth",
            str(out),
            "--exams",
            str(exams),
            "--size",
            str(size),
            "--slices",
            "32",
            "--seed",
            str(seed),
            "-j",
            str(workers),
            "--no-progress",
        ]
    )


def _seresnext(slices: int, device: str, repeat: int, amp: bool) -> float:
    """Median seconds of SEResNext101's forward on ``slices`` 256-px slices."""
    import torch
    from monai.networks.nets import SEResNext101

    net = SEResNext101(spatial_dims=2, in_channels=3, num_classes=6, pretrained=False)
    net = net.to(device).eval()
    x = torch.randn(slices, 3, 256, 256, device=device)
    times = []
    with torch.no_grad(), torch.autocast(device_type=device, enabled=amp):
        for _ in range(repeat + 1):
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            net(x)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def main() -> None:
    """Run the check; print a JSON summary (written after every phase with ``--json``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exams", type=int, default=200, help="synthetic training exams")
    p.add_argument("--size", type=int, default=256, help="px of the training exams")
    p.add_argument("--input", type=int, default=224, help="model input px")
    p.add_argument("--encoder", default="medium", help="registered slice encoder")
    p.add_argument("--steps", type=int, default=300, help="optimiser steps (about)")
    p.add_argument("--batch", type=int, default=8, help="series per step")
    p.add_argument("--infer-size", type=int, default=512, help="px of the inference study")
    p.add_argument("--repeat", type=int, default=5, help="timed inference passes")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes")
    p.add_argument("--json", type=Path, help="also write the summary here (after every phase)")
    p.add_argument("--dry-run", action="store_true", help="2 steps at tiny sizes (a CPU will do)")
    a = p.parse_args()
    if a.dry_run:
        a.exams, a.size, a.input, a.encoder, a.steps, a.batch = 6, 64, 32, "tiny", 2, 2
        a.infer_size, a.repeat, a.workers = 64, 1, 2
    import torch

    from ichkit.model import load_config

    sys.path.insert(0, str(HERE))
    from bench_model import _time_predict

    device = "cuda" if torch.cuda.is_available() else "cpu"
    summary: dict[str, object] = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        # fp32 matrix products and convolutions may run in TF32 on CUDA
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
    }

    def report(phase: str) -> None:
        summary["phases_done"] = [*summary.get("phases_done", []), phase]  # type: ignore[list-item]
        text = json.dumps(summary, indent=2)
        print(text, flush=True)
        if a.json:
            a.json.write_text(text + "\n")

    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="ichkit-gpu-") as tmp:
        data, run, fresh = Path(tmp) / "synth", Path(tmp) / "run", Path(tmp) / "fresh"
        t = time.perf_counter()
        _synth(py, data, a.exams, a.size, seed=2019, workers=a.workers)
        summary["synth_s"] = round(time.perf_counter() - t, 1)

        # 1. end-to-end AMP training (the rsna preset)
        train_exams = int(a.exams * 0.7)
        steps_per_epoch = max(1, train_exams // a.batch)
        epochs = max(1, -(-a.steps // steps_per_epoch))
        sets = {
            "encoder": a.encoder,
            "input_size": a.input,
            "batch_exams": a.batch,
            "epochs": epochs,
            "precision": "auto",
            "channels_last": "true",
            "train_slices": 32,
            "cache_workers": a.workers,
            "workers": min(4, a.workers),
            "val_fraction": 0.15,
            "test_fraction": 0.15,
            "export_onnx": "false",
        }
        t = time.perf_counter()
        _run(_train_cmd(py, "rsna", data, run, sets))
        summary["train_s"] = round(time.perf_counter() - t, 1)
        rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
        summary["epochs"] = len(rows)
        summary["steps_planned"] = epochs * steps_per_epoch  # the split is by patient: about
        summary["images_per_s_by_epoch"] = [round(float(r["images_per_s"]), 1) for r in rows]
        summary["val_loss_by_epoch"] = [round(float(r["val_loss"]), 4) for r in rows]
        report("train")

        # 2. inference: a study the model never saw, from DICOM files to probabilities
        _synth(py, fresh, 1, a.infer_size, seed=4242, workers=1)
        # the axial series' folder (the study also holds a scout and a dose report)
        study = max((fresh / "dicom").glob("*/*/*/*"), key=lambda d: len(list(d.iterdir())))
        r = _time_predict(run / "best.ckpt", study, os.cpu_count() or 1, a.repeat)
        # the views the model stage runs, from the run's resolved config (not the checkpoint
        # again: _time_predict has loaded it)
        summary["infer_tta"] = load_config(run / "config.toml").tta
        summary["infer_study"] = f"{int(r['slices'])} slices of {int(r['rows'])} px"
        for k in ("scan", "decode", "preprocess", "model", "total", "first_total"):
            summary[f"infer_{k}_s"] = round(r[k], 4)
        # fp32 as ichkit predict runs a checkpoint; with autocast for reference
        n_slices = 2 if a.dry_run else int(r["slices"])
        s = _seresnext(n_slices, device, a.repeat, amp=False)
        summary["seresnext101_256_fp32_s"] = round(s, 4)
        summary["seresnext101_over_ichkit_model"] = round(s / r["model"], 1)
        summary["seresnext101_over_ichkit_total"] = round(s / r["total"], 2)
        if device == "cuda":
            s_amp = _seresnext(n_slices, device, a.repeat, amp=True)
            summary["seresnext101_256_autocast_s"] = round(s_amp, 4)
        t = time.perf_counter()
        predict = [py, "-m", "ichkit", "predict", str(study), "--model", str(run / "best.ckpt")]
        _run([*predict, "--out", str(Path(tmp) / "preds.csv")])
        summary["predict_cli_s"] = round(time.perf_counter() - t, 2)
        report("inference")

        # 3. the two-stage path of the demo and long presets on this device, briefly
        two = {
            "input_size": min(a.input, 128),
            "encoder_epochs": 2,
            "epochs": 2,
            "cache_workers": a.workers,
            "val_fraction": 0.15,
            "test_fraction": 0.15,
            "export_onnx": "false",
        }
        t = time.perf_counter()
        _run(_train_cmd(py, "demo", data, Path(tmp) / "run2", two))
        summary["two_stage_s"] = round(time.perf_counter() - t, 1)
        report("two-stage")


def _train_cmd(py: str, preset: str, data: Path, out: Path, sets: dict[str, object]) -> list[str]:
    cmd = [py, "-m", "ichkit", "train", "--preset", preset, "--data", str(data)]
    cmd += ["--out", str(out), "--no-progress"]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    return cmd


if __name__ == "__main__":
    main()
