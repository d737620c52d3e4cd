"""Checkpoints, ONNX export, and the mismatch errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ichkit.model import (
    CheckpointMismatchError,
    ModelError,
    OnnxPredictor,
    TorchPredictor,
    export_onnx,
    load_checkpoint,
    load_predictor,
    read_onnx_meta,
)


def test_onnx_equals_pytorch(tiny_run: Path, tmp_path: Path) -> None:
    onnx_path = export_onnx(tiny_run / "best.ckpt", tmp_path / "m.onnx")
    meta = read_onnx_meta(onnx_path)
    assert meta["labels"][-1] == "any" and meta["input_size"] == 32
    assert [w[0] for w in meta["windows"]] == ["brain", "subdural", "bone"]
    torch_p = load_predictor(tiny_run / "best.ckpt")
    onnx_p = load_predictor(onnx_path, threads=1)
    assert isinstance(torch_p, TorchPredictor) and isinstance(onnx_p, OnnxPredictor)
    rng = np.random.default_rng(1)
    for slices in (1, 9, 40):
        hu = rng.normal(30, 200, size=(slices, 32, 32)).astype(np.float32)
        ti, te = torch_p(hu)
        oi, oe = onnx_p(hu)
        assert ti.shape == (slices, 6)
        assert np.abs(ti - oi).max() < 1e-4 and np.abs(te - oe).max() < 1e-4


def test_onnx_with_tta_equals_pytorch(tiny_run: Path, tmp_path: Path) -> None:
    # the test-time views (tta) are part of the exported graph
    payload = torch.load(tiny_run / "best.ckpt", weights_only=True)
    payload["config"]["tta"] = "flips"
    ckpt = tmp_path / "tta.ckpt"
    torch.save(payload, ckpt)
    onnx_p = load_predictor(export_onnx(ckpt, tmp_path / "tta.onnx"), threads=1)
    torch_p, plain_p = load_predictor(ckpt), load_predictor(tiny_run / "best.ckpt")
    rng = np.random.default_rng(2)
    for slices in (1, 9, 40):
        hu = rng.normal(30, 200, size=(slices, 32, 32)).astype(np.float32)
        (ti, te), (oi, oe), (pi, _) = torch_p(hu), onnx_p(hu), plain_p(hu)
        assert np.abs(ti - oi).max() < 1e-4 and np.abs(te - oe).max() < 1e-4
        assert np.abs(ti - pi).max() > 1e-4  # the views changed the output


def test_checkpoint_records_what_it_needs(tiny_run: Path) -> None:
    ckpt = load_checkpoint(tiny_run)
    for key in ("config", "labels", "windows", "input_size", "ichkit_version", "state_dict"):
        assert key in ckpt
    assert "train_state" in load_checkpoint(tiny_run / "last.ckpt")


def test_window_and_size_mismatch(tiny_run: Path) -> None:
    with pytest.raises(
        CheckpointMismatchError,
        match=r"window set differs: the model has "
        r"\(brain 40/80, subdural 80/200, bone 600/2800\); expected "
        r"\(brain 40/80\)",
    ):
        load_predictor(tiny_run / "best.ckpt", windows=[("brain", 40, 80)])
    with pytest.raises(
        CheckpointMismatchError, match="input size differs: the model has 32 px; expected 96 px"
    ):
        load_predictor(tiny_run / "model.onnx", input_size=96)


def test_label_order_mismatch(tiny_run: Path, tmp_path: Path) -> None:
    payload = torch.load(tiny_run / "best.ckpt", weights_only=True)
    payload["labels"] = ["any", *payload["labels"][:-1]]
    bad = tmp_path / "other-order.ckpt"
    torch.save(payload, bad)
    with pytest.raises(
        CheckpointMismatchError,
        match=r"other-order.ckpt: labels: label order "
        r"differs: the model has \(any, epidural",
    ):
        load_predictor(bad)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "x.ckpt"
    torch.save({"weights": 1}, bad)
    with pytest.raises(ModelError, match="not an ichkit series-model checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(ModelError, match="model file not found"):
        load_predictor(tmp_path / "none.onnx")


def test_export_errors_name_the_file(tiny_run: Path, tmp_path: Path) -> None:
    from ichkit.model import export_onnx

    with pytest.raises(ModelError, match=r"is a folder; expected the \.onnx file to write"):
        export_onnx(tiny_run / "best.ckpt", tmp_path)
    with pytest.raises(ModelError, match=r"best\.ckpt: onnx: ONNX export \(opset 1\) failed"):
        export_onnx(tiny_run / "best.ckpt", tmp_path / "m.onnx", opset=1)
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_equals_pytorch_with_the_dilated_encoder(tiny_dataset: Path, tmp_path: Path) -> None:
    # dilated convolutions (small-dilated's last stage) go through the export too
    from ichkit.model import load_config, train_model

    cfg = load_config(
        preset="tiny",
        # 64 px: a 4 x 4 last map, so the dilated taps reach real pixels, not padding
        overrides={
            "data": str(tiny_dataset),
            "encoder": "small-dilated",
            "epochs": 1,
            "input_size": 64,
        },
    )
    train_model(cfg, out=tmp_path / "run")
    torch_p = load_predictor(tmp_path / "run" / "best.ckpt")
    onnx_p = load_predictor(export_onnx(tmp_path / "run" / "best.ckpt", tmp_path / "m.onnx"))
    hu = np.random.default_rng(3).normal(30, 200, size=(7, 64, 64)).astype(np.float32)
    (ti, te), (oi, oe) = torch_p(hu), onnx_p(hu)
    assert np.abs(ti - oi).max() < 1e-4 and np.abs(te - oe).max() < 1e-4
