"""``ichkit synth``: options, outputs, errors (exit status 2 naming the option)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ichkit.cli import main


def test_synth_writes_dataset_and_dicom_ls_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    rc = main(
        [
            "synth",
            str(out),
            "--exams",
            "2",
            "--seed",
            "3",
            "--size",
            "64",
            "--slices",
            "8",
            "--sites",
            "2",
            "--prevalence",
            "1",
            "--masks",
            "--no-progress",
        ]
    )
    assert rc == 0
    exams = pd.read_csv(out / "exams.csv")
    assert len(exams) == 2 and exams["any"].sum() >= 1  # tiny exams may hide subtle blood
    assert (out / "truth.csv").exists() and (out / "synth-config.json").exists()
    assert len(list((out / "masks").glob("*.npz"))) == 2
    capsys.readouterr()
    assert main(["dicom", "ls", str(out / "dicom"), "--no-progress", "--json"]) == 0
    listing = capsys.readouterr().out
    for series in exams["series"]:
        assert series in listing


def test_synth_progress_bar_and_workers(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    assert (
        main(["synth", str(out), "--exams", "2", "--size", "48", "--slices", "3", "--workers", "2"])
        == 0
    )
    assert len(pd.read_csv(out / "exams.csv")) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prevalence", "2"], "ichkit: error: --prevalence: must lie in [0, 1]; got 2.0"),
        (["--size", "8"], "ichkit: error: --size: must be an integer from 32 to 2048; got 8"),
        (["--workers", "0"], "ichkit: error: --workers: must be an integer >= 1; got 0"),
        (["--subtype-mix", "1,2"], "ichkit: error: --subtype-mix: must be 5 non-negative numbers"),
        (["--subtype-mix", "lots"], "ichkit: error: --subtype-mix: expected rsna, even or five"),
    ],
)
def test_synth_bad_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rc = main(["synth", str(tmp_path / "x"), "--exams", "1", "--no-progress", *args])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_synth_subtype_mix(tmp_path: Path) -> None:
    """--subtype-mix only epidural: every positive exam is epidural and nothing else."""
    out = tmp_path / "ds"
    args = ["--exams", "3", "--size", "64", "--slices", "8", "--prevalence", "1"]
    assert main(["synth", str(out), *args, "--subtype-mix", "1,0,0,0,0", "--no-progress"]) == 0
    exams = pd.read_csv(out / "exams.csv")
    assert exams["any"].sum() >= 1
    assert (exams["epidural"] == exams["any"]).all()
    assert (
        exams[["intraparenchymal", "intraventricular", "subarachnoid", "subdural"]].sum().sum() == 0
    )
    cfg = json.loads((out / "synth-config.json").read_text())
    assert cfg["subtype_weights"] == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_synth_refuses_existing_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    args = ["synth", str(out), "--exams", "1", "--size", "48", "--slices", "3", "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2
    assert "OUT: output folder already holds a dataset" in capsys.readouterr().err


def test_help_lists_synth(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "synth" in capsys.readouterr().out
