"""``ichkit deid``: the DESIGN.md form, run/keygen/lookup, exit statuses."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from ichkit.cli import main


def _slice(path: Path, index: int, *, image_type: str = "AXIAL") -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.10.996.{100 + index}"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.996.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.996.2"
    ds.PatientID = "MRN777"
    ds.PatientName = "ROE^JANE"
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", image_type]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, index]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "site.key"
    assert main(["deid", "keygen", str(path), "--site", "CLI"]) == 0
    return path


def test_keygen_mode_and_refusal(key: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert main(["deid", "keygen", str(key)]) == 2
    assert "key file exists; refusing to overwrite it" in capsys.readouterr().err


def test_design_form_and_lookup(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "ROE_JANE"
    for i in range(2):
        _slice(src / f"{i}.dcm", i)
    dst = tmp_path / "out"
    assert main(["deid", str(src), str(dst), "--key", str(key), "--no-progress"]) == 0
    text = (dst / "deid-report.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["status"] for r in rows] == ["deidentified", "deidentified"]
    assert (dst / "deid-config.json").is_file()
    capsys.readouterr()
    assert main(["deid", "lookup", "MRN777", "--key", str(key)]) == 0
    out = capsys.readouterr().out
    kind, original, pseudonym = out.splitlines()[0].split("\t")[:3]
    assert (kind, original) == ("patient", "MRN777") and pseudonym.startswith("CLI-")
    assert main(["deid", "lookup", pseudonym, "--key", str(key)]) == 0
    assert "MRN777" in capsys.readouterr().out
    assert main(["deid", "lookup", "nobody", "--key", str(key)]) == 1


def test_run_form_exit_3_on_quarantine(tmp_path: Path, key: Path) -> None:
    src = tmp_path / "src"
    _slice(src / "a.dcm", 0)
    _slice(src / "scout.dcm", 1, image_type="LOCALIZER")
    args = ["deid", "run", str(src), str(tmp_path / "out"), "--key", str(key), "--workers", "1"]
    assert main(args) == 3
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 1
    assert (tmp_path / "out-quarantine" / "files" / "scout.dcm").is_file()


def test_dry_run_prints_report(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    _slice(src / "a.dcm", 0)
    assert main(["deid", str(src), str(tmp_path / "out"), "--key", str(key), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "input_path,output_path,status,reason"
    assert "deidentified" in out
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_2(tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    _slice(src / "a.dcm", 0)
    assert main(["deid", str(src), str(src / "inner"), "--key", str(key)]) == 2
    assert "SRC and DST must not contain each other" in capsys.readouterr().err
    assert main(["deid", str(src), str(tmp_path / "o"), "--key", str(tmp_path / "none")]) == 2
    assert "cannot read key file" in capsys.readouterr().err
    assert main(["deid", str(src)]) == 2  # DST missing
    assert main(["deid", "lookup", "x", "--key", str(tmp_path / "none")]) == 2
    assert "no mapping store here" in capsys.readouterr().err


def test_map_labels_rekeys_to_output_uids(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pydicom

    src = tmp_path / "src"
    for i in range(3):
        _slice(src / f"{i}.dcm", i)
    dst = tmp_path / "out"
    assert main(["deid", str(src), str(dst), "--key", str(key), "--no-progress"]) == 0
    labels = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")
    truth = tmp_path / "truth.csv"
    lines = ["ID,Label"]
    for i in range(3):
        values = [0, 0, 0, 0, i % 2, i % 2]  # image 1 has a subdural bleed
        lines += [
            f"ID_1.2.826.0.1.3680043.10.996.{100 + i}_{n},{v}"
            for n, v in zip(labels, values, strict=True)
        ]
    truth.write_text("\n".join(lines) + "\n", encoding="utf-8")
    exams = tmp_path / "exams.csv"
    exams.write_text(
        "site,patient,study,series,any\n"
        "north,MRN777,1.2.826.0.1.3680043.10.996.1,1.2.826.0.1.3680043.10.996.2,1\n",
        encoding="utf-8",
    )
    out, exams_out = tmp_path / "mapped.csv", tmp_path / "exams-mapped.csv"
    args = ["deid", "map-labels", str(truth), str(out), "--key", str(key)]
    capsys.readouterr()
    assert main([*args, "--exams", str(exams), "--exams-out", str(exams_out)]) == 0
    assert "mapped 3 images" in capsys.readouterr().err

    written = {}  # ImagePositionPatient z (= original index) -> output headers
    for path in dst.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        written[int(ds.ImagePositionPatient[2])] = ds
    rows = list(csv.reader(out.read_text(encoding="utf-8").splitlines()))
    assert rows[0] == ["ID", "Label"] and len(rows) == 1 + 3 * 6
    for i in range(3):
        sop = written[i].SOPInstanceUID
        assert sop.startswith("2.25.")
        mine = rows[1 + 6 * i : 7 + 6 * i]
        assert [r[0] for r in mine] == [f"ID_{sop}_{n}" for n in labels]
        assert [r[1] for r in mine] == ["0", "0", "0", "0", str(i % 2), str(i % 2)]
    exam = list(csv.DictReader(exams_out.read_text(encoding="utf-8").splitlines()))
    assert exam == [
        {
            "site": "north",
            "patient": written[0].PatientID,
            "study": written[0].StudyInstanceUID,
            "series": written[0].SeriesInstanceUID,
            "any": "1",
        }
    ]


def test_map_labels_usage_errors(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("ID,Label\nID_1.2.3_epidural\n", encoding="utf-8")
    out = str(tmp_path / "o.csv")
    assert main(["deid", "map-labels", str(truth), out, "--key", str(tmp_path / "none")]) == 2
    assert "none: cannot read key file" in capsys.readouterr().err
    assert main(["deid", "map-labels", str(truth), out, "--key", str(key)]) == 2
    assert "truth.csv: line 2" in capsys.readouterr().err
    args = ["deid", "map-labels", str(truth), out, "--key", str(key), "--exams", "e.csv"]
    assert main(args) == 2
    assert "exams given without exams_out" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()
