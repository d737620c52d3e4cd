"""Training: overfitting a few exams, the run folder, resuming, the CLI."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ichkit.cli import main
from ichkit.model import CheckpointMismatchError, load_config, model_from_checkpoint, train_model
from ichkit.model._metrics import auc
from ichkit.model._train import load_split, predict_examples


def _fit_six_exams(
    tmp_path: Path, dataset_factory: Any, overrides: dict[str, Any]
) -> tuple[Any, list[dict[str, str]], float, float]:
    """Train on 6 tiny exams, all in train; return (config, metrics rows, image AUC, exam AUC).

    The AUCs are for ``any`` on those same training exams: this measures fitting,
    not generalising.
    """
    data = dataset_factory(tmp_path / "ds", exams=6, size=32, slices=8, seed=3)
    split = tmp_path / "split.csv"
    split.write_text("patient_id,split\n" + "".join(f"P{i:04d},train\n" for i in range(6)))
    cfg = load_config(
        preset="tiny",
        overrides={"data": str(data), "split_file": str(split), **overrides},
    )
    result = train_model(cfg, out=tmp_path / "run")
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").read_text().splitlines()))
    model, cfg2, _ = model_from_checkpoint(result.last_checkpoint)
    examples = load_split(cfg2, cache_dir=tmp_path / "run" / "cache", splits=("train",))["train"]
    preds = predict_examples(model, examples, device=model.window_low.device)
    image_truth = np.concatenate([ex.labels[:, -1] for ex in examples])
    image_any = np.concatenate([p[:, -1] for p, _ in preds])
    exam_truth = [ex.labels[:, -1].max() for ex in examples]
    exam_any = [e[-1] for _, e in preds]
    return cfg2, rows, auc(image_truth, image_any), auc(exam_truth, exam_any)


def test_overfits_a_few_exams(tmp_path: Path, dataset_factory: Any) -> None:
    _, rows, image_auc, exam_auc = _fit_six_exams(
        tmp_path, dataset_factory, {"epochs": 50, "lr": 0.01, "batch_exams": 6}
    )
    losses = [float(r["train_loss"]) for r in rows]
    assert len(rows) == 50
    assert losses[-1] < 0.5 * losses[0]
    assert exam_auc == 1.0
    assert image_auc == 1.0


def test_two_stage_fits_and_freezes_nothing_it_should_not(
    tmp_path: Path, dataset_factory: Any
) -> None:
    # Stage 1 trains the encoder on shuffled slices, stage 2 the GRU and heads on
    # frozen embeddings; together they must fit a few exams like end-to-end training.
    cfg2, rows, image_auc, exam_auc = _fit_six_exams(
        tmp_path,
        dataset_factory,
        {
            "encoder_epochs": 30,
            "slice_batch": 16,
            "negative_ratio": 0,
            "subtype_balance": 0.5,  # exercised here: rare subtypes' slices repeat
            "epochs": 40,
            "lr": 0.01,
            "batch_exams": 6,
        },
    )
    assert len(rows) == 40
    assert cfg2.encoder_epochs == 30
    assert exam_auc == 1.0
    assert image_auc > 0.95


def test_run_folder_and_resume(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = load_config(preset="tiny", overrides={"data": str(tiny_dataset), "epochs": 1})
    train_model(cfg, out=out)
    assert {"config.toml", "metrics.csv", "best.ckpt", "last.ckpt"} <= {
        p.name for p in out.iterdir()
    }
    assert load_config(out / "config.toml") == cfg
    # a row of epoch 2 written just before a crash (its last.ckpt never was):
    # the resumed run redoes epoch 2 and its row replaces that one
    from ichkit.model._train import _write_metrics_row

    _write_metrics_row(out / "metrics.csv", {"epoch": 2.0, "train_loss": 99.0})
    train_model(cfg.replace(epochs=2), out=out, resume=out)
    rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1.0", "2.0"]
    assert float(rows[1]["train_loss"]) != 99.0
    with pytest.raises(
        CheckpointMismatchError, match="input size differs: the model has 32 px; expected 48 px"
    ):
        train_model(cfg.replace(epochs=3, input_size=48), out=tmp_path / "run2", resume=out)
    assert not (tmp_path / "run2").exists()  # refused before a folder or cache is made
    with pytest.raises(CheckpointMismatchError, match="window set differs"):
        train_model(
            cfg.replace(epochs=3, windows=("brain",)),
            out=tmp_path / "run3",
            resume=out / "last.ckpt",
        )
    # another architecture is refused before the folder or the cache is made too
    with pytest.raises(
        CheckpointMismatchError, match=r"cannot resume: the checkpoint was trained with hidden 16"
    ):
        train_model(cfg.replace(epochs=3, hidden=24), out=tmp_path / "run4", resume=out)
    with pytest.raises(CheckpointMismatchError, match=r"encoder_epochs 0 \(config: 2\)"):
        train_model(cfg.replace(epochs=3, encoder_epochs=2), out=tmp_path / "run5", resume=out)
    assert not (tmp_path / "run4").exists() and not (tmp_path / "run5").exists()


def test_cli_train_and_bad_setting(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli-run"
    status = main(
        [
            "train",
            "--preset",
            "tiny",
            "--data",
            str(tiny_dataset),
            "--out",
            str(out),
            "--set",
            "epochs=1",
            "--no-progress",
        ]
    )
    assert status == 0
    assert "checkpoint:" in capsys.readouterr().out
    assert (
        main(
            [
                "train",
                "--preset",
                "tiny",
                "--data",
                str(tiny_dataset),
                "--out",
                str(out),
                "--set",
                "epochs=zero",
            ]
        )
        == 2
    )
    assert "epochs = 'zero' is not an integer" in capsys.readouterr().err
    assert (
        main(["train", "--preset", "tiny", "--data", str(tmp_path / "none"), "--out", str(out)])
        == 2
    )
    assert "dataset folder not found" in capsys.readouterr().err
    # An unknown encoder fails before any data is read or anything is written.
    fresh = tmp_path / "bad-encoder"
    argv = ["train", "--preset", "tiny", "--data", str(tiny_dataset), "--out", str(fresh)]
    assert main([*argv, "--set", "encoder=small-fin"]) == 2
    assert "encoder: unknown encoder 'small-fin'; expected one of" in capsys.readouterr().err
    assert not fresh.exists()


def test_subtype_balance_repeats_rare_subtype_slices() -> None:
    from types import SimpleNamespace

    from ichkit.model._train import _subtype_repeats

    def ex(rows: list[list[int]]) -> Any:
        return SimpleNamespace(labels=np.asarray(rows, dtype=np.float32))

    # 8 subdural slices, 2 epidural slices (one of them also subdural), 1 negative
    sdh = [0, 0, 0, 0, 1, 1]
    edh = [1, 0, 0, 0, 0, 1]
    both = [1, 0, 0, 0, 1, 1]
    neg = [0, 0, 0, 0, 0, 0]
    train = [ex([sdh] * 7 + [both]), ex([edh, neg])]
    assert _subtype_repeats(train, 0.0) is None  # type: ignore[arg-type]
    rep = _subtype_repeats(train, 0.5)  # type: ignore[arg-type]
    assert rep is not None
    assert rep[0].tolist() == [1.0] * 7 + [2.0]  # (8 / 2) ** 0.5 for the epidural one
    assert rep[1].tolist() == [2.0, 1.0]
    capped = _subtype_repeats(train, 1.0)  # type: ignore[arg-type]
    assert capped is not None and capped[1].tolist() == [4.0, 1.0]


def test_stage1_neighbour_rows() -> None:
    # Stage 1 loads, augments and windows only the picked slices and their neighbours.
    from types import SimpleNamespace

    from ichkit.model._train import _neighbour_rows

    def ex(n: int) -> Any:
        return SimpleNamespace(n_slices=n)  # the slices the model reads (Example.n_slices)

    train = [ex(6), ex(3)]
    rows = _neighbour_rows(train, [(0, 0), (0, 4), (1, 2)], context=1)  # type: ignore[arg-type]
    needed0, at0 = rows[0]
    assert needed0.tolist() == [0, 1, 3, 4, 5]  # slice 2 is nobody's neighbour
    assert needed0[at0[0]].tolist() == [0, 0, 1]  # the edge repeats
    assert needed0[at0[4]].tolist() == [3, 4, 5]
    needed1, at1 = rows[1]
    assert needed1[at1[2]].tolist() == [1, 2, 2]


def test_stage1_loader_processes_train_the_same_model(tiny_dataset: Path, tmp_path: Path) -> None:
    # Stage 1 can load and augment its chunks in DataLoader processes while the encoder
    # trains; each chunk is seeded on its own, so the weights are those of workers=0.
    import torch

    def stage1(workers: int, out: Path) -> dict[str, Any]:
        cfg = load_config(
            preset="tiny",
            overrides={
                "data": str(tiny_dataset),
                "precision": "fp32",
                "augment": True,
                "encoder_epochs": 2,
                "slice_batch": 8,
                "negative_ratio": 1,
                "epochs": 1,
                "workers": workers,
                "cache_dir": str(tmp_path / "cache"),
            },
        )
        result = train_model(cfg, out=out)
        state: dict[str, Any] = torch.load(result.last_checkpoint, weights_only=True)["state_dict"]
        return state

    inline = stage1(0, tmp_path / "w0")
    loaded = stage1(2, tmp_path / "w2")
    encoder = [k for k in inline if k.startswith("encoder.") and inline[k].is_floating_point()]
    assert encoder
    for k in encoder:
        assert torch.equal(inline[k], loaded[k]), k


def test_compile_in_two_stage_training_is_ignored_with_a_warning(
    tiny_dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # torch.compile applies to end-to-end training; the two-stage presets train the
    # encoder eagerly and the heads on stored embeddings, so the setting is refused aloud.
    cfg = load_config(
        preset="tiny",
        overrides={
            "data": str(tiny_dataset),
            "precision": "fp32",
            "encoder_epochs": 1,
            "slice_batch": 8,
            "epochs": 1,
            "compile": True,
            "export_onnx": False,
            "cache_dir": str(tmp_path / "cache"),
        },
    )
    with caplog.at_level("WARNING", logger="ichkit"):
        result = train_model(cfg, out=tmp_path / "run")
    assert result.last_checkpoint.exists()
    assert any(
        "compile=true applies to end-to-end training only" in r.message for r in caplog.records
    )


def test_ddp_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime

    from ichkit.errors import ConfigError
    from ichkit.model._train import _dist_timeout

    monkeypatch.delenv("ICHKIT_DIST_TIMEOUT_S", raising=False)
    assert _dist_timeout() == datetime.timedelta(hours=6)
    monkeypatch.setenv("ICHKIT_DIST_TIMEOUT_S", "90")
    assert _dist_timeout() == datetime.timedelta(seconds=90)
    for bad in ("soon", "-5", "nan"):
        monkeypatch.setenv("ICHKIT_DIST_TIMEOUT_S", bad)
        with pytest.raises(ConfigError, match="ICHKIT_DIST_TIMEOUT_S") as err:
            _dist_timeout()
        assert bad in str(err.value)
