"""Datasets: the RSNA export's labelled test set is the test split; split files from an export."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest

from ichkit.errors import DatasetError
from ichkit.model import load_config
from ichkit.model._data import assign_splits, discover_series, find_layout
from ichkit.model._train import load_split

LABEL_HEADER = "ID,Label\n"


def _rsna_export(src: Path, dst: Path, subsets: dict[str, str], *, truth: bool) -> Path:
    """Turn a tiny synth-layout dataset into an export-like RSNA layout.

    ``subsets`` maps PatientID to train/val/test: test patients go to
    ``stage_2_test`` (with ``stage_2_test_truth.csv`` when ``truth``), the
    rest to ``stage_2_train``; ``exams.csv`` lists every study with its subset.
    """
    rows = list(csv.DictReader((src / "truth.csv").read_text().splitlines()))
    layout = find_layout(src)
    series = discover_series(layout, {r["ID"].rsplit("_", 1)[0][3:] for r in rows})
    lines: dict[str, list[str]] = {"train": [], "test": []}
    exam_rows = ["site,patient,study,series,subset,n_images"]
    for s in series:
        part = "test" if subsets[s.patient_id] == "test" else "train"
        folder = dst / f"stage_2_{part}"
        folder.mkdir(parents=True, exist_ok=True)
        for path, sop in zip(s.files, s.sop_instance_uids, strict=True):
            shutil.copy(path, folder / f"ID_{sop}.dcm")
        mine = {f"ID_{sop}" for sop in s.sop_instance_uids}
        lines[part] += [
            f"{r['ID']},{r['Label']}\n" for r in rows if r["ID"].rsplit("_", 1)[0] in mine
        ]
        exam_rows.append(
            f"site0,{s.patient_id},{s.study_instance_uid},{s.series_instance_uid},"
            f"{subsets[s.patient_id]},{len(s.files)}"
        )
    (dst / "stage_2_train.csv").write_text(LABEL_HEADER + "".join(lines["train"]))
    if truth:
        (dst / "stage_2_test_truth.csv").write_text(LABEL_HEADER + "".join(lines["test"]))
    (dst / "exams.csv").write_text("\n".join(exam_rows) + "\n")
    return dst


def _patients(examples: list[Any], series_patient: dict[str, str]) -> set[str]:
    return {series_patient[ex.series.series_instance_uid] for ex in examples}


@pytest.fixture(scope="module")
def exported(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    subsets = {f"P{i:04d}": "train" for i in range(12)}
    subsets.update({"P0001": "val", "P0002": "val", "P0009": "test", "P0010": "test"})
    subsets["P0011"] = "test"
    root = tmp_path_factory.mktemp("export")
    with_truth = _rsna_export(tiny_dataset, root / "with-truth", subsets, truth=True)
    kaggle = _rsna_export(tiny_dataset, root / "kaggle", subsets, truth=False)
    layout = find_layout(tiny_dataset)
    series = discover_series(layout, _all_ids(tiny_dataset))
    return {
        "subsets": subsets,
        "with_truth": with_truth,
        "kaggle": kaggle,
        "series_patient": {s.series_instance_uid: s.patient_id for s in series},
        "series": series,
    }


def _all_ids(root: Path) -> set[str]:
    rows = csv.DictReader((root / "truth.csv").read_text().splitlines())
    return {r["ID"].rsplit("_", 1)[0][3:] for r in rows}


def test_layout_finds_the_labelled_test_set(exported: dict[str, Any]) -> None:
    layout = find_layout(exported["with_truth"])
    part = layout.test_part()
    assert layout.kind == "rsna" and part is not None
    assert part.images.name == "stage_2_test" and part.labels.name == "stage_2_test_truth.csv"
    # Kaggle's own layout has test images but no truth: no test part.
    assert find_layout(exported["kaggle"]).test_part() is None


def test_exported_test_set_is_the_test_split(exported: dict[str, Any], tmp_path: Path) -> None:
    subsets, sp = exported["subsets"], exported["series_patient"]
    want_test = {p for p, s in subsets.items() if s == "test"}
    cfg = load_config(
        preset="tiny", overrides={"data": str(exported["with_truth"]), "test_fraction": 0.3}
    )
    sets = load_split(cfg, cache_dir=tmp_path / "cache", splits=("train", "val", "test"))
    assert _patients(sets["test"], sp) == want_test
    # The training folder is split into train and val only: test_fraction does not apply.
    assert _patients(sets["train"] + sets["val"], sp) == set(subsets) - want_test
    # The test labels are the truth file's.
    for ex in sets["test"]:
        assert ex.labels.shape == (ex.series.n_slices, 6)
    assert sum(float(ex.labels[:, -1].max()) for ex in sets["test"]) >= 1
    # Training asks for train and val only: the test folder is not read.
    only = load_split(cfg, cache_dir=tmp_path / "cache2", splits=("train", "val"))
    assert not (tmp_path / "cache2" / "series-index-test.json").exists()
    assert _patients(only["train"], sp) == _patients(sets["train"], sp)


def test_exams_csv_of_an_export_is_a_split_file(exported: dict[str, Any], tmp_path: Path) -> None:
    subsets, sp = exported["subsets"], exported["series_patient"]
    cfg = load_config(
        preset="tiny",
        overrides={"data": str(exported["with_truth"]), "split_file": "exams.csv"},
    )
    sets = load_split(cfg, cache_dir=tmp_path / "cache", splits=("train", "val", "test"))
    for name in ("train", "val", "test"):
        assert _patients(sets[name], sp) == {p for p, s in subsets.items() if s == name}


def test_without_truth_the_test_split_is_hashed(exported: dict[str, Any], tmp_path: Path) -> None:
    cfg = load_config(
        preset="tiny",
        overrides={"data": str(exported["kaggle"]), "test_fraction": 0.3, "split_seed": 1},
    )
    sets = load_split(cfg, cache_dir=tmp_path / "cache", splits=("train", "val", "test"))
    in_train_folder = {p for p, s in exported["subsets"].items() if s != "test"}
    test = _patients(sets["test"], exported["series_patient"])
    assert test and test <= in_train_folder


def test_split_file_columns(exported: dict[str, Any], tmp_path: Path) -> None:
    series = exported["series"]
    joined = tmp_path / "joined.csv"
    first, second = series[0].series_instance_uid, series[1].series_instance_uid
    joined.write_text(f"series,subset\n{first};{second},val\n")
    names = assign_splits(series, val_fraction=0.1, test_fraction=0.1, seed=0, split_file=joined)
    assert names[:2] == ["val", "val"] and set(names[2:]) == {""}
    bad = tmp_path / "bad.csv"
    bad.write_text("study,fold\nx,1\n")
    with pytest.raises(DatasetError, match="no 'split' \\(or 'subset'\\) column") as err:
        assign_splits(series, val_fraction=0.1, test_fraction=0.1, seed=0, split_file=bad)
    assert "bad.csv" in str(err.value)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("study,subset\nx,holdout\n")
    with pytest.raises(DatasetError, match="holdout"):
        assign_splits(series, val_fraction=0.1, test_fraction=0.1, seed=0, split_file=unknown)


def test_split_file_naming_a_uid_twice_with_two_splits_is_an_error(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    series = exported["series"]
    uid = series[0].series_instance_uid
    twice = tmp_path / "twice.csv"
    twice.write_text(
        f"series,subset\n{uid},train\n{series[1].series_instance_uid},val\n{uid},test\n"
    )
    with pytest.raises(DatasetError, match="given both 'train' and 'test'") as err:
        assign_splits(series, val_fraction=0.1, test_fraction=0.1, seed=0, split_file=twice)
    assert "twice.csv" in str(err.value) and uid in str(err.value)
    # the same split twice is harmless
    twice.write_text(f"series,subset\n{uid},val\n{uid},val\n")
    names = assign_splits(series, val_fraction=0.1, test_fraction=0.1, seed=0, split_file=twice)
    assert names[0] == "val"


def test_a_split_file_that_shares_a_patient_between_splits_is_refused(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    """A split file of series (no patient column); the headers say two of them are one patient."""
    import pandas as pd
    import pydicom

    subsets, sp = exported["subsets"], exported["series_patient"]
    root = tmp_path / "leaky"
    shutil.copytree(exported["with_truth"], root)
    assert subsets["P0001"] == "val" and subsets["P0003"] == "train"
    # P0003's images turn out to be P0001's (same person, two exams)
    moved = [uid for uid, patient in sp.items() if patient == "P0003"]
    changed = 0
    for path in (root / "stage_2_train").glob("*.dcm"):
        ds = pydicom.dcmread(path)
        if ds.SeriesInstanceUID in moved:
            ds.PatientID = "P0001"
            ds.save_as(path)
            changed += 1
    assert changed
    exams = pd.read_csv(root / "exams.csv", dtype=str)
    exams[["series", "subset"]].to_csv(root / "by-series.csv", index=False)
    cfg = load_config(preset="tiny", overrides={"data": str(root), "split_file": "by-series.csv"})
    with pytest.raises(DatasetError, match="not patient-disjoint") as err:
        load_split(cfg, cache_dir=tmp_path / "cache", splits=("train", "val"))
    assert "patient 'P0001' has series in train (" in str(err.value)
    assert ") and val (" in str(err.value) and "by-series.csv" in str(err.value)
    # the opt-out for data whose PatientIDs do not name patients: a warning
    cfg = cfg.replace(patient_disjoint=False)
    assert load_split(cfg, cache_dir=tmp_path / "cache", splits=("train", "val"))["val"]


def _export_copy(exported: dict[str, Any], tmp_path: Path, edit: Any) -> Path:
    """A copy of the exported dataset whose exams.csv rows ``edit`` rewrites (a DataFrame)."""
    import pandas as pd

    root = tmp_path / "copy"
    shutil.copytree(exported["with_truth"], root)
    exams = pd.read_csv(root / "exams.csv", dtype=str)
    edit(exams)
    exams.to_csv(root / "exams.csv", index=False)
    return root


def test_a_split_file_keys_patients_by_site(exported: dict[str, Any], tmp_path: Path) -> None:
    """Two sites' PatientID 'P0001' are two patients in a catalog's split: not a leak."""
    import pydicom

    sp = exported["series_patient"]
    moved = {uid for uid, patient in sp.items() if patient == "P0003"}  # train

    def to_site1(exams: Any) -> None:
        rows = exams["patient"] == "P0003"
        exams.loc[rows, "site"] = "site1"
        exams.loc[rows, "patient"] = "P0001"  # P0001 of site0 is in val

    root = _export_copy(exported, tmp_path, to_site1)
    for path in (root / "stage_2_train").glob("*.dcm"):
        ds = pydicom.dcmread(path)
        if ds.SeriesInstanceUID in moved:
            ds.PatientID = "P0001"
            ds.save_as(path)
    cfg = load_config(preset="tiny", overrides={"data": str(root), "split_file": "exams.csv"})
    sets = load_split(cfg, cache_dir=tmp_path / "cache", splits=("train", "val", "test"))
    assert {ex.series.series_instance_uid for ex in sets["train"]} >= moved
    # without the site column the file's patients are the PatientIDs: refused
    import pandas as pd

    exams = pd.read_csv(root / "exams.csv", dtype=str).drop(columns=["site"])
    exams.to_csv(root / "no-site.csv", index=False)
    cfg = cfg.replace(split_file="no-site.csv")
    with pytest.raises(DatasetError, match="patient 'P0001' is given both 'val' and 'train'"):
        load_split(cfg, cache_dir=tmp_path / "cache", splits=("train", "val"))


def test_training_sees_a_split_file_leak_into_the_unread_test_folder(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    """exams.csv names a test patient also as a training one: refused before the test folder."""

    def rename(exams: Any) -> None:
        exams.loc[exams["patient"] == "P0009", "patient"] = "P0003"  # test; P0003 is train

    root = _export_copy(exported, tmp_path, rename)
    cfg = load_config(preset="tiny", overrides={"data": str(root), "split_file": "exams.csv"})
    with pytest.raises(DatasetError, match="patient 'P0003' of site 'site0' is given both") as err:
        load_split(cfg, cache_dir=tmp_path / "cache", splits=("train", "val"))
    assert "exams.csv" in str(err.value) and err.value.field == "patient"
    assert not (tmp_path / "cache" / "series-index-test.json").exists()


def test_check_patient_disjoint_groups_patients_sharing_a_study() -> None:
    from ichkit.model._data import SeriesFiles, check_patient_disjoint

    def one(patient: str, study: str, series: str) -> SeriesFiles:
        return SeriesFiles(series, study, patient, (Path(f"{series}.dcm"),), (f"{series}.1",))

    series = [one("P1", "st1", "a"), one("P2", "st2", "b"), one("Q1", "st1", "c")]
    check_patient_disjoint(series, ["train", "test", "train"])
    check_patient_disjoint(series, ["train", "test", ""])  # a series left out counts for none
    # Q1 is P1 under another PatientID (they share study st1)
    with pytest.raises(
        DatasetError, match=r"patient 'P1' has series in test \(c\) and train \(a\)"
    ):
        check_patient_disjoint(series, ["train", "val", "test"])
    many = [one(f"P{i}", f"st{i}", f"s{i}{k}") for i in range(3) for k in "xy"]
    with pytest.raises(DatasetError, match="; 3 patients in all"):
        check_patient_disjoint(many, ["train", "test"] * 3)
    # patients given by the caller (a split file's site and patient) replace the PatientIDs
    two_sites = [one("P1", "st1", "a"), one("P1", "st2", "b")]
    with pytest.raises(DatasetError):
        check_patient_disjoint(two_sites, ["train", "test"])
    check_patient_disjoint(two_sites, ["train", "test"], patients=["s0\0P1", "s1\0P1"])
    # no PatientID: the study names the patient
    anonymous = [one("", "st9", "a"), one("", "st9", "b")]
    with pytest.raises(DatasetError, match=r"the patient \(no PatientID\) of study st9"):
        check_patient_disjoint(anonymous, ["train", "val"])


def test_an_image_labelled_twice_is_an_error(exported: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "dup"
    shutil.copytree(exported["with_truth"], root)
    six = (root / "stage_2_train.csv").read_text().splitlines()[1:7]  # one image, six labels
    with (root / "stage_2_test_truth.csv").open("a") as handle:
        handle.write("\n".join(six) + "\n")
    cfg = load_config(preset="tiny", overrides={"data": str(root)})
    with pytest.raises(DatasetError, match="labelled both for training and for testing"):
        load_split(cfg, cache_dir=tmp_path / "cache", splits=("train", "test"))


def test_patients_sharing_a_study_are_split_together() -> None:
    """Without a split file, patients joined by a shared study get one split."""
    from pathlib import Path

    from ichkit.model._data import SeriesFiles

    def one(patient: str, study: str, series: str) -> SeriesFiles:
        return SeriesFiles(series, study, patient, (Path(f"{series}.dcm"),), (f"{series}.1",))

    plain = [one(f"P{i}", f"st{i}", f"se{i}") for i in range(200)]
    before = assign_splits(plain, val_fraction=0.3, test_fraction=0.3, seed=0)
    # the same patients, plus 50 studies each sent again under another PatientID
    shared = plain + [one(f"Q{i}", f"st{i}", f"sx{i}") for i in range(50)]
    after = assign_splits(shared, val_fraction=0.3, test_fraction=0.3, seed=0)
    assert after[:200] == before  # a patient alone splits as it always did
    assert after[200:] == before[:50]  # the re-keyed copies follow their study


def test_label_arrays_equal_per_series_lookups_and_name_a_missing_image() -> None:
    import numpy as np
    import pandas as pd

    from ichkit.labels import LABELS, image_id
    from ichkit.model._data import label_arrays

    rng = np.random.default_rng(0)
    ids = [f"1.2.{i}" for i in range(50)]
    table = pd.DataFrame(rng.random((50, 6)), index=pd.Index(ids), columns=list(LABELS))
    series = [ids[3:10], [f"ID_{i}" for i in ids[20:23]], ids[40:41]]
    for got, uids in zip(label_arrays(series, table), series, strict=True):
        want = table.loc[[image_id(u) for u in uids], list(LABELS)].to_numpy(np.float32)
        np.testing.assert_array_equal(got, want)
    with pytest.raises(DatasetError, match=r"image '9\.9' has no labels"):
        label_arrays([ids[:2], ["9.9"]], table)


def test_series_left_out_for_unlabelled_images_are_summed_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Thousands of partly labelled series give a few named lines and one total, not thousands."""
    import logging

    from ichkit.model._data import _NAMED_LEFT_OUT, SeriesFiles, _filter

    def series(k: int) -> SeriesFiles:
        sops = tuple(f"1.{k}.{i}" for i in range(4))
        return SeriesFiles(f"se{k}", f"st{k}", f"P{k}", tuple(Path(f"{u}.dcm") for u in sops), sops)

    found = [series(k) for k in range(20)]
    labelled = {f"1.{k}.{i}" for k in range(20) for i in range(4 if k < 8 else 3)}
    with caplog.at_level(logging.DEBUG, logger="ichkit.model._data"):
        kept = _filter(found, labelled)
    assert [s.series_instance_uid for s in kept] == [f"se{k}" for k in range(8)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == _NAMED_LEFT_OUT + 1
    assert warnings[0] == "series se8: 1 of 4 images have no labels; left out"
    assert warnings[-1].startswith("12 series left out in all") and "(12 images" in warnings[-1]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert sum("left out" in m for m in debug) == 12 - _NAMED_LEFT_OUT


def test_evaluate_refuses_a_test_folder_patient_seen_in_training(
    exported: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training reads no test folder; evaluate does, and refuses a patient found in both."""
    import pydicom

    from ichkit.cli import main
    from ichkit.model import train_model

    root = tmp_path / "leaky"
    shutil.copytree(exported["with_truth"], root)
    assert exported["subsets"]["P0009"] == "test" and exported["subsets"]["P0003"] == "train"
    for path in (root / "stage_2_test").glob("*.dcm"):  # P0009 is P0003, seen again
        ds = pydicom.dcmread(path)
        if ds.PatientID == "P0009":
            ds.PatientID = "P0003"
            ds.save_as(path)
    run = tmp_path / "run"
    cfg = load_config(preset="tiny", overrides={"data": str(root), "epochs": 1})
    train_model(cfg, out=run)  # no split file: the training folder is hashed, test unread
    args = ["evaluate", str(run), "--bootstrap", "5", "--out", str(tmp_path / "rep")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "not patient-disjoint: patient 'P0003' has series in test (" in err
    assert "--allow-shared-patients" in err and not (tmp_path / "rep" / "index.html").exists()
    assert main([*args, "--allow-shared-patients"]) == 0
    assert (tmp_path / "rep" / "index.html").exists()


def test_split_file_patients_rows_and_unnamed_series(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from ichkit.model._data import SeriesFiles, split_file_patients

    def one(patient: str, study: str, series: str) -> SeriesFiles:
        return SeriesFiles(series, study, patient, (Path(f"{series}.dcm"),), (f"{series}.1",))

    f = tmp_path / "s.csv"
    f.write_text(
        "site,patient,series,subset\n"
        "s0,P1,a;b,train\ns1,P1,c,test\ns0,P2,d,val\ns0,P2,e,val\ns0,,x,test\n"
    )
    series = [
        one("P1", "st1", "a"),
        one("P1", "st2", "c"),
        one("P2", "st9", "new"),
        one("P1", "st8", "new2"),
        one("P9", "st7", "y"),
    ]
    keys = split_file_patients(f, series)
    # named by the file; an unnamed series of P2 (one site in the file) is that site's P2;
    # P1 is at two sites in the file, so an unnamed P1 series matches neither; P9: unknown
    assert keys == ["s0\0P1", "s1\0P1", "s0\0P2", "", ""]
    f.write_text(
        "site,patient,series,subset\ns0,P1,a,train\ns0,P1,b,test\ns0,P2,c,train\ns0,P2,d,val\n"
    )
    with pytest.raises(
        DatasetError,
        match=r"patient 'P1' of site 's0' is given both 'train' "
        r"and 'test' \(2 rows in all\)",
    ) as err:
        split_file_patients(f, series)
    assert "--allow-shared-patients" in str(err.value)
    with caplog.at_level(logging.WARNING, logger="ichkit.model._data"):
        split_file_patients(f, series, strict=False)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "(2 rows in all)" in warned[0]
    assert "--allow-shared-patients" not in warned[0]
    # no patient column: the file names no patients
    f.write_text("series,subset\na,train\n")
    assert split_file_patients(f, series) is None
