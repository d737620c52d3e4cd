"""``ichkit predict`` (CSV valid for ``ichkit score``, exams.json, heatmaps) and ``evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ichkit.cli import main
from ichkit.labels import LABELS, read_labels


def test_predict_writes_a_valid_submission(
    tiny_run: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    studies = sorted((tiny_dataset / "dicom" / "site0").glob("P000[0-2]/*"))
    out = tmp_path / "preds.csv"
    status = main(
        ["predict", *map(str, studies), "--model", str(tiny_run / "model.onnx"), "--out", str(out)]
    )
    assert status == 0, capsys.readouterr().err
    wide = read_labels(out)
    assert len(wide) == 3 * 8 and list(wide.columns) == list(LABELS)
    assert ((wide >= 0) & (wide <= 1)).all().all()
    exams = json.loads((tmp_path / "exams.json").read_text())
    assert len(exams["exams"]) == 3
    series = exams["exams"][0]["series"][0]
    assert series["n_slices"] == 8 and len(series["top_slices"]) == 5
    assert set(exams["exams"][0]["probabilities"]) == set(LABELS)
    # the submission is valid for `ichkit score` against the truth of those images
    truth = read_labels(tiny_dataset / "truth.csv").loc[wide.index]
    from ichkit.labels import write_labels

    write_labels(tmp_path / "truth.csv", truth)
    capsys.readouterr()
    assert main(["score", str(out), str(tmp_path / "truth.csv"), "--json"]) == 0
    assert "0." in capsys.readouterr().out


def test_predict_checkpoint_equals_onnx_and_heatmaps(
    tiny_run: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    from ichkit.model import predict_studies

    study = tiny_dataset / "dicom" / "site0" / "P0000"
    a = predict_studies(
        [study],
        tiny_run / "model.onnx",
        out_csv=tmp_path / "a" / "p.csv",
        heatmaps=tmp_path / "heat",
        masks=tiny_dataset / "masks",
        heatmap_threshold=0.0,
    )
    b = predict_studies([study], tiny_run, out_csv=tmp_path / "b" / "p.csv")
    assert abs(a.series[0].image_probs - b.series[0].image_probs).max() < 1e-4
    assert a.heatmaps is not None and a.heatmaps["written"] == 8
    pl = a.heatmaps["peak_in_lesion"]
    assert pl["slices_with_lesion"] == 3
    assert 0 <= pl["peaks_inside"] <= pl["peaks_within_5_mm"] <= 3
    scored = [e for e in a.heatmaps["images"] if "peak_distance_mm" in e]
    assert len(scored) == 3
    assert all((e["peak_distance_mm"] == 0.0) == e["peak_in_lesion"] for e in scored)
    assert len(list((tmp_path / "heat").rglob("*.png"))) == 8


def test_a_fit_crop_model_predicts_with_its_crop(
    tiny_run: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    import numpy as np
    import torch

    from ichkit.dicom import load_series
    from ichkit.errors import CheckpointMismatchError
    from ichkit.model import export_onnx, load_predictor, predict_studies, read_onnx_meta
    from ichkit.model._checkpoint import check_compatible, model_crop
    from ichkit.model._preprocess import head_box, preprocess_volume

    payload = torch.load(tiny_run / "best.ckpt", weights_only=True)
    assert payload["crop"] == "square" and payload["config"]["crop"] == "square"
    payload["crop"] = payload["config"]["crop"] = "fit"
    ckpt = tmp_path / "best.ckpt"  # beside the ONNX file, for the heatmaps
    torch.save(payload, ckpt)
    onnx_path = export_onnx(ckpt, tmp_path / "fit.onnx")
    assert read_onnx_meta(onnx_path)["crop"] == "fit"
    predictor = load_predictor(onnx_path, threads=1)
    assert predictor.crop == "fit" and load_predictor(tiny_run / "model.onnx").crop == "square"

    study = tiny_dataset / "dicom" / "site0" / "P0000"
    got = predict_studies(
        [study],
        onnx_path,
        out_csv=tmp_path / "fit" / "p.csv",
        heatmaps=tmp_path / "heat",
        masks=tiny_dataset / "masks",
        heatmap_threshold=0.0,
    ).series[0]
    series = load_series(sorted(p for p in study.rglob("*") if p.is_file()))
    box = head_box(series.hu, crop="fit")
    assert got.box == box and box.height > box.width  # the phantom head is taller than wide
    volume, _ = preprocess_volume(series.hu, size=predictor.input_size, crop="fit")
    assert np.abs(predictor(volume)[0] - got.image_probs).max() < 1e-6
    square = predict_studies([study], tiny_run / "model.onnx", out_csv=tmp_path / "sq" / "p.csv")
    assert square.series[0].box.height == square.series[0].box.width
    assert np.abs(square.series[0].image_probs - got.image_probs).max() > 1e-4
    assert len(list((tmp_path / "heat").rglob("*.png"))) == 8  # maps go back through the box

    # resuming or checking against the other crop is refused; older files read as square
    match = "crop: head crop differs: the model has 'fit'"
    with pytest.raises(CheckpointMismatchError, match=match):
        check_compatible(payload, source=ckpt, crop="square")
    check_compatible(payload, source=ckpt, crop="fit")
    assert model_crop({k: v for k, v in payload.items() if k != "crop"}) == "square"


def test_predict_errors(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "predict",
                str(tmp_path / "nowhere"),
                "--model",
                str(tiny_run / "model.onnx"),
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 2
    )
    assert "nowhere: STUDY_DIR: study folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        main(
            [
                "predict",
                str(tmp_path / "empty"),
                "--model",
                str(tiny_run / "model.onnx"),
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 2
    )
    assert "no DICOM series found" in capsys.readouterr().err


def test_evaluate_report(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert (
        main(["evaluate", str(tiny_run), "--split", "test", "--out", str(out), "--bootstrap", "20"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "challenge metric" in printed and "report:" in printed
    for name in (
        "index.html",
        "metrics.json",
        "roc_image.png",
        "roc_exam.png",
        "calibration.png",
        "preds.csv",
        "truth.csv",
        "exams.csv",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["exams"] >= 1
    assert set(metrics["labels"]) == set(LABELS)
    # the dataset's mimics.csv lists one calcification slice per negative exam
    test_exams = pd.read_csv(out / "exams.csv")
    mm = metrics["mimics"]
    assert mm["images"] == int((test_exams["true_any"] == 0).sum()) > 0
    assert 0.0 <= mm["mean_any"] <= 1.0
    # the tiny run's validation split is empty: no threshold is chosen (not a
    # silent 0.5), so there is no false-positive rate either, and the report says so
    assert "image_operating_point" not in metrics["labels"]["any"]
    assert metrics["operating_points"] == "none: the validation split is empty"
    assert mm["false_positive_rate"] is None
    assert "Calcification mimics" in (out / "index.html").read_text()
    # the report's preds/truth score the same with `ichkit score`
    assert main(["score", str(out / "preds.csv"), str(out / "truth.csv"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    value = scored.get("score", scored.get("weighted_log_loss"))
    assert value == pytest.approx(metrics["image_log_loss"], abs=1e-5)
    assert main(["evaluate", str(tiny_run), "--split", "holdout"]) == 2
    assert "unknown split 'holdout'" in capsys.readouterr().err


def test_predict_on_synth_studies_scores(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On real ``ichkit synth`` output (with scout and dose report), every truth image gets rows."""
    synth = tmp_path / "synth"
    assert (
        main(
            [
                "synth",
                str(synth),
                "--exams",
                "2",
                "--seed",
                "4",
                "--size",
                "64",
                "--slices",
                "6",
                "--no-progress",
            ]
        )
        == 0
    )
    studies = sorted({p.parent.parent for p in (synth / "dicom").rglob("*.dcm")})
    out = tmp_path / "preds.csv"
    assert (
        main(
            [
                "predict",
                *map(str, studies),
                "--model",
                str(tiny_run / "model.onnx"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["score", str(out), str(synth / "truth.csv")]) == 0, capsys.readouterr().err


def test_gradcam_methods(tiny_run: Path) -> None:
    import numpy as np

    from ichkit.model import gradcam, model_from_checkpoint

    model, cfg, _ = model_from_checkpoint(tiny_run)
    hu = np.random.default_rng(0).normal(30.0, 20.0, (5, cfg.input_size, cfg.input_size))
    for method in ("layercam", "gradcam"):
        cams = gradcam(model, hu.astype(np.float32), [1, 3], method=method)
        assert cams.shape == (2, cfg.input_size, cfg.input_size)
        assert cams.min() >= 0.0 and cams.max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="unknown method"):
        gradcam(model, hu.astype(np.float32), [1], method="saliency")
    # with test-time views the map is still that of the series as given
    plain = gradcam(model, hu.astype(np.float32), [1, 3])
    model.tta_views = ((False, False), (True, False))
    assert np.allclose(gradcam(model, hu.astype(np.float32), [1, 3]), plain, atol=1e-5)
    assert model.tta_views == ((False, False), (True, False))


def test_mimics_table(tmp_path: Path) -> None:
    from ichkit.errors import DatasetError
    from ichkit.model._report import _mimic_images

    assert _mimic_images(tmp_path) is None  # no table: not scored
    (tmp_path / "mimics.csv").write_text("sop_instance_uid,mimic\n1.2.3,pineal\nID_ab,choroid\n")
    assert _mimic_images(tmp_path) == {"1.2.3", "ab"}
    (tmp_path / "mimics.csv").write_text("uid,mimic\n1.2.3,pineal\n")
    with pytest.raises(DatasetError, match="no 'sop_instance_uid' column") as err:
        _mimic_images(tmp_path)
    assert "mimics.csv" in str(err.value) and "columns" in str(err.value)


def test_report_auc_equals_sklearn_and_bootstrap_interval_holds_it() -> None:
    """The report's AUC (numpy) is scikit-learn's, ties included; NaN with one class."""
    import math

    import numpy as np
    from sklearn.metrics import roc_auc_score

    from ichkit.model._metrics import auc, bootstrap_ci

    rng = np.random.default_rng(3)
    y = rng.random(400) < 0.2
    score = np.round(rng.random(400) + 0.4 * y, 2)  # rounded: many ties
    assert auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert auc(y.astype(np.float32), score.astype(np.float32)) == pytest.approx(
        roc_auc_score(y, score.astype(np.float32)), abs=1e-12
    )
    assert math.isnan(auc(np.zeros(5), np.arange(5.0)))
    lo, hi = bootstrap_ci(lambda idx: auc(y[idx], score[idx]), y.size, rounds=200)
    assert lo < auc(y, score) < hi


def test_predict_with_onnx_imports_neither_torch_pandas_nor_scipy(
    tiny_run: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    """The ONNX path of ``ichkit predict`` keeps its cold start short (2-s target on 2
    cores): the submission is written without pandas, the head crop without scipy."""
    import subprocess
    import sys

    study = sorted((tiny_dataset / "dicom" / "site0").glob("P0000/*"))[0]
    out = tmp_path / "preds.csv"
    code = (
        "import sys\n"
        "from ichkit.cli import main\n"
        f"status = main(['predict', {str(study)!r}, '--model', "
        f"{str(tiny_run / 'model.onnx')!r}, '--out', {str(out)!r}])\n"
        "heavy = [m for m in ('torch', 'pandas', 'scipy', 'monai', 'matplotlib', 'sklearn')"
        " if m in sys.modules]\n"
        "print(f'STATUS={status} HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert result.stdout.strip().splitlines()[-1] == "STATUS=0 HEAVY=", result.stderr
    assert len(read_labels(out)) == 8


def test_operating_points_need_validation_positives() -> None:
    """A label with no validation positives gets no threshold (not a silent 0.5)."""
    import math

    import numpy as np

    from ichkit.model._report import compute_metrics

    rng = np.random.default_rng(4)

    def split(n: int, epidural: bool) -> tuple[list, list, list]:
        truth, probs, exams = [], [], []
        for i in range(n):
            y = np.zeros((6, 6))
            if i % 3 == 0:
                y[2:4, 1 if not epidural or i % 2 else 0] = 1.0
                y[2:4, 5] = 1.0
            p = np.clip(0.1 + 0.7 * y + rng.normal(0, 0.05, y.shape), 0.0, 1.0)
            truth.append(y)
            probs.append(p)
            exams.append(p.max(axis=0))
        return truth, probs, exams

    test = split(30, epidural=True)
    val = split(30, epidural=False)  # no epidural positives in validation
    metrics = compute_metrics(*test, val=val, rounds=20)
    epi = metrics["labels"]["epidural"]["exam_operating_point"]
    assert math.isnan(epi["threshold"]) and math.isnan(epi["sensitivity"])
    assert "no positives in the validation split" in epi["note"]
    iph = metrics["labels"]["intraparenchymal"]["exam_operating_point"]
    assert 0.0 < iph["threshold"] < 1.0 and iph["sensitivity"] >= 0.9
