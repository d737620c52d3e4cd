"""The fast header parser agrees with pydicom, and falls back where it should."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from dicom_helpers import CQ500, REALDATA, quiet_pydicom, require_realdata, write_ct
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from ichkit.dicom import HEADER_TAGS, iter_files, read_header
from ichkit.dicom._fastheader import parse_header
from ichkit.dicom._header import header_from_dataset, open_dataset

WANTED = frozenset(HEADER_TAGS)


def _slow(path: Path):  # type: ignore[no-untyped-def]
    return header_from_dataset(open_dataset(path, header_only=True, specific_tags=None), path)


def _with_sequence(path: Path, *, implicit: bool, undefined: bool) -> Path:
    write_ct(path, position=(1.5, -2, 3.25))
    ds = pydicom.dcmread(path)
    item = Dataset()
    item.CodeValue = "121327"
    item.CodingSchemeDesignator = "DCM"
    ds.DerivationCodeSequence = Sequence([item])
    ds.PatientName = "Doe^John"
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds["DerivationCodeSequence"].is_undefined_length = undefined
    ds.DerivationCodeSequence[0].is_undefined_length_sequence_item = undefined
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("undefined", [False, True])
def test_sequences_and_implicit_vr(tmp_path: Path, implicit: bool, undefined: bool) -> None:
    path = _with_sequence(tmp_path / "s.dcm", implicit=implicit, undefined=undefined)
    assert parse_header(path, WANTED) is not None
    header = read_header(path)
    assert header == _slow(path)
    assert header.image_position_patient == (1.5, -2.0, 3.25)
    assert header.rows == 8 and header.rescale_intercept == -1024


def test_non_ascii_and_no_preamble_fall_back_to_pydicom(tmp_path: Path) -> None:
    path = write_ct(tmp_path / "latin.dcm")
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientID = "Müller"
    ds.save_as(path)
    assert read_header(path).patient_id == "Müller"
    no_preamble = tmp_path / "raw.dcm"  # no 128-byte preamble and "DICM" (pre-PS3.10 style)
    no_preamble.write_bytes(path.read_bytes()[132:])
    assert parse_header(no_preamble, WANTED) is None
    assert read_header(no_preamble).patient_id == "Müller"


SERIES_CHOICE = {
    "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL", ""],
    "ContrastBolusAgent": "OMNIPAQUE 350",
    "BodyPartExamined": "HEAD",
    "ConvolutionKernel": ["Hr40f", "3"],
}


@pytest.mark.parametrize("implicit", [False, True])
def test_series_choice_attributes(tmp_path: Path, implicit: bool) -> None:
    path = write_ct(tmp_path / "c.dcm", extra=dict(SERIES_CHOICE))
    if implicit:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)
    assert parse_header(path, WANTED) is not None
    header = read_header(path)
    assert header == _slow(path)
    # Empty values keep their place (PS3.3 C.7.6.1.1.2: value 4 may be empty).
    assert header.image_type == ("ORIGINAL", "PRIMARY", "AXIAL", "")
    assert header.contrast_bolus_agent == "OMNIPAQUE 350"
    assert header.body_part_examined == "HEAD"
    assert header.convolution_kernel == "Hr40f\\3"  # multi-valued: joined, as encoded


def test_series_choice_attributes_absent_or_empty(tmp_path: Path) -> None:
    absent = write_ct(tmp_path / "absent.dcm")
    empty = write_ct(
        tmp_path / "empty.dcm",
        extra={"ImageType": "", "ContrastBolusAgent": "", "ConvolutionKernel": ""},
    )
    for path in (absent, empty):
        header = read_header(path)
        assert header == _slow(path), path
        assert header.image_type is None
        assert (header.contrast_bolus_agent, header.body_part_examined) == ("", "")
        assert header.convolution_kernel == ""


def test_series_choice_attributes_non_ascii_fall_back_to_pydicom(tmp_path: Path) -> None:
    path = write_ct(
        tmp_path / "latin.dcm",
        extra={
            "SpecificCharacterSet": "ISO_IR 100",
            "ContrastBolusAgent": "Iomeprol 400 (Iméron)",
            "ConvolutionKernel": ["Hr40f", "3"],
            "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
        },
    )
    header = read_header(path)
    assert header == _slow(path)
    assert header.contrast_bolus_agent == "Iomeprol 400 (Iméron)"
    assert header.convolution_kernel == "Hr40f\\3"
    assert header.image_type == ("ORIGINAL", "PRIMARY", "AXIAL")


@pytest.mark.realdata
def test_series_choice_attributes_on_cq500() -> None:
    require_realdata(CQ500)
    files = sorted(CQ500.glob("*.dcm"))
    with quiet_pydicom():
        for path in files[::10]:
            header = read_header(path)
            assert header == _slow(path), path
            # Values seen with pydicom.dcmread on every CQ500-CT-0 file (GE header).
            assert header.image_type == ("ORIGINAL", "PRIMARY", "AXIAL"), path
            assert header.convolution_kernel == "STANDARD", path
            assert (header.body_part_examined, header.contrast_bolus_agent) == ("", ""), path


@pytest.mark.realdata
def test_fast_path_matches_pydicom_on_real_files() -> None:
    require_realdata()
    files = [p for p in iter_files(REALDATA) if p.suffix == ".dcm"][::7]
    with quiet_pydicom():
        for path in files:
            assert parse_header(path, WANTED) is not None
            assert read_header(path) == _slow(path), path
