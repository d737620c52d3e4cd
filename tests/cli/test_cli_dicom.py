"""``ichkit dicom ls``."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from ichkit.cli import main

_HELPERS = Path(__file__).resolve().parents[1] / "dicom" / "dicom_helpers.py"
_spec = importlib.util.spec_from_file_location("dicom_helpers", _HELPERS)
assert _spec is not None and _spec.loader is not None
helpers = sys.modules.get("dicom_helpers") or importlib.util.module_from_spec(_spec)
if "dicom_helpers" not in sys.modules:
    _spec.loader.exec_module(helpers)


def _tree(root: Path) -> None:
    for z in (0, 5, 10, 20):
        helpers.write_ct(root / "p1" / f"{z}.dcm", position=(0, 0, z), series_uid="1.2.3.4")
    (root / "junk.bin").write_bytes(b"garbage" * 30)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "p1").mkdir()
    _tree(tmp_path)
    return tmp_path


def test_ls_json(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dicom", "ls", str(tree), "--json", "--no-progress"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_files"] == 5
    (series,) = doc["series"]
    assert series["series_instance_uid"] == "1.2.3.4"
    assert series["n_slices"] == 4 and series["slice_spacing"] == 5.0
    assert [f["kind"] for f in series["findings"]] == ["missing_slices"]
    assert [Path(p).name for p in series["files"]] == ["0.dcm", "5.dcm", "10.dcm", "20.dcm"]
    (bad,) = doc["unreadable"]
    assert bad["path"].endswith("junk.bin") and bad["error"] == "NotDicomError"


def test_ls_table(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dicom", "ls", str(tree)]) == 0
    out = capsys.readouterr().out
    assert "SYNTH-1" in out and "1.2.3.4" in out and "missing_slices" in out
    assert "1 unreadable file(s)" in out and "junk.bin" in out


def test_ls_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dicom", "ls", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"ichkit: error: {tmp_path / 'nope'}: DIR: no such folder"


def test_ls_file_is_not_a_folder(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dicom", "ls", str(tree / "junk.bin")]) == 2
    assert "DIR: not a folder" in capsys.readouterr().err


def test_help_does_not_import_pydicom() -> None:
    import subprocess

    code = (
        "import sys\nfrom ichkit.cli import main\n"
        "try:\n    main(['dicom', 'ls', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('pydicom' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "False False"


@pytest.mark.realdata
def test_ls_realdata(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    helpers.require_realdata()
    for name in ("rsna-series-a", "cq500-ct0"):
        shutil.copytree(helpers.REALDATA / name, tmp_path / name)
    assert main(["dicom", "ls", str(tmp_path), "--json", "--no-progress"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {s["patient_id"]: s for s in doc["series"]}
    assert rows["CQ500-CT-0"]["n_slices"] == 238
    assert {f["kind"] for f in rows["CQ500-CT-0"]["findings"]} == {"missing_slices", "gantry_tilt"}
    assert rows["ID_52c1ab5a"]["slice_spacing"] == pytest.approx(5.0, abs=0.05)
    assert doc["unreadable"] == []
    assert np.isfinite(rows["ID_52c1ab5a"]["slice_spacing"])
