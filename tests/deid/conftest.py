"""Fixtures for the de-identification tests: small CT files with planted PHI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from deid_helpers import (
    INNER_SQ,
    OUTER_SQ,
    SERIES_UID,
    STUDY_UID,
    _planted_item,
    ct_dataset,
    plantable,
    table_rows,
    write,
)
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import SecondaryCaptureImageStorage

from ichkit.deid import generate_key


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    """A fresh site key (site TEST) outside every SRC/DST."""
    path = tmp_path / "keys" / "site.key"
    generate_key(path, site="TEST")
    return path


@pytest.fixture
def make_ct() -> Callable[..., Dataset]:
    """Factory of minimal CT datasets (see :func:`ct_dataset`)."""
    return ct_dataset


@pytest.fixture
def phi_dataset() -> Callable[[int], tuple[Dataset, dict[int, tuple[str, str]]]]:
    """Factory: a CT slice with every plantable Table E.1-1 attribute planted, at top
    level and two kept sequences deep, plus private tags; returns (dataset, planted)."""
    planted = plantable(table_rows())

    def build(index: int) -> tuple[Dataset, dict[int, tuple[str, str]]]:
        ds = _planted_item(planted)
        base = ct_dataset(index, study_uid=STUDY_UID, series_uid=SERIES_UID)
        for elem in base:
            ds[elem.tag] = elem
        ds.file_meta = base.file_meta
        inner = _planted_item(planted)
        inner.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.998.100"  # file 0's SOP UID
        inner_sq_item = Dataset()
        inner_sq_item.add_new(INNER_SQ, "SQ", Sequence([inner]))
        for tag, (vr, value) in planted.items():
            inner_sq_item.add_new(tag, vr, value)
        ds.add_new(OUTER_SQ, "SQ", Sequence([inner_sq_item]))
        # Private block with a creator and two values.
        ds.add_new(0x00110010, "LO", "PHI PRIVATE CREATOR")
        ds.add_new(0x00111001, "LO", "PHIPRIVATE0001")
        ds.add_new(0x00111002, "UN", b"PHIPRIVATEBYTES1")
        ds.add_new(0x00090010, "LO", "SAFE CREATOR")
        ds.add_new(0x00091001, "LO", "SAFEPRIVATEVALUE")
        return ds, planted

    return build


@pytest.fixture
def write_dicom() -> Callable[[Dataset, Path], Path]:
    """Write a dataset as a DICOM file."""
    return write


@pytest.fixture
def mixed_tree(tmp_path: Path) -> Path:
    """SRC with 3 good slices, and one file for each quarantine/skip reason."""
    src = tmp_path / "src" / "DOE^JOHN_MRN12345"
    for i in range(3):
        write(ct_dataset(i), src / "series1" / f"JOHN_DOE_{i}.dcm")
    sc = ct_dataset(10, sop_class=SecondaryCaptureImageStorage)
    write(sc, src / "other" / "dose_screen.dcm")
    loc = ct_dataset(11)
    loc.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    write(loc, src / "other" / "scout.dcm")
    burned = ct_dataset(12)
    burned.BurnedInAnnotation = "YES"
    write(burned, src / "other" / "burned.dcm")
    sagittal = ct_dataset(13)
    sagittal.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    write(sagittal, src / "other" / "sagittal.dcm")
    good = write(ct_dataset(14), tmp_path / "whole.dcm")
    data = good.read_bytes()
    (src / "other" / "truncated.dcm").write_bytes(data[: len(data) - 40])
    (src / "other" / "notes.txt").write_text("Patient John Doe MRN12345\n", encoding="utf-8")
    good.unlink()
    return tmp_path / "src"
