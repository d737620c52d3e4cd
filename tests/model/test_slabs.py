"""Thin-slice series read as thick slabs (ichkit.model._slabs and ichkit predict)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ichkit.model._slabs import slab_index, slab_mean

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"


def test_slab_index_groups_thin_slices() -> None:
    pos = 0.625 * np.arange(240) - 80.0  # 150 mm of 0.625 mm slices
    slabs = slab_index(pos, 5.0)
    assert slabs is not None
    idx = slabs.index
    assert slabs.spacing_mm == pytest.approx(0.625) and slabs.thickness_mm == pytest.approx(5.0)
    assert idx.max() == 29 and np.array_equal(np.bincount(idx), np.full(30, 8))
    assert np.all(np.diff(idx) >= 0)
    # 2.5 mm slices (under 5 / 1.5 mm apart): pairs
    pairs = slab_index(2.5 * np.arange(12), 5.0)
    assert pairs is not None and np.array_equal(pairs.index, np.repeat(np.arange(6), 2))
    # 100 mm of 0.7 mm slices: 20 slabs of 5.04 mm (the length cut evenly)
    odd = slab_index(0.7 * np.arange(144), 5.0)
    assert odd is not None and odd.index.max() == 19
    assert odd.thickness_mm == pytest.approx(144 * 0.7 / 20)


@pytest.mark.parametrize(
    ("positions", "slab_mm"),
    [
        (5.0 * np.arange(30), 5.0),  # already at the model's thickness
        (3.5 * np.arange(30), 5.0),  # 3.5 * 1.5 > 5: not thin enough to reformat
        (5.0 / 1.5 * np.arange(30), 5.0),  # at the ratio exactly: "under" it is not
        (0.625 * np.arange(30), None),  # the model records no thickness
        (0.625 * np.arange(30), float("nan")),
        (0.625 * np.arange(30), 0.0),  # switched off
        (np.array([1.0]), 5.0),  # one slice
        (np.array([0.0, np.nan, 1.0]), 5.0),  # unknown positions
    ],
)
def test_slab_index_leaves_other_series_alone(positions: np.ndarray, slab_mm: float | None) -> None:
    assert slab_index(positions, slab_mm) is None


def test_slab_index_with_missing_slices_skips_no_number() -> None:
    pos = np.delete(0.625 * np.arange(160), np.arange(40, 60))  # a 12.5 mm hole
    slabs = slab_index(pos, 5.0)
    assert slabs is not None and len(slabs.index) == len(pos)
    idx = slabs.index
    assert np.array_equal(np.unique(idx), np.arange(idx.max() + 1))  # no empty slab
    assert np.all(np.diff(idx) <= 1) and idx[0] == 0
    # every slab spans at most 5 mm of positions
    for k in range(idx.max() + 1):
        span = pos[idx == k]
        assert span.max() - span.min() < 5.0


def test_slab_index_with_mixed_spacing_keeps_thick_slices_apart() -> None:
    """A series of 5 mm slices, then 0.625 mm ones (median 0.625): no slab
    averages two of the 5 mm slices, and none spans more than 5 mm."""
    pos = np.r_[5.0 * np.arange(10), 45.0 + 0.625 * np.arange(1, 21)]
    slabs = slab_index(pos, 5.0)
    assert slabs is not None
    assert len(set(slabs.index[:10].tolist())) == 10
    for k in range(int(slabs.index.max()) + 1):
        span = pos[slabs.index == k]
        assert span.max() - span.min() < 5.0


def test_training_slice_mm_is_the_median_of_known_spacings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from ichkit.model._cache import CachedSeries
    from ichkit.model._preprocess import CropBox
    from ichkit.model._train import Example, training_slice_mm

    def example(mm: float) -> Example:
        box = CropBox(row0=0, col0=0, height=8, width=8, rows=8, cols=8)
        series = CachedSeries("k", Path("k.npy"), "s", "st", "p", ("a",), box, slice_mm=mm)
        return Example(series, np.zeros((1, 6), dtype=np.float32))

    assert training_slice_mm([example(5.0), example(4.5), example(0.625)]) == 4.5
    with caplog.at_level("WARNING"):
        assert training_slice_mm([example(5.0), example(float("nan"))]) == 5.0
    assert "1 of 2 training series is unknown" in caplog.text
    assert training_slice_mm([example(float("nan"))]) is None


def test_cache_sidecar_records_the_spacing(tiny_run: Path) -> None:
    """The cache sidecar holds each series' spacing; a sidecar of an older
    ichkit (without it) is still read, with the spacing unknown."""
    import json as _json

    from ichkit.model._cache import _read_meta

    sidecars = sorted((tiny_run / "cache").glob("v*-32px/*.json"))
    assert sidecars
    doc = _json.loads(sidecars[0].read_text())
    assert doc["slice_mm"] == pytest.approx(5.0)
    folder, key = sidecars[0].parent, sidecars[0].stem
    assert _read_meta(folder, key).slice_mm == pytest.approx(5.0)  # type: ignore[union-attr]
    del doc["slice_mm"]
    sidecars[0].write_text(_json.dumps(doc))
    try:
        old = _read_meta(folder, key)
        assert old is not None and np.isnan(old.slice_mm)
    finally:
        doc["slice_mm"] = 5.0
        sidecars[0].write_text(_json.dumps(doc))


def test_slab_mean_averages_each_slab() -> None:
    rng = np.random.default_rng(0)
    hu = rng.integers(-1000, 1500, size=(10, 4, 5)).astype(np.int16)
    idx = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    got = slab_mean(hu, idx)
    assert got.dtype == np.int16 and got.shape == (4, 4, 5)
    for k in range(4):
        want = np.rint(hu[idx == k].astype(np.float64).mean(axis=0))
        assert np.array_equal(got[k], want.astype(np.int16))
    with pytest.raises(ValueError, match="one slab per slice"):
        slab_mean(hu, idx[:-1])
    with pytest.raises(ValueError, match="rise by 0 or 1"):
        slab_mean(hu, np.array([0, 0, 2, 2, 2, 3, 3, 3, 3, 3]))


def test_model_files_record_the_training_slice_spacing(tiny_run: Path) -> None:
    from ichkit.model._infer import load_predictor, model_slice_mm

    for name in ("best.ckpt", "model.onnx"):
        assert model_slice_mm(load_predictor(tiny_run / name).meta) == pytest.approx(5.0)
    assert model_slice_mm({}) is None and model_slice_mm({"slice_mm": None}) is None


def test_predict_reads_thin_series_as_slabs(
    tiny_run: Path, tmp_path: Path, dataset_factory: object
) -> None:
    """1.25 mm series through a model trained on 5 mm slices: the model reads
    slabs of 4 slices, every image gets its slab's probabilities, and the
    result equals the model run on the slab-averaged volume."""
    from ichkit.cli import main
    from ichkit.dicom import load_series
    from ichkit.model._infer import load_predictor, predict_studies
    from ichkit.model._preprocess import preprocess_volume

    data = dataset_factory(  # type: ignore[operator]
        tmp_path / "thin", exams=2, size=32, slices=16, slice_mm=1.25, lesion_slices=8, seed=5
    )
    studies = sorted((data / "dicom").glob("*/*/*"))
    onnx = tiny_run / "model.onnx"
    result = predict_studies(studies, onnx, out_csv=tmp_path / "p" / "preds.csv")
    predictor = load_predictor(onnx)
    for pred in result.series:
        slabs = pred.slabs
        assert slabs is not None and np.array_equal(slabs.index, np.repeat(np.arange(4), 4))
        assert (slabs.spacing_mm, slabs.thickness_mm) == pytest.approx((1.25, 5.0))
        series = load_series(pred.study_dir)
        volume, _ = preprocess_volume(slab_mean(series.hu, slabs.index), size=32)
        image, exam = predictor(volume)
        assert np.allclose(pred.image_probs, image[slabs.index], atol=1e-6)
        assert np.allclose(pred.exam_probs, exam, atol=1e-6)
    doc = json.loads((tmp_path / "p" / "exams.json").read_text())
    slabs = [s["read_as_slabs"] for e in doc["exams"] for s in e["series"]]
    assert slabs == [{"slice_spacing_mm": 1.25, "slab_mm": 5.0, "slabs": 4}] * 2
    # top slices: one image per slab (its middle one), not four copies of the best slab
    top = doc["exams"][0]["series"][0]["top_slices"]
    assert sorted(t["slab"] for t in top) == [0, 1, 2, 3]
    assert all(t["index"] == 4 * t["slab"] + 1 for t in top)
    # a valid submission for `ichkit score` against the truth of the thin images
    assert main(["score", str(tmp_path / "p" / "preds.csv"), str(data / "truth.csv")]) == 0

    # --slab-mm 0: read slice by slice, as before
    plain = predict_studies(studies, onnx, out_csv=tmp_path / "q" / "preds.csv", slab_mm=0)
    assert all(p.slabs is None for p in plain.series)
    assert not np.allclose(plain.series[0].image_probs, result.series[0].image_probs)


def test_heatmaps_of_thin_series_come_from_their_slab(
    tiny_run: Path, tmp_path: Path, dataset_factory: object
) -> None:
    from ichkit.model._infer import predict_studies

    data = dataset_factory(  # type: ignore[operator]
        tmp_path / "thin", exams=1, size=32, slices=16, slice_mm=1.25, lesion_slices=8, seed=5
    )
    studies = sorted((data / "dicom").glob("*/*/*"))
    result = predict_studies(
        studies,
        tiny_run / "best.ckpt",
        out_csv=tmp_path / "p" / "preds.csv",
        heatmaps=tmp_path / "heat",
        masks=data / "masks",
        heatmap_threshold=0.0,  # every image: the tiny model is barely trained
    )
    assert result.heatmaps is not None and result.heatmaps["written"] == 16
    pngs = sorted((tmp_path / "heat").rglob("*.png"))
    assert len(pngs) == 16
    assert result.heatmaps["peak_in_lesion"]["slices_with_lesion"] == 8


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata not present")
def test_predict_real_series(tiny_run: Path, tmp_path: Path) -> None:
    """The real fixtures: CQ500's 0.625 mm series (JPEG Lossless, one slice
    missing) is read as ~5 mm slabs, the 5 mm RSNA series as they are; every
    image gets six rows."""
    from ichkit.labels import read_labels
    from ichkit.model._infer import predict_studies

    studies = [REALDATA / n for n in ("cq500-ct0", "rsna-series-a", "rsna-series-b")]
    result = predict_studies(studies, tiny_run / "model.onnx", out_csv=tmp_path / "preds.csv")
    by_dir = {p.study_dir.name: p for p in result.series}
    assert set(by_dir) == {"cq500-ct0", "rsna-series-a", "rsna-series-b"}
    cq = by_dir["cq500-ct0"]
    assert cq.slabs is not None
    spacing, slab = cq.slabs.spacing_mm, cq.slabs.thickness_mm
    assert spacing == pytest.approx(0.625, abs=0.01) and 4.5 <= slab <= 5.5
    assert len(cq.sop_instance_uids) == len(cq.slabs.index) >= 230
    assert by_dir["rsna-series-a"].slabs is None and by_dir["rsna-series-b"].slabs is None
    preds = read_labels(tmp_path / "preds.csv")
    n_images = sum(len(p.sop_instance_uids) for p in result.series)
    assert len(preds) == n_images and np.isfinite(preds.to_numpy()).all()


def test_predict_cli_slab_option(
    tiny_run: Path, tmp_path: Path, dataset_factory: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from ichkit.cli import main

    data = dataset_factory(  # type: ignore[operator]
        tmp_path / "thin", exams=1, size=32, slices=16, slice_mm=1.25, seed=6
    )
    study = str(next((data / "dicom").glob("*/*/*")))
    args = ["predict", study, "--model", str(tiny_run / "model.onnx"), "--out"]
    assert main([*args, str(tmp_path / "a.csv")]) == 0
    assert "1 thin-slice series read as slabs of 5.0 mm" in capsys.readouterr().out
    assert main([*args, str(tmp_path / "b.csv"), "--slab-mm", "10"]) == 0
    assert "slabs of 10.0 mm" in capsys.readouterr().out
    assert main([*args, str(tmp_path / "c.csv"), "--slab-mm", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--slab-mm" in err and "-1" in err
    assert not (tmp_path / "c.csv").exists()


def test_model_without_slice_mm_reads_thin_series_as_they_are(
    tiny_run: Path, tmp_path: Path, dataset_factory: object, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpoint from before ichkit recorded the training spacing: thin
    series are read slice by slice, with a warning that names --slab-mm."""
    import torch

    from ichkit.model._infer import predict_studies

    payload = torch.load(tiny_run / "best.ckpt", weights_only=True)
    del payload["slice_mm"]
    old = tmp_path / "old.ckpt"
    torch.save(payload, old)
    data = dataset_factory(  # type: ignore[operator]
        tmp_path / "thin", exams=1, size=32, slices=16, slice_mm=1.25, seed=6
    )
    studies = sorted((data / "dicom").glob("*/*/*"))
    with caplog.at_level("WARNING"):
        result = predict_studies(studies, old, out_csv=tmp_path / "p.csv")
    assert result.series[0].slabs is None
    assert "records no training slice spacing" in caplog.text and "--slab-mm 5" in caplog.text
    given = predict_studies(studies, old, out_csv=tmp_path / "q.csv", slab_mm=5.0)
    assert given.series[0].slabs is not None


def _mixed_dataset(root: Path, dataset_factory: Any) -> tuple[Path, Path]:
    """8 exams of 5 mm slices and 3 of 1.25 mm ones (32 slices: 8 slabs of 4) in one
    dataset, and a split file: T0000 (positive) trains, T0001 validates, T0002 tests."""
    data = dataset_factory(root / "mix", exams=8, size=32, slices=8, seed=0)
    thin = dataset_factory(
        root / "thin",
        exams=3,
        size=32,
        slices=32,
        slice_mm=1.25,
        lesion_slices=8,
        seed=4,
        patient_prefix="T",
    )
    shutil.move(thin / "dicom" / "site0", data / "dicom" / "site1")
    rows = (thin / "truth.csv").read_text().splitlines()[1:]
    with (data / "truth.csv").open("a") as handle:
        handle.write("\n".join(rows) + "\n")
    split = root / "split.csv"
    parts = [f"P{i:04d},train" for i in range(6)] + ["P0006,val", "P0007,test"]
    parts += ["T0000,train", "T0001,val", "T0002,test"]
    split.write_text("patient_id,split\n" + "\n".join(parts) + "\n")
    return data, split


def test_training_and_evaluation_read_thin_series_as_slabs(
    tmp_path: Path, dataset_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A thin series among 5 mm ones is trained on, validated and evaluated as
    slabs of the training spacing, as ichkit predict reads it: stage 1, the
    embeddings and the heads see 8 slabs, each labelled as any of its images,
    and every image gets its slab's probabilities, close to predict's."""
    from ichkit.labels import read_labels
    from ichkit.model import evaluate_model, load_config, train_model
    from ichkit.model._infer import predict_studies
    from ichkit.model._train import load_split, read_as_slabs

    data, split = _mixed_dataset(tmp_path, dataset_factory)
    cfg = load_config(
        preset="tiny",
        overrides={
            "data": str(data),
            "split_file": str(split),
            "encoder_epochs": 2,
            "slice_batch": 16,
            "epochs": 2,
        },
    )
    with caplog.at_level("INFO", logger="ichkit.model._train"):
        result = train_model(cfg, out=tmp_path / "run")
    assert "1 of 7 series read as slabs of about 5 mm" in caplog.text  # train
    assert "1 of 2 series read as slabs of about 5 mm" in caplog.text  # val
    run = tmp_path / "run"

    sets = load_split(cfg, cache_dir=run / "cache", splits=("train", "val", "test"))
    for name, found in sets.items():
        for ex in read_as_slabs(found, 5.0):
            images = ex.series.n_slices
            if ex.series.patient_id.startswith("T"):
                assert ex.slabs is not None, name
                assert np.array_equal(ex.slabs.index, np.repeat(np.arange(8), 4))
                assert ex.load().shape == (8, 32, 32) and ex.n_slices == 8
                assert np.array_equal(ex.load(), slab_mean(ex.series.load(), ex.slabs.index))
                per_image = ex.labels_per_image
                assert per_image.shape == (images, 6)
                assert np.array_equal(ex.labels, per_image.reshape(8, 4, 6).max(axis=1))
                expanded = ex.to_images(np.arange(8.0))
                assert expanded.tolist() == np.repeat(np.arange(8), 4).tolist()
            else:
                assert ex.slabs is None and ex.load().shape == (images, 32, 32)
                assert ex.labels_per_image is ex.labels
    # a cache sidecar without positions (an older ichkit's) spaces them by slice_mm
    thin_train = next(ex for ex in sets["train"] if ex.series.patient_id.startswith("T"))
    positions = thin_train.series.slice_positions()
    assert positions is not None and np.allclose(np.diff(positions), 1.25)
    old = dataclasses.replace(thin_train.series, positions=None)
    assert np.allclose(old.slice_positions(), 1.25 * np.arange(32))  # type: ignore[arg-type]

    report = evaluate_model(run, split="test", rounds=20)
    preds = read_labels(report.out / "preds.csv")
    assert len(preds) == 8 + 32  # every image of both test series
    test_study = next((data / "dicom" / "site1").glob("T0002/*/*"))
    thin_uid = "1.2.826.0.1.3680043.10.1.4.2.1"  # T0002's series (dataset seed 4, exam 2)
    thin_ids = [f"{thin_uid}.{k}" for k in range(1, 33)]  # in slice order
    assert set(thin_ids) <= set(preds.index)
    got = preds.loc[thin_ids].to_numpy().reshape(8, 4, 6)
    assert np.array_equal(got, np.repeat(got[:, :1], 4, axis=1))  # one row per slab
    pred = predict_studies([test_study], run / "best.ckpt", out_csv=tmp_path / "p" / "preds.csv")
    assert pred.series[0].slabs is not None
    predicted = read_labels(tmp_path / "p" / "preds.csv").loc[thin_ids].to_numpy()
    # measured 0.0008 here; read slice by slice (--slab-mm 0) predict differs by 0.03
    assert np.abs(predicted - preds.loc[thin_ids].to_numpy()).max() < 0.005
    assert result.best_checkpoint.is_file()


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata not present")
def test_cached_real_thin_series_gets_predicts_slabs(tmp_path: Path) -> None:
    """CQ500-CT0 (0.625 mm, JPEG Lossless, one slice missing): the cache records
    its slice positions, and training reads it as the very slabs predict does."""
    from ichkit.dicom import load_series
    from ichkit.model._cache import _read_meta, build_cache
    from ichkit.model._data import SeriesFiles
    from ichkit.model._train import Example, read_as_slabs

    study = REALDATA / "cq500-ct0"
    series = load_series(study)
    files = tuple(series.paths)
    found = SeriesFiles(
        series.series_instance_uid,
        series.study_instance_uid,
        series.patient_id,
        files,
        tuple(series.sop_instance_uids),
    )
    (cached,) = build_cache([found], tmp_path / "cache", size=32)
    reread = _read_meta(cached.path.parent, cached.key)
    assert reread is not None and reread.positions is not None
    assert np.allclose(reread.slice_positions(), series.positions, atol=1e-3)  # type: ignore[arg-type]
    labels = np.zeros((len(files), 6), dtype=np.float32)
    (ex,) = read_as_slabs([Example(reread, labels)], 5.0)
    want = slab_index(series.positions, 5.0)
    assert ex.slabs is not None and want is not None
    assert np.array_equal(ex.slabs.index, want.index) and ex.n_slices == want.count
