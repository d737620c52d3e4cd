"""write_dataset: layout, truth and exam tables, masks, preview, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from conftest import SynthDataset

from ichkit.errors import ConfigError
from ichkit.labels import LABELS, SUBTYPES, image_id, read_labels
from ichkit.synth import SynthConfig, write_dataset


def test_layout(synth_dataset: SynthDataset) -> None:
    out = synth_dataset.path
    assert {p.name for p in out.iterdir()} == {
        "dicom",
        "truth.csv",
        "exams.csv",
        "mimics.csv",
        "synth-config.json",
        "masks",
        "preview.png",
    }
    exams = pd.read_csv(out / "exams.csv", dtype=str)
    assert list(exams.columns) == ["site", "patient", "study", "series", *LABELS]
    assert len(exams) == synth_dataset.config.exams
    for row in exams.itertuples():
        series = out / "dicom" / row.site / row.patient / row.study / row.series
        files = sorted(series.glob("*.dcm"))
        assert files, series
        ds = pydicom.dcmread(files[0], stop_before_pixels=True)
        assert (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID) == (
            row.patient,
            row.study,
            row.series,
        )
    assert SynthConfig.read(out / "synth-config.json") == synth_dataset.config


def test_truth_keys_are_the_axial_images(synth_dataset: SynthDataset) -> None:
    out = synth_dataset.path
    truth = read_labels(out / "truth.csv")
    axial, other = set(), set()
    for path in (out / "dicom").rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        key = image_id(ds.SOPInstanceUID)
        if "AXIAL" in ds.ImageType:
            axial.add(key)
        else:
            other.add(key)
    assert set(truth.index) == axial
    assert other and not (other & set(truth.index))  # scouts and dose reports have no truth


def test_exam_labels_are_max_over_images(synth_dataset: SynthDataset) -> None:
    out = synth_dataset.path
    truth = read_labels(out / "truth.csv")
    exams = pd.read_csv(out / "exams.csv", dtype={"patient": str})
    for written, row in zip(synth_dataset.summary.exams, exams.itertuples(), strict=True):
        ids = [image_id(u) for u in written.sop_instance_uids]
        expect = truth.loc[ids, list(LABELS)].max().astype(int).tolist()
        assert [getattr(row, lab) for lab in LABELS] == expect
    assert 0 < exams["any"].sum() < len(exams)


def test_masks_match_labels(synth_dataset: SynthDataset) -> None:
    out = synth_dataset.path
    truth = read_labels(out / "truth.csv")
    cfg = synth_dataset.config
    for written in synth_dataset.summary.exams:
        with np.load(out / "masks" / f"{written.series_uid}.npz") as npz:
            uids = list(npz["sop_instance_uids"])
            assert uids == list(written.sop_instance_uids)
            labels = truth.loc[[image_id(u) for u in uids]]
            spacing = float(
                pydicom.dcmread(out / written.files[0], stop_before_pixels=True).PixelSpacing[0]
            )
            min_px = max(cfg.min_lesion_area_mm2 / spacing**2, 1.0)
            for s in SUBTYPES:
                area = npz[s].reshape(len(uids), -1).sum(axis=1)
                assert np.array_equal(labels[s].to_numpy() == 1, area >= min_px - 1e-6), s


def test_mimics_table_lists_the_mimic_slices(synth_dataset: SynthDataset) -> None:
    out = synth_dataset.path
    mimics = pd.read_csv(out / "mimics.csv", dtype={"sop_instance_uid": str})
    assert list(mimics.columns) == [
        "sop_instance_uid",
        "series_instance_uid",
        "slice",
        "mimic",
        "any",
    ]
    expect = {
        (w.sop_instance_uids[k], name)
        for w in synth_dataset.summary.exams
        for name, slices in w.mimic_slices.items()
        for k in slices
    }
    assert expect, "the fixture should hold at least one calcification"
    got = {(r.sop_instance_uid, n) for r in mimics.itertuples() for n in r.mimic.split(";")}
    assert got == expect
    truth = read_labels(out / "truth.csv")
    assert mimics["any"].tolist() == [
        int(truth.loc[image_id(u), "any"]) for u in mimics["sop_instance_uid"]
    ]


def test_repeat_patient_keeps_identity(synth_dataset: SynthDataset) -> None:
    exams = pd.read_csv(synth_dataset.path / "exams.csv", dtype=str)
    repeated = exams[exams.duplicated("patient", keep=False)]
    assert len(repeated) >= 2
    assert repeated.groupby("patient")["site"].nunique().max() == 1
    assert repeated["study"].is_unique


def test_preview_is_a_png(synth_dataset: SynthDataset) -> None:
    data = (synth_dataset.path / "preview.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_for_1_and_2_workers(tmp_path: Path) -> None:
    cfg = SynthConfig(exams=3, seed=4, size=48, slices=5, sites=3, masks=True, prevalence=0.7)
    write_dataset(cfg, tmp_path / "one", workers=1)
    write_dataset(cfg, tmp_path / "two", workers=2)
    one, two = _tree(tmp_path / "one"), _tree(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) > 20
    assert one == two
    write_dataset(SynthConfig(exams=3, seed=5, size=48, slices=5), tmp_path / "other")
    assert _tree(tmp_path / "other")["truth.csv"] != one["truth.csv"]


def test_refuses_existing_dataset(synth_dataset: SynthDataset) -> None:
    with pytest.raises(ConfigError, match=r"OUT: output folder already holds a dataset"):
        write_dataset(synth_dataset.config, synth_dataset.path)


def test_refuses_bad_worker_count(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--workers: must be an integer >= 1; got 0"):
        write_dataset(SynthConfig(exams=1, size=48, slices=3), tmp_path / "x", workers=0)
