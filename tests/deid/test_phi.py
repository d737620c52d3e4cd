"""No planted PHI survives: every Table E.1-1 attribute, nested, private, file names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from deid_helpers import INNER_SQ, OUTER_SQ, PLANT_DATE, RETAINED, STUDY_UID, table_rows, write
from pydicom.dataset import Dataset

from ichkit.deid import DeidConfig, Pseudonymizer, deidentify_tree, read_key

N_FILES = 3


def _outputs(dst: Path) -> list[Path]:
    return sorted(p for p in dst.rglob("*") if p.is_file())


def _blob(dst: Path) -> bytes:
    """Every output file's bytes and every output path, as one haystack."""
    parts = []
    for path in sorted(dst.rglob("*")):
        parts.append(str(path.relative_to(dst)).encode())
        if path.is_file():
            parts.append(path.read_bytes())
    return b"\n".join(parts)


@pytest.fixture
def phi_run(
    tmp_path: Path,
    key_path: Path,
    phi_dataset: Callable[[int], tuple[Dataset, dict[int, tuple[str, str]]]],
) -> tuple[Path, Path, dict[int, tuple[str, str]], list[Dataset]]:
    src = tmp_path / "in" / "DOE^JOHN_MRN12345"
    sources = []
    planted: dict[int, tuple[str, str]] = {}
    for i in range(N_FILES):
        ds, planted = phi_dataset(i)
        write(ds, src / f"JOHN_DOE_19310102_{i}.dcm")
        sources.append(ds)
    dst = tmp_path / "out"
    summary = deidentify_tree(tmp_path / "in", dst, key=key_path)
    assert summary.exit_status == 0, summary.reasons
    assert summary.deidentified == N_FILES
    return src, dst, planted, sources


def test_covers_most_of_table_e11(phi_run: tuple) -> None:
    # PS3.15 Table E.1-1 (2024b) has 621 rows; the text/date/UID ones pydicom
    # knows are planted: 518 with pydicom 3.0.2 (53 of them TM). Guard against a
    # silent collapse of coverage, not an exact count.
    _, _, planted, _ = phi_run
    rows = table_rows()
    assert len(rows) == 621
    assert len(planted) >= 500, len(planted)


def test_no_planted_value_survives_anywhere(phi_run: tuple) -> None:
    _, dst, planted, _ = phi_run
    blob = _blob(dst)
    leaked = []
    for tag, (vr, value) in planted.items():
        if tag in RETAINED or vr == "TM":
            continue  # kept by the Retain Patient Characteristics / Modified Dates options
        if value.encode() in blob:
            leaked.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {vr} {value}")
    assert leaked == []
    for needle in (
        PLANT_DATE,
        "20190314",
        "MRN12345",
        "DOE",
        "JOHN",
        "PHIPRIVATE",
        "PHI PRIVATE",
        "SAFEPRIVATEVALUE",
        "PHIMETAAE",
        "1.2.826.0.1.3680043.10.",
    ):
        assert needle.encode() not in blob, needle


def test_options_retain_what_they_say(phi_run: tuple) -> None:
    _, dst, planted, _ = phi_run
    out = pydicom.dcmread(next(dst.rglob("*.dcm")))
    assert out.PatientSex == planted[0x00100040][1]
    assert out.PatientAge == "077Y"
    assert out.StudyTime == "101112"  # Modified Dates: times kept, dates shifted by days
    assert out.StudyDate != "20190314"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert out.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107", "113108", "113105"]
    assert all(i.CodingSchemeDesignator == "DCM" for i in out.DeidentificationMethodCodeSequence)
    assert out.SeriesDescription == "AX BRAIN 5mm"  # only safe words: kept
    assert out.StudyDescription == ""  # "for John Doe": emptied


def test_nested_items_cleaned_two_deep(phi_run: tuple) -> None:
    _, dst, planted, _ = phi_run
    out = pydicom.dcmread(next(dst.rglob("*.dcm")))
    inner = out[OUTER_SQ].value[0][INNER_SQ].value[0]
    kept = {int(e.tag) for e in inner}
    assert kept, "the kept sequences keep their items"
    for tag in kept:
        if tag in planted and tag not in RETAINED and planted[tag][0] != "TM":
            assert str(inner[tag].value) != planted[tag][1]
    assert not any(e.tag.is_private for e in out.iterall())


def test_uids_consistent_and_pixels_identical(phi_run: tuple, key_path: Path) -> None:
    _, dst, _, sources = phi_run
    pseudo = Pseudonymizer(read_key(key_path))
    outs = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in dst.rglob("*.dcm")}
    assert len(outs) == N_FILES
    first_sop = pseudo.uid(sources[0].SOPInstanceUID)
    assert first_sop in outs
    for src_ds in sources:
        out = outs[pseudo.uid(src_ds.SOPInstanceUID)]
        assert out.StudyInstanceUID == pseudo.uid(STUDY_UID)
        assert out.SeriesInstanceUID == pseudo.uid(src_ds.SeriesInstanceUID)
        assert out.FrameOfReferenceUID == pseudo.uid(src_ds.FrameOfReferenceUID)
        assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
        assert out.PixelData == src_ds.PixelData
        assert out.RescaleIntercept == src_ds.RescaleIntercept
        inner = out[OUTER_SQ].value[0][INNER_SQ].value[0]
        assert inner.ReferencedSOPInstanceUID == first_sop
        assert out.SOPInstanceUID.startswith("2.25.") and len(out.SOPInstanceUID) <= 64
        path = dst / out.PatientID / out.StudyInstanceUID / out.SeriesInstanceUID
        assert (path / f"{out.SOPInstanceUID}.dcm").is_file()


def test_safe_private_allow_list(
    tmp_path: Path,
    key_path: Path,
    phi_dataset: Callable[[int], tuple[Dataset, dict[int, tuple[str, str]]]],
) -> None:
    import json

    from ichkit.deid import DEFAULT_PROFILE_PATH

    profile = json.loads(DEFAULT_PROFILE_PATH.read_text(encoding="utf-8"))
    profile["safe_private"] = [{"group": "0009", "creator": "SAFE CREATOR", "element": "01"}]
    custom = tmp_path / "profile.json"
    custom.write_text(json.dumps(profile), encoding="utf-8")
    ds, _ = phi_dataset(0)
    write(ds, tmp_path / "in" / "a.dcm")
    cfg = DeidConfig(profile=str(custom), keep_safe_private=True)
    summary = deidentify_tree(tmp_path / "in", tmp_path / "out", key=key_path, config=cfg)
    assert summary.exit_status == 0
    out = pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))
    assert out[0x00091001].value == "SAFEPRIVATEVALUE"
    assert out[0x00090010].value == "SAFE CREATOR"
    assert 0x00111001 not in out and 0x00110010 not in out
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert "113111" in codes
