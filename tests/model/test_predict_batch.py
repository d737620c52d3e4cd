"""``ichkit predict`` on a batch with bad studies, left-out images and non-axial series."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from ichkit.cli import main
from ichkit.dicom import load_series
from ichkit.labels import LABELS, read_labels


def _studies(tiny_dataset: Path) -> list[Path]:
    return sorted((tiny_dataset / "dicom" / "site0").glob("P000[0-2]/*"))


def _files(study: Path) -> list[Path]:
    return sorted(p for p in study.rglob("*") if p.is_file())


def test_a_batch_goes_on_past_bad_studies_and_keeps_every_image(
    tiny_run: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, other, third = _studies(tiny_dataset)
    # a study with an extra image at a slice's position (another SOPInstanceUID)
    # and a 4-image coronal reformat as a second series
    dup = tmp_path / "dup"
    shutil.copytree(other, dup)
    files = _files(dup)
    twin = pydicom.dcmread(files[3])
    twin_of = str(twin.SOPInstanceUID)
    twin.SOPInstanceUID = generate_uid()
    twin.file_meta.MediaStorageSOPInstanceUID = twin.SOPInstanceUID
    twin.save_as(files[3].with_name("twin.dcm"))
    coronal_uid = generate_uid()
    for k, src in enumerate(files[:4]):
        ds = pydicom.dcmread(src)
        ds.SeriesInstanceUID = coronal_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        ds.ImagePositionPatient = [-16.0, -10.0 + 5.0 * k, 20.0]
        # pixels cut short: the reformat is recognised from its headers, never read
        ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
        ds.save_as(dup / f"coronal{k}.dcm")
    # a study whose pixels are all cut short, and an empty folder
    broken = tmp_path / "broken"
    shutil.copytree(third, broken)
    for path in _files(broken):
        ds = pydicom.dcmread(path)
        ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
        ds.save_as(path)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "p" / "preds.csv"
    args = [str(good), str(dup), str(broken), str(empty)]
    status = main(["predict", *args, "--model", str(tiny_run / "model.onnx"), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 3, err
    assert f"not predicted: {broken}" in err and f"not predicted: {empty}" in err
    wide = read_labels(out)
    # 8 + 8 images of the two readable studies, plus the extra one; no reformat rows
    assert len(wide) == 17 and list(wide.columns) == list(LABELS)
    np.testing.assert_array_equal(
        wide.loc[str(twin.SOPInstanceUID)].to_numpy(), wide.loc[twin_of].to_numpy()
    )
    doc = json.loads(out.with_name("exams.json").read_text())
    assert [f["path"] for f in doc["failed"]] == [str(broken), str(empty)]
    assert "none of the 8 file(s) is a readable DICOM image" in doc["failed"][0]["reason"]
    assert doc["failed"][1]["reason"] == "no DICOM series found"
    reformat = [s for s in doc["skipped"] if s.get("series_instance_uid") == coronal_uid]
    assert len(reformat) == 1 and "not axial" in reformat[0]["reason"]
    series = next(s for e in doc["exams"] for s in e["series"] if "images_left_out" in s)
    at = load_series(other).sop_instance_uids.index(twin_of)  # the slice it duplicates
    assert series["images_left_out"] == [
        {
            "sop_instance_uid": str(twin.SOPInstanceUID),
            "file": str(files[3].with_name("twin.dcm")),
            "probabilities_from": f"slice {at}",
        }
    ]


def test_only_bad_studies_is_an_error(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("not DICOM\n")
    out = tmp_path / "preds.csv"
    model = str(tiny_run / "model.onnx")
    assert main(["predict", str(tmp_path / "a"), "--model", model, "--out", str(out)]) == 2
    assert "no axial CT series could be predicted" in capsys.readouterr().err
    assert not out.exists()
    # a missing folder is caught before any work, wherever it is in the list
    assert main(["predict", str(tmp_path / "a"), "x", "--model", model, "--out", str(out)]) == 2
    assert "x: STUDY_DIR: study folder not found" in capsys.readouterr().err
    (tmp_path / "f.dcm").write_bytes(b"x")
    assert main(["predict", str(tmp_path / "f.dcm"), "--model", model, "--out", str(out)]) == 2
    assert "f.dcm: STUDY_DIR: is a file, not a study folder" in capsys.readouterr().err


def test_heatmaps_check_the_checkpoint_before_predicting(
    tiny_run: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    study = str(_studies(tiny_dataset)[0])
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(tiny_run / "model.onnx", lone / "model.onnx")
    out = lone / "preds.csv"
    args = ["predict", study, "--model", str(lone / "model.onnx"), "--out", str(out)]
    assert main([*args, "--heatmaps", str(tmp_path / "h")]) == 2
    assert "--heatmaps needs the PyTorch checkpoint" in capsys.readouterr().err
    assert not out.exists()  # failed before any inference: nothing written
    # a best.ckpt that is not the exported model (another epoch) is rejected too
    payload = torch.load(tiny_run / "best.ckpt", map_location="cpu", weights_only=True)
    payload["epoch"] = int(payload["epoch"]) + 7
    torch.save(payload, lone / "best.ckpt")
    assert main([*args, "--heatmaps", str(tmp_path / "h")]) == 2
    assert "not the model it was exported from" in capsys.readouterr().err
    assert not out.exists()


def test_an_image_without_a_usable_uid_gets_no_rows_and_is_reported(
    tiny_run: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    from ichkit.model import predict_studies

    study = tmp_path / "s"
    shutil.copytree(_studies(tiny_dataset)[0], study)
    path = _files(study)[2]
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = ""
    ds.save_as(path)
    result = predict_studies([study], tiny_run / "model.onnx", out_csv=tmp_path / "p.csv")
    assert len(read_labels(tmp_path / "p.csv")) == 7  # the other images are all written
    assert any("cannot name a submission row" in s["reason"] for s in result.skipped)
    assert not result.failed


def test_exams_json_goes_where_asked(
    tiny_run: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--exams-json`` names the per-exam JSON, so two predictions into one folder keep
    both; it may not be the submission's own path."""
    good = _studies(tiny_dataset)[0]
    model = str(tiny_run / "model.onnx")
    for name in ("a", "b"):
        out = tmp_path / f"{name}.csv"
        json_path = str(tmp_path / "json" / f"{name}.exams.json")
        args = ["predict", str(good), "--model", model, "--out", str(out)]
        status = main([*args, "--exams-json", json_path])
        assert status == 0, capsys.readouterr().err
    assert not (tmp_path / "exams.json").exists()
    for name in ("a", "b"):
        doc = json.loads((tmp_path / "json" / f"{name}.exams.json").read_text())
        assert len(doc["exams"]) == 1
    out = tmp_path / "c.csv"
    status = main(
        ["predict", str(good), "--model", model, "--out", str(out), "--exams-json", str(out)]
    )
    err = capsys.readouterr().err
    assert status == 2 and "--exams-json" in err and not out.exists()
    # a folder is refused before any work; so is --out named exams.json by default
    status = main([*args[:-2], "--out", str(out), "--exams-json", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and "is a folder" in err and not out.exists()
    clash = tmp_path / "exams.json"
    status = main([*args[:-2], "--out", str(clash)])
    err = capsys.readouterr().err
    assert status == 2 and "--out" in err and "would overwrite" in err and not clash.exists()
