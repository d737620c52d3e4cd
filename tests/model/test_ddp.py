"""DDP: 2 gloo processes under a real torchrun give the same model as 1 process."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ichkit.model import load_config, train_model

SETTINGS = [
    # fp32: with precision=auto a CPU with native bf16 (AVX-512 BF16) autocasts to bf16,
    # whose rounding (~3 digits) swamps the comparison of 1 vs 2 processes
    "precision=fp32",
    # one epoch = 2 optimiser steps: each further step lets Adam turn more float
    # rounding into whole steps (see below) and the losses drift apart with it
    "epochs=1",
    "batch_exams=4",
    "augment=true",
    "train_slices=6",
    "seed=5",
    "val_fraction=0.3",
]


@pytest.mark.parametrize(
    "extra",
    [[], ["encoder_epochs=1", "slice_batch=8", "negative_ratio=1"]],
    ids=["end-to-end", "two-stage"],
)
def test_torchrun_two_processes_equal_one(
    tiny_dataset: Path, tmp_path: Path, extra: list[str]
) -> None:
    settings = [*SETTINGS, *extra]
    cfg = load_config(preset="tiny", overrides=[f"data={tiny_dataset}", *settings])
    single = train_model(cfg, out=tmp_path / "one")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "ichkit.model.train",
        "--preset",
        "tiny",
        "--data",
        str(tiny_dataset),
        "--out",
        str(tmp_path / "two"),
        "--no-progress",
        "--set",
        f"cache_dir={tmp_path / 'one' / 'cache'}",
    ]
    for item in settings:
        cmd += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    # rank 0's summary, written before the worker's os._exit, is not lost
    assert f"checkpoint: {tmp_path / 'two' / 'best.ckpt'}" in result.stdout
    one = torch.load(single.last_checkpoint, weights_only=True)
    two = torch.load(tmp_path / "two" / "last.ckpt", weights_only=True)
    assert two["config"]["batch_exams"] == 4
    # Same batches, same augmentation, BatchNorm statistics over the global batch: only
    # float summation order differs (all-reduce vs one sum). Adam's first steps move
    # every weight by about +-lr whatever the size of its gradient, so the few weights
    # whose gradient is at the level of float rounding may step the other way (2 x lr):
    # on a 2-core AVX-512 machine 4 of 87,354 did. A DDP error (unsynchronised gradients
    # or BatchNorm statistics) changes a large share of the weights.
    moved = total = 0
    for k, w1 in one["state_dict"].items():
        if not w1.is_floating_point():
            continue
        diff = (w1.float() - two["state_dict"][k].float()).abs()
        moved += int((diff > 1e-4).sum())
        total += diff.numel()
    assert moved <= 1e-3 * total, (moved, total)
    rows1 = list(csv.DictReader((tmp_path / "one" / "metrics.csv").read_text().splitlines()))
    rows2 = list(csv.DictReader((tmp_path / "two" / "metrics.csv").read_text().splitlines()))
    for r1, r2 in zip(rows1, rows2, strict=True):
        assert float(r1["train_loss"]) == pytest.approx(float(r2["train_loss"]), rel=1e-4)
        assert float(r1["val_loss"]) == pytest.approx(float(r2["val_loss"]), rel=1e-4)


@pytest.mark.parametrize("world", ["1", "2"])
def test_worker_exit_keeps_status_and_output(world: str) -> None:
    # a torchrun worker ends with os._exit (no interpreter shutdown under live gloo
    # threads); the status and what was printed or logged must still come out
    code = (
        "import logging, sys\n"
        "from ichkit.model.train import exit_worker\n"
        "logging.basicConfig(stream=sys.stderr)\n"
        "print('summary', end='')\n"
        "logging.getLogger('x').warning('logged')\n"
        "exit_worker(3)\n"
    )
    env = {**os.environ, "WORLD_SIZE": world}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 3
    assert result.stdout == "summary"
    assert "logged" in result.stderr
