"""Tests of ``ichkit score``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from ichkit.cli import main
from ichkit.labels import LABELS


def _write(path: Path, table: Mapping[str, tuple[object, ...]], header: str = "ID,Label") -> Path:
    lines = [header] + [
        f"ID_{img}_{lab},{v}"
        for img, vals in table.items()
        for lab, v in zip(LABELS, vals, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TRUTH = {"a": (0, 1, 0, 0, 0, 1), "b": (0, 0, 0, 0, 0, 0), "c": (1, 0, 1, 0, 1, 1)}
PRED = {
    "a": (0.1, 0.8, 0.2, 0.1, 0.1, 0.9),
    "b": (0.2, 0.1, 0.1, 0.2, 0.1, 0.3),
    "c": (0.7, 0.2, 0.6, 0.1, 0.6, 0.8),
}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return _write(tmp_path / "sub.csv", PRED), _write(tmp_path / "truth.csv", TRUTH)


def _expected_wll() -> float:
    true = np.array(list(TRUTH.values()), dtype=float)
    pred = np.array(list(PRED.values()))
    losses = -(true * np.log(pred) + (1 - true) * np.log(1 - pred))
    return float((losses @ np.array([1, 1, 1, 1, 1, 2.0]) / 7).mean())


def test_score_json(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    sub, truth = files
    rc = main(["score", str(sub), str(truth), "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    payload = json.loads(out.out)
    assert payload["n_images"] == 3
    assert payload["weighted_log_loss"] == pytest.approx(_expected_wll(), rel=1e-12)
    assert list(payload["per_label"]) == list(LABELS)
    assert set(payload["per_label"]["any"]) == {"log_loss", "auc"}
    assert payload["per_label"]["subarachnoid"]["auc"] is None  # one class only


def test_score_table(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    sub, truth = files
    rc = main(["score", str(sub), str(truth)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "weighted log loss" in out
    assert f"{_expected_wll():.6f}" in out
    for lab in LABELS:
        assert lab in out
    assert "3 images" in out


def test_score_exams_and_bootstrap(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sub, truth = files
    exams = tmp_path / "exams.csv"
    exams.write_text("image_id,study\na,s1\nb,s2\nc,s3\n", encoding="utf-8")
    rc = main(["score", str(sub), str(truth), "--exams", str(exams), "--bootstrap", "30", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert payload["n_exams"] == 3
    assert payload["bootstrap"]["n_boot"] == 30
    low, high = payload["bootstrap"]["weighted_log_loss"]
    assert low <= payload["weighted_log_loss"] <= high
    rc = main(["score", str(sub), str(truth), "--exams", str(exams), "--bootstrap", "30"])
    out = capsys.readouterr().out
    assert rc == 0 and "exam AUC" in out and "95% CI" in out


@pytest.mark.parametrize(
    ("table", "pattern"),
    [
        ({**PRED, "zzz": PRED["a"]}, "line 20: image 'zzz' of row ID_zzz_epidural is not in"),
        ({"a": PRED["a"], "c": PRED["c"]}, "ID: row ID_b_epidural is missing"),
        ({**PRED, "b": (0.1, 0.1, 1.2, 0, 0, 0)}, "line 10: value of ID_b_intraventricular 1.2"),
        (
            {**PRED, "b": (0.1, 0.1, "nan", 0, 0, 0)},
            "line 10: value of ID_b_intraventricular is NaN",
        ),
    ],
)
def test_bad_submission_exits_2(
    tmp_path: Path,
    files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    table: dict[str, tuple[object, ...]],
    pattern: str,
) -> None:
    _, truth = files
    sub = _write(tmp_path / "bad.csv", table)
    rc = main(["score", str(sub), str(truth), "--json"])
    out = capsys.readouterr()
    assert rc == 2
    assert out.out == ""
    assert out.err.startswith("ichkit: error: ")
    assert f"bad.csv: {pattern}" in out.err
    assert "Traceback" not in out.err


def test_missing_files_and_bad_header(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sub, truth = files
    assert main(["score", str(tmp_path / "none.csv"), str(truth)]) == 2
    assert "none.csv: file not found" in capsys.readouterr().err
    assert main(["score", str(sub), str(tmp_path / "no-truth.csv")]) == 2
    assert "no-truth.csv: file not found" in capsys.readouterr().err
    bad = _write(tmp_path / "hdr.csv", PRED, header="Image,Prob")
    assert main(["score", str(bad), str(truth)]) == 2
    assert "hdr.csv: line 1: header is 'Image,Prob'" in capsys.readouterr().err


def test_usage_errors(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    sub, truth = files
    assert main(["score", str(sub)]) == 2
    assert main(["score", str(sub), str(truth), "--bootstrap", "-1"]) == 2
    capsys.readouterr()


def test_help_stays_light() -> None:
    """``ichkit --help`` and ``ichkit score --help`` import neither numpy nor pandas."""
    code = (
        "import sys\n"
        "from ichkit.cli import main\n"
        "main(['--help']); main(['score', '--help'])\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'sklearn') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "SUBMISSION" in result.stdout


def test_perfect_submission_scores_zero(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, truth = files
    perfect = _write(tmp_path / "perfect.csv", TRUTH)
    assert main(["score", str(perfect), str(truth), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["weighted_log_loss"] == pytest.approx(0.0, abs=1e-13)
    assert not math.isnan(payload["per_label"]["any"]["auc"])
