"""Helpers for the de-identification tests: small CT files with planted PHI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, SecondaryCaptureImageStorage

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO.parent / "shared" / "dicom-standard" / "confidentiality_profile_attributes.json"
REALDATA = REPO.parent / "shared" / "realdata"

# Values planted per VR; n makes each one unique (fixed width, so none is a
# substring of another). Dates are all one value: shifted, it must disappear.
PLANT_DATE = "19310102"
PLANT_TIME = "101112"
PLANTABLE_VRS = {
    "AE",
    "AS",
    "CS",
    "DA",
    "DT",
    "LO",
    "LT",
    "PN",
    "SH",
    "ST",
    "TM",
    "UC",
    "UI",
    "UR",
    "UT",
}
# Retained by the default options (Retain Patient Characteristics) and checked to survive.
RETAINED = {0x00100040, 0x00101010}  # PatientSex, PatientAge
# Nesting used for "two sequences deep": both kept by the profile, so their
# items are cleaned attribute by attribute rather than dropped whole.
OUTER_SQ = 0x00189304  # CTAcquisitionDetailsSequence
INNER_SQ = 0x00189325  # CTXRayDetailsSequence
STUDY_UID = "1.2.826.0.1.3680043.10.997.1001"
SERIES_UID = "1.2.826.0.1.3680043.10.997.1002"


def plant_value(vr: str, n: int) -> str:
    """Return a unique planted value valid for ``vr``."""
    return {
        "AE": f"PHIAE{n:04d}",
        "AS": f"{n % 1000:03d}W",  # W is not a hex digit: cannot occur in a pseudonym
        "CS": f"PHICS{n:04d}",
        "DA": PLANT_DATE,
        "DT": PLANT_DATE + PLANT_TIME,
        "TM": PLANT_TIME,
        "UI": f"1.2.826.0.1.3680043.10.999.{1000 + n}",
        "UR": f"http://phi.example/u{n:04d}",
        "PN": f"PHIPN^N{n:04d}",
    }.get(vr, f"PHITXT{n:04d}")


def _tag(text: str) -> int | None:
    group, element = text.strip("()").split(",")
    try:
        return int(group + element, 16)
    except ValueError:
        return None


def table_rows() -> list[dict[str, Any]]:
    """Rows of PS3.15 Table E.1-1 (skips the test module when the file is absent)."""
    if not TABLE.is_file():
        pytest.skip(f"PS3.15 Table E.1-1 JSON not found at {TABLE}")
    return list(json.loads(TABLE.read_text(encoding="utf-8")))


def plantable(rows: list[dict[str, Any]]) -> dict[int, tuple[str, str]]:
    """Return {tag: (VR, value)} for every Basic-Profile X/Z/D/U attribute we can plant."""
    out: dict[int, tuple[str, str]] = {}
    n = 0
    for row in rows:
        if row["basicProfile"] in ("K", "C"):
            continue
        tag = _tag(row["tag"])
        if tag is None or tag >> 16 in (0x0000, 0x0002):
            continue
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            continue
        if vr not in PLANTABLE_VRS:
            continue
        n += 1
        out[tag] = (vr, "077Y" if tag == 0x00101010 else plant_value(vr, n))
    return out


def _planted_item(planted: dict[int, tuple[str, str]]) -> Dataset:
    item = Dataset()
    for tag, (vr, value) in planted.items():
        item.add_new(tag, vr, value)
    return item


def ct_dataset(
    index: int,
    *,
    patient_id: str = "MRN12345",
    study_uid: str = STUDY_UID,
    series_uid: str = SERIES_UID,
    sop_class: str = CTImageStorage,
    size: int = 8,
) -> Dataset:
    """A minimal valid axial CT slice with a few identifiers."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.10.998.{100 + index}"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.SourceApplicationEntityTitle = "PHIMETAAE"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.10.998.{100 + index}"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.10.997.1003"
    ds.PatientID = patient_id
    ds.PatientName = "DOE^JOHN"
    ds.StudyDate = "20190314"
    ds.SeriesDescription = "AX BRAIN 5mm"
    ds.StudyDescription = "CT HEAD for John Doe"
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, float(index)]
    ds.InstanceNumber = index + 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.PixelSpacing = [0.5, 0.5]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.PixelData = bytes((index * 7 + i) % 251 for i in range(size * size * 2))
    return ds


def write(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` as a DICOM file (creating folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


SC_UID = SecondaryCaptureImageStorage
