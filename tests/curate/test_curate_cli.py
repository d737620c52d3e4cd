"""The dataset commands end to end: ingest → labels → qc → split → stats → export → import-rsna."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pydicom
import pytest
from ichkit_test_factory import write_series

from ichkit.cli import main
from ichkit.labels import LABELS, read_labels, write_labels


def _site(root: Path, site: str, n_patients: int) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for p in range(n_patients):
        for i, path in enumerate(
            write_series(root / site / f"p{p}", patient=f"{site}-P{p}", study=f"S{p}", n=10)
        ):
            sop = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            hit = p % 2 == 0 and i in (4, 5)
            rows[sop] = [0, 0, 0, int(hit), 0, int(hit)]
    return rows


def test_dataset_commands_end_to_end(
    catalog_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth_rows = {**_site(tmp_path / "dicom", "alpha", 4), **_site(tmp_path / "dicom", "beta", 4)}
    truth = pd.DataFrame.from_dict(truth_rows, orient="index", columns=list(LABELS)).astype(float)
    write_labels(tmp_path / "truth.csv", truth)
    (tmp_path / "dicom" / "beta" / "junk.dcm").write_bytes(b"junk")
    db = ["--db", catalog_url]
    assert (
        main(["ingest", str(tmp_path / "dicom" / "alpha"), "--site", "alpha", *db, "--no-progress"])
        == 0
    )
    code = main(
        [
            "ingest",
            str(tmp_path / "dicom" / "beta"),
            "--site",
            "beta",
            *db,
            "--no-progress",
            "--workers",
            "1",
            "--report",
            str(tmp_path / "ingest.csv"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 3  # one unreadable file: the batch partly failed
    assert "unreadable: " in out and "junk.dcm" in out
    assert "junk.dcm" in (tmp_path / "ingest.csv").read_text()
    assert main(["labels", "import", str(tmp_path / "truth.csv"), "--source", "truth", *db]) == 0
    assert "80 images labelled, 8 exams" in capsys.readouterr().out
    assert main(["qc", *db, "--out", str(tmp_path / "qc.csv"), "--no-progress"]) == 0
    assert "8 series checked: 8 pass, 0 excluded" in capsys.readouterr().out
    assert (
        main(["split", *db, "--test", "0.25", "--seed", "1", "--out", str(tmp_path / "split")]) == 0
    )
    out = capsys.readouterr().out
    assert "split 'default' stored" in out
    assert (tmp_path / "split" / "split_config.json").exists()
    # another draw under the same name is refused (exit 2) unless --replace is given
    for seed in range(2, 20):
        if main(["split", *db, "--test", "0.25", "--seed", str(seed)]) == 2:
            break
        capsys.readouterr()
    err = capsys.readouterr().err
    assert "split named 'default' is already stored" in err and "--replace" in err
    assert main(["split", *db, "--test", "0.25", "--seed", str(seed), "--replace"]) == 0
    assert main(["split", *db, "--test", "0.25", "--seed", "1", "--replace"]) == 0
    capsys.readouterr()
    assert main(["stats", *db, "--out", str(tmp_path / "stats"), "--split", "default"]) == 0
    assert (tmp_path / "stats" / "exam_distribution.png").exists()
    export = tmp_path / "export"
    assert main(["export", *db, "--out", str(export), "--split", "default", "--no-progress"]) == 0
    assert "exported 60 train and 20 test images (8 exams)" in capsys.readouterr().out
    back = f"sqlite:///{tmp_path / 'back.db'}"
    assert (
        main(
            [
                "import-rsna",
                "--images",
                str(export / "stage_2_train"),
                "--labels",
                str(export / "stage_2_train.csv"),
                "--db",
                back,
                "--no-progress",
            ]
        )
        == 0
    )
    assert "60 images labelled, 6 exams" in capsys.readouterr().out
    exported = read_labels(export / "stage_2_train.csv")
    pd.testing.assert_frame_equal(
        exported.sort_index(),
        truth.loc[exported.index].sort_index(),
        check_names=False,
        check_index_type=False,
    )


def test_unknown_label_source_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ichkit.catalog import open_catalog

    db = f"sqlite:///{tmp_path / 'c.db'}"
    open_catalog(db)  # an empty catalog
    assert main(["export", "--db", db, "--out", str(tmp_path / "o"), "--source", "nope"]) == 2
    assert capsys.readouterr().err == (
        "ichkit: error: --source: no label source 'nope'; the catalog has: (none)\n"
    )


def test_ingest_checks_its_labels_file_before_ingesting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad --labels file stops the command before any file is catalogued."""
    _site(tmp_path / "dicom", "alpha", 1)
    (tmp_path / "bad.csv").write_text("ID,Label\nID_x_epidural,7\n")
    db = f"sqlite:///{tmp_path / 'c.db'}"
    args = ["ingest", str(tmp_path / "dicom" / "alpha"), "--site", "alpha", "--db", db]
    assert main([*args, "--labels", str(tmp_path / "bad.csv"), "--no-progress"]) == 2
    assert "bad.csv" in capsys.readouterr().err
    from sqlalchemy import func, select

    from ichkit.catalog import Instance, open_catalog

    with open_catalog(db).connect() as c:
        assert c.execute(select(func.count()).select_from(Instance)).scalar_one() == 0


def test_a_mistyped_db_is_not_a_new_empty_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # qc's default --out is ./qc.csv
    typo = tmp_path / "typo.db"
    out = ["--out", str(tmp_path / "o")]
    for args in (["qc"], ["split"], ["stats", *out], ["export", *out]):
        assert main([*args, "--db", f"sqlite:///{typo}"]) == 2, args
        assert "no catalog database at" in capsys.readouterr().err
    assert not typo.exists() and not (tmp_path / "qc.csv").exists()
