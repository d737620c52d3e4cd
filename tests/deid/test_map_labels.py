"""Labels keyed by original UIDs re-keyed to the pseudonyms ``ichkit deid`` writes."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from deid_helpers import REALDATA, ct_dataset, write

from ichkit.cli import main
from ichkit.deid import (
    DEFAULT_PROFILE_PATH,
    Pseudonymizer,
    deidentify_tree,
    load_profile,
    map_exams,
    map_labels,
    map_labels_file,
    original_sop_instance_uid,
    read_key,
)
from ichkit.errors import ConfigError, LabelsError
from ichkit.labels import LABELS, image_id, read_labels, write_labels

# (PatientID, StudyInstanceUID, SeriesInstanceUID, slices): two patients, one
# with two studies, and one with an empty PatientID (keyed by its study).
EXAMS = (
    ("MRN001", "1.2.826.0.1.3680043.10.995.11", "1.2.826.0.1.3680043.10.995.111", 3),
    ("MRN001", "1.2.826.0.1.3680043.10.995.12", "1.2.826.0.1.3680043.10.995.121", 2),
    ("00042", "1.2.826.0.1.3680043.10.995.21", "1.2.826.0.1.3680043.10.995.211", 2),
    ("", "1.2.826.0.1.3680043.10.995.31", "1.2.826.0.1.3680043.10.995.311", 1),
)


def _headers(path: Path) -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RSNA files hold non-standard UIDs (ID_...)
        ds = pydicom.dcmread(path)
        return {
            "sop": str(ds.SOPInstanceUID),
            "patient": str(ds.get("PatientID", "")),
            "study": str(ds.StudyInstanceUID),
            "series": str(ds.SeriesInstanceUID),
            "pixels": hashlib.sha256(bytes(ds.PixelData)).hexdigest(),
        }


def _by_pixels(root: Path) -> dict[str, dict[str, str]]:
    """Headers of every DICOM file under ``root``, keyed by a digest of its Pixel Data.

    De-identification leaves Pixel Data bit for bit, so the digest pairs each
    output with its input without relying on ichkit's own mapping.
    """
    found: dict[str, dict[str, str]] = {}
    for path in sorted(root.rglob("*.dcm")):
        headers = _headers(path)
        assert headers["pixels"] not in found, f"two files share Pixel Data: {path}"
        found[headers["pixels"]] = headers
    return found


def _tree(src: Path) -> None:
    index = 0
    for patient, study, series, slices in EXAMS:
        for _ in range(slices):
            ds = ct_dataset(index, patient_id=patient, study_uid=study, series_uid=series)
            write(ds, src / f"exam{study[-2:]}" / f"slice{index}.dcm")
            index += 1
    scout = ct_dataset(index, study_uid=EXAMS[0][1], series_uid=EXAMS[0][2] + ".9")
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    write(scout, src / "scout.dcm")  # quarantined: its label is still mapped


def _truth(src: Path, path: Path) -> pd.DataFrame:
    """Write labels keyed by the original SOPInstanceUIDs (probabilities, so that
    any change of a value shows)."""
    originals = sorted(_by_pixels(src).values(), key=lambda h: h["sop"])
    rng = np.random.default_rng(7)
    values = rng.random((len(originals), len(LABELS))).round(6)
    index = pd.Index([image_id(h["sop"]) for h in originals], name="image_id")
    wide = pd.DataFrame(values, index=index, columns=list(LABELS))
    write_labels(path, wide)
    return read_labels(path)


def _exams_csv(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["site", "patient", "study", "series", *LABELS])
        for n, (patient, study, series, _) in enumerate(EXAMS):
            writer.writerow(["site-a", patient, study, series, *([n % 2] * len(LABELS))])


@pytest.fixture
def deidentified(tmp_path: Path, key_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src)
    summary = deidentify_tree(src, dst, key=key_path)
    assert (summary.deidentified, summary.quarantined) == (8, 1)
    return src, dst


def _check_labels(
    src: Path, dst: Path, truth: pd.DataFrame, mapped: pd.DataFrame, *, quarantined: int
) -> None:
    originals, outputs = _by_pixels(src), _by_pixels(dst)
    assert len(outputs) == len(originals) - quarantined
    assert mapped.index.is_unique and len(mapped) == len(truth)
    expected = {}
    for pixels, original in originals.items():
        if pixels in outputs:
            expected[image_id(original["sop"])] = outputs[pixels]["sop"]
    assert len(expected) == len(outputs)
    position = {im: i for i, im in enumerate(truth.index)}
    for original_image, output_sop in expected.items():
        row = position[original_image]
        assert mapped.index[row] == output_sop  # same row, now keyed by the output's UID
        np.testing.assert_array_equal(mapped.iloc[row].to_numpy(), truth.iloc[row].to_numpy())
    # The quarantined images are mapped too, to a UID that no output carries.
    others = set(mapped.index) - set(expected.values())
    assert len(others) == quarantined
    assert all(o.startswith("2.25.") for o in others)
    np.testing.assert_array_equal(mapped.to_numpy(), truth.to_numpy())


def test_map_labels_file_matches_output_uids(
    tmp_path: Path, key_path: Path, deidentified: tuple[Path, Path]
) -> None:
    src, dst = deidentified
    truth = _truth(src, tmp_path / "truth.csv")
    _exams_csv(tmp_path / "exams.csv")
    summary = map_labels_file(
        tmp_path / "truth.csv",
        tmp_path / "mapped" / "truth.csv",
        key=key_path,
        exams=tmp_path / "exams.csv",
        exams_out=tmp_path / "mapped" / "exams.csv",
    )
    assert (summary.images, summary.exams) == (9, 4)
    assert summary.key_fingerprint == read_key(key_path).fingerprint
    mapped = read_labels(tmp_path / "mapped" / "truth.csv")
    _check_labels(src, dst, truth, mapped, quarantined=1)

    # Exams: every mapped (patient, study, series) is that of the exam's output files.
    out_exams = {(h["patient"], h["study"], h["series"]) for h in _by_pixels(dst).values()}
    originals = {(h["patient"], h["study"], h["series"]) for h in _by_pixels(src).values()}
    text = (tmp_path / "mapped" / "exams.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    source = list(csv.DictReader((tmp_path / "exams.csv").read_text("utf-8").splitlines()))
    assert len(rows) == len(EXAMS)
    for row, before in zip(rows, source, strict=True):
        assert (before["patient"], before["study"], before["series"]) in originals
        assert (row["patient"], row["study"], row["series"]) in out_exams
        assert row["patient"].startswith("TEST-")
        # Other columns (site, exam labels) and their text are kept.
        assert {k: v for k, v in row.items() if k not in ("patient", "study", "series")} == {
            k: v for k, v in before.items() if k not in ("patient", "study", "series")
        }
    patients = [r["patient"] for r in rows]
    assert patients[0] == patients[1] and len(set(patients)) == 3  # one patient, two studies


def test_map_in_memory_and_with_profile(
    tmp_path: Path, key_path: Path, deidentified: tuple[Path, Path]
) -> None:
    src, dst = deidentified
    truth = _truth(src, tmp_path / "truth.csv")
    key = read_key(key_path)
    mapped = map_labels(truth, key, profile=load_profile())
    _check_labels(src, dst, truth, mapped, quarantined=1)
    assert truth.index[0] != mapped.index[0]  # the input table is not changed
    assert map_labels(truth, key_path).equals(mapped)  # a key file works as well
    exams = pd.DataFrame(
        [("s", p, st, se) for p, st, se, _ in EXAMS], columns=["site", "patient", "study", "series"]
    )
    out = map_exams(exams, key)
    assert list(out["site"]) == ["s"] * len(EXAMS)
    outputs = {(h["patient"], h["study"], h["series"]) for h in _by_pixels(dst).values()}
    assert set(zip(out["patient"], out["study"], out["series"], strict=True)) == outputs


def test_rsna_ids_without_prefix() -> None:
    assert original_sop_instance_uid("63eb1e259") == "ID_63eb1e259"
    assert original_sop_instance_uid("ID_63eb1e259") == "ID_63eb1e259"
    assert original_sop_instance_uid("1.2.3.4") == "1.2.3.4"
    assert original_sop_instance_uid("000000123") == "ID_000000123"  # all digits, no dot


def test_map_labels_file_replaces_its_input(tmp_path: Path, key_path: Path) -> None:
    wide = pd.DataFrame(
        [[0, 1, 0, 0, 0, 1]], index=pd.Index(["1.2.3.4"], name="image_id"), columns=list(LABELS)
    )
    path = write_labels(tmp_path / "truth.csv", wide)
    map_labels_file(path, path, key=key_path)
    expected = Pseudonymizer(read_key(key_path)).uid("1.2.3.4")
    assert list(read_labels(path).index) == [expected]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "truth.csv"]  # no temp left


def test_synth_deid_map_labels_end_to_end(tmp_path: Path, key_path: Path) -> None:
    """`ichkit synth` → `ichkit deid` → `ichkit deid map-labels`: every labelled image
    that was de-identified is found under its pseudonym with its labels, and every
    exam under its pseudonymous patient, study and series."""
    synth = tmp_path / "synth"
    args = ["synth", str(synth), "--exams", "2", "--seed", "3", "--size", "32", "--slices", "3"]
    assert main([*args, "--no-progress"]) == 0
    dst = tmp_path / "dst"
    status = main(["deid", str(synth / "dicom"), str(dst), "--key", str(key_path), "--no-progress"])
    assert status in (0, 3)  # synth also writes scouts and dose screens, quarantined
    mapped_csv, mapped_exams = tmp_path / "truth-deid.csv", tmp_path / "exams-deid.csv"
    assert (
        main(
            [
                "deid",
                "map-labels",
                str(synth / "truth.csv"),
                str(mapped_csv),
                "--key",
                str(key_path),
                "--exams",
                str(synth / "exams.csv"),
                "--exams-out",
                str(mapped_exams),
            ]
        )
        == 0
    )
    truth, mapped = read_labels(synth / "truth.csv"), read_labels(mapped_csv)
    originals, outputs = _by_pixels(synth / "dicom"), _by_pixels(dst)
    pairs = {image_id(o["sop"]): outputs[p]["sop"] for p, o in originals.items() if p in outputs}
    labelled = [im for im in truth.index if im in pairs]
    assert len(labelled) == len(truth)  # every labelled image was de-identified
    assert list(mapped.index) == [pairs[im] for im in truth.index]
    np.testing.assert_array_equal(mapped.to_numpy(), truth.to_numpy())
    out_exams = {(h["patient"], h["study"], h["series"]) for h in outputs.values()}
    rows = pd.read_csv(mapped_exams, dtype=str, keep_default_na=False)
    before = pd.read_csv(synth / "exams.csv", dtype=str, keep_default_na=False)
    assert len(rows) == 2
    for _, row in rows.iterrows():
        assert (row["patient"], row["study"], row["series"]) in out_exams
    assert rows.drop(columns=["patient", "study", "series"]).equals(
        before.drop(columns=["patient", "study", "series"])
    )


@pytest.mark.realdata
def test_real_rsna_ids(tmp_path: Path, key_path: Path) -> None:
    """RSNA files hold SOPInstanceUIDs ``ID_<hex>``; their labels name ``<hex>``."""
    series = REALDATA / "rsna-series-a"
    if not series.is_dir():
        pytest.skip(f"real data not found at {series}")
    src = tmp_path / "src"
    src.mkdir()
    for path in sorted(series.iterdir())[:3]:
        (src / path.name).symlink_to(path)
    dst = tmp_path / "dst"
    assert deidentify_tree(src, dst, key=key_path).exit_status == 0
    truth = _truth(src, tmp_path / "truth.csv")
    assert all("." not in im for im in truth.index)  # ids without the ID_ prefix
    _check_labels(src, dst, truth, map_labels(truth, key_path), quarantined=0)


# ------------------------------------------------------------------------- errors


def test_missing_key_file(tmp_path: Path) -> None:
    wide = pd.DataFrame([[0.0] * 6], index=pd.Index(["1.2.3"]), columns=list(LABELS))
    path = write_labels(tmp_path / "truth.csv", wide)
    with pytest.raises(ConfigError, match=r"none\.key: cannot read key file"):
        map_labels_file(path, tmp_path / "out.csv", key=tmp_path / "none.key")
    assert not (tmp_path / "out.csv").exists()


def test_malformed_labels_csv_names_line(tmp_path: Path, key_path: Path) -> None:
    path = tmp_path / "truth.csv"
    path.write_text("ID,Label\nID_1.2.3_epidural,0\nID_1.2.3_bleed,1\n", encoding="utf-8")
    with pytest.raises(LabelsError, match=r"truth\.csv.*line 3.*bleed"):
        map_labels_file(path, tmp_path / "out.csv", key=key_path)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("site,patient,series\ns,P,1.2\n", r"exams\.csv: columns: exams table lacks column\(s\) "),
        ("site,patient,study,series\ns,P,1.2\n", r"exams\.csv: line 2: 3 fields; expected 4"),
        ("site,patient,study,series\ns,P,1.2,1.3\n\ns,P,,1.3\n", r"line 4: study is empty"),
        ("", r"exams\.csv: file is empty; expected a header with patient, study, series"),
        ("patient,study,patient,series\n", r"line 1: column 'patient' appears twice"),
    ],
    ids=["no-study-column", "ragged", "empty-study", "empty-file", "repeated-column"],
)
def test_malformed_exams_csv(tmp_path: Path, key_path: Path, text: str, message: str) -> None:
    labels = write_labels(
        tmp_path / "truth.csv",
        pd.DataFrame([[0.0] * 6], index=pd.Index(["1.2.3"]), columns=list(LABELS)),
    )
    exams = tmp_path / "exams.csv"
    exams.write_text(text, encoding="utf-8")
    with pytest.raises(LabelsError, match=message):
        map_labels_file(
            labels, tmp_path / "o.csv", key=key_path, exams=exams, exams_out=tmp_path / "e.csv"
        )
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "e.csv").exists()


def test_exams_options_go_together(tmp_path: Path, key_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"exams_out: exams given without exams_out"):
        map_labels_file("t.csv", "o.csv", key=key_path, exams=tmp_path / "exams.csv")


def test_profile_that_keeps_uids_is_refused(tmp_path: Path, key_path: Path) -> None:
    data = json.loads(DEFAULT_PROFILE_PATH.read_text(encoding="utf-8"))
    data["tags"]["(0008,0018)"]["action"] = "keep"
    custom = tmp_path / "keep-uids.json"
    custom.write_text(json.dumps(data), encoding="utf-8")
    wide = pd.DataFrame([[0.0] * 6], index=pd.Index(["1.2.3"]), columns=list(LABELS))
    with pytest.raises(ConfigError, match=r"SOPInstanceUID: profile .* action 'keep', not 'uid'"):
        map_labels(wide, key_path, profile=load_profile(custom))


def test_copy_of_default_profile_is_accepted(tmp_path: Path, key_path: Path) -> None:
    shutil.copy(DEFAULT_PROFILE_PATH, tmp_path / "p.json")
    wide = pd.DataFrame([[0.0] * 6], index=pd.Index(["1.2.3"]), columns=list(LABELS))
    assert len(map_labels(wide, key_path, profile=load_profile(tmp_path / "p.json"))) == 1


def test_only_deidentified_keeps_this_sites_written_images(
    tmp_path: Path, key_path: Path, deidentified: tuple[Path, Path]
) -> None:
    src, dst = deidentified
    truth = _truth(src, tmp_path / "truth.csv")
    # Another site's exam in the same labels file, and in exams.csv.
    other = truth.iloc[:1].copy()
    other.index = pd.Index(["1.2.826.0.1.3680043.10.995.99.1"], name="image_id")
    write_labels(tmp_path / "truth.csv", pd.concat([truth, other]))
    _exams_csv(tmp_path / "exams.csv")
    with (tmp_path / "exams.csv").open("a", encoding="utf-8") as handle:
        handle.write(
            "site-b,MRN999,1.2.826.0.1.3680043.10.995.99,1.2.826.0.1.3680043.10.995.991,"
            + ",".join(["1"] * len(LABELS))
            + "\n"
        )
    rc = main(
        [
            "deid", "map-labels", str(tmp_path / "truth.csv"), str(tmp_path / "mine.csv"),
            "--key", str(key_path), "--exams", str(tmp_path / "exams.csv"),
            "--exams-out", str(tmp_path / "mine-exams.csv"), "--only-deidentified",
        ]
    )  # fmt: skip
    assert rc == 0
    mapped = read_labels(tmp_path / "mine.csv")
    written = {h["sop"] for h in _by_pixels(dst).values()}
    # Exactly the written images: neither the quarantined scout nor the other site's image.
    assert set(mapped.index) == written
    rows = list(csv.DictReader((tmp_path / "mine-exams.csv").read_text("utf-8").splitlines()))
    assert len(rows) == len(EXAMS)
    assert {r["site"] for r in rows} == {"site-a"}
