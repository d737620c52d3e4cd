"""The pure core: accept rules, values (ages, dates, descriptors), encodings."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from deid_helpers import ct_dataset, write
from pydicom.encaps import encapsulate
from pydicom.uid import ImplicitVRLittleEndian, JPEGLosslessSV1

from ichkit.deid import (
    Pseudonymizer,
    Reason,
    SiteKey,
    check_accept,
    deidentify_dataset,
    deidentify_file,
    deidentify_tree,
    load_profile,
)
from ichkit.deid._engine import keep_age
from ichkit.errors import DicomError, NotDicomError

KEY = SiteKey(site="T", secret=bytes(32))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("045Y", "045Y"),
        ("45", "045Y"),
        ("003M", "003M"),
        ("095Y", "090Y"),
        ("forty", None),
        ("", None),
    ],
)
def test_age_kept_within_as_rules(value: str, expected: str | None) -> None:
    # PS3.5 6.2 AS: nnnD|W|M|Y; ages over 89 aggregated (HIPAA Safe Harbor).
    assert keep_age(value, max_years=89) == expected


@pytest.mark.parametrize(
    ("iop", "reason"),
    [
        ([1, 0, 0, 0, 0.98162718, -0.190809], None),  # rsna-series-a: 11 degree tilt
        ([0, 1, 0, 0, 0, -1], Reason.NON_AXIAL),  # sagittal
        ([1, 0, 0, 0, 0, -1], Reason.NON_AXIAL),  # coronal
    ],
)
def test_axial_only(iop: list[float], reason: Reason | None) -> None:
    ds = ct_dataset(0)
    ds.ImageOrientationPatient = iop
    found = check_accept(ds, load_profile().accept)
    assert (found[0] if found else None) == reason


def test_missing_orientation_and_uid() -> None:
    ds = ct_dataset(0)
    del ds.ImageOrientationPatient
    assert check_accept(ds, load_profile().accept) == (
        Reason.NON_AXIAL,
        "ImageOrientationPatient missing or invalid",
    )
    ds = ct_dataset(0)
    del ds.SeriesInstanceUID
    assert check_accept(ds, load_profile().accept) == (
        Reason.MISSING_UID,
        "SeriesInstanceUID missing or empty",
    )


def test_truncated_native_pixel_data() -> None:
    ds = ct_dataset(0)
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    # Cut the value but keep the declared length: pydicom reads a short value.
    read = pydicom.dcmread(BytesIO(data[:-10]))
    found = check_accept(read, load_profile().accept)
    assert found is not None and found[0] is Reason.TRUNCATED


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("AX BRAIN 5mm", True),
        ("CT HEAD W/O CONTRAST", True),
        ("Head 0.625 STD", True),
        ("CT HEAD for John Doe", False),
        ("BRAIN 20190314", False),
        ("Smith protocol", False),
        # numbers joined by - / . are dates or ID numbers, not descriptors
        ("CT HEAD 12/03/19", False),
        ("HEAD 03-12-19", False),
        ("3.12.19", False),
        ("CT HEAD 123-456-789", False),
        ("HEAD 12/03", False),
        # decimals and measures joined by / are not dates
        ("HEAD 2.5/2.5", True),
        ("AX 5mm/5mm", True),
    ],
)
def test_clean_descriptors(text: str, kept: bool) -> None:
    ds = ct_dataset(0)
    ds.SeriesDescription = text
    deidentify_dataset(ds, profile=load_profile(), pseudonymizer=Pseudonymizer(KEY))
    assert (ds.SeriesDescription or "") == (text if kept else "")


def test_dates_shift_and_dt_keeps_time() -> None:
    pseudo = Pseudonymizer(KEY)
    ds = ct_dataset(0)
    ds.AcquisitionDateTime = "20190314101112.5"
    ds.PatientBirthDate = "19500101"
    deidentify_dataset(ds, profile=load_profile(), pseudonymizer=pseudo)
    offset = pseudo.date_offset_days("MRN12345")
    import datetime as dt

    expected = (dt.date(2019, 3, 14) + dt.timedelta(days=offset)).strftime("%Y%m%d")
    assert ds.StudyDate == expected
    assert ds.AcquisitionDateTime == expected + "101112.5"
    assert not ds.PatientBirthDate  # birth date is never retained (E.3.6 excludes it)


def test_mapping_rows() -> None:
    ds = ct_dataset(0)
    ds.AccessionNumber = "ACC0001"
    result = deidentify_dataset(ds, profile=load_profile(), pseudonymizer=Pseudonymizer(KEY))
    kinds = {row.kind: row for row in result.mappings}
    assert set(kinds) >= {
        "patient",
        "study",
        "series",
        "instance",
        "frame_of_reference",
        "accession",
    }
    assert kinds["patient"].original == "MRN12345"
    assert kinds["patient"].detail.startswith("date_offset_days=-")
    assert kinds["accession"].pseudonym == ds.AccessionNumber
    assert len(ds.AccessionNumber) == 16


def test_implicit_vr_and_compressed_pixels_copied_bit_for_bit(
    tmp_path: Path, key_path: Path
) -> None:
    src = tmp_path / "src"
    implicit = ct_dataset(0)
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    write(implicit, src / "implicit.dcm")
    jpeg = ct_dataset(1)
    jpeg.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    frames = [b"\xff\xd8not-really-a-jpeg-but-opaque-bytes\xff\xd9"]
    jpeg.PixelData = encapsulate(frames)
    jpeg["PixelData"].VR = "OB"
    write(jpeg, src / "jpeg.dcm")
    summary = deidentify_tree(src, tmp_path / "out", key=key_path)
    assert summary.deidentified == 2, summary.reasons
    outs = {
        pydicom.dcmread(p).file_meta.TransferSyntaxUID: pydicom.dcmread(p)
        for p in (tmp_path / "out").rglob("*.dcm")
    }
    assert outs[ImplicitVRLittleEndian].PixelData == implicit.PixelData
    assert outs[JPEGLosslessSV1].PixelData == jpeg.PixelData


def test_file_without_preamble_is_read(tmp_path: Path, key_path: Path) -> None:
    ds = ct_dataset(0)
    from pydicom.filebase import DicomBytesIO

    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, True
    del ds.file_meta
    pydicom.filewriter.write_dataset(buf, ds)  # no preamble, no file meta: old-style file
    src = tmp_path / "src"
    src.mkdir()
    (src / "raw").write_bytes(buf.getvalue())
    summary = deidentify_tree(src, tmp_path / "out", key=key_path)
    assert summary.deidentified == 1, summary.reasons


def test_deidentify_file(tmp_path: Path) -> None:
    path = write(ct_dataset(0), tmp_path / "a.dcm")
    ds, out = deidentify_file(path, key=KEY)
    assert out.endswith(f"/{ds.SOPInstanceUID}.dcm") and out.startswith("T-")
    (tmp_path / "b.txt").write_text("x")
    with pytest.raises(NotDicomError, match=r"b\.txt: not a DICOM file"):
        deidentify_file(tmp_path / "b.txt", key=KEY)
    loc = ct_dataset(1)
    loc.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    write(loc, tmp_path / "loc.dcm")
    with pytest.raises(DicomError, match="would be quarantined: localizer: ImageType"):
        deidentify_file(tmp_path / "loc.dcm", key=KEY)


def test_a_descriptor_too_long_to_read_is_not_kept(tmp_path: Path, key_path: Path) -> None:
    """A value over the reader's defer size is never checked, so it must not pass."""
    import warnings

    ds = ct_dataset(0)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian  # no 64 kB limit on a value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # over LO's 64 characters, on purpose
        ds.StudyDescription = "CT HEAD JOHN DOE MRN 55555 " * 3000  # ~80 kB, read lazily
        write(ds, tmp_path / "src" / "a.dcm")
    summary = deidentify_tree(tmp_path / "src", tmp_path / "out", key=key_path)
    assert summary.deidentified == 1, summary.reasons
    (out,) = (tmp_path / "out").rglob("*.dcm")
    assert b"JOHN DOE" not in out.read_bytes()
    assert not pydicom.dcmread(out).get("StudyDescription")


def test_the_source_preamble_is_not_copied(tmp_path: Path, key_path: Path) -> None:
    """The fallback writer (deflated input) writes a zero preamble, not the source's."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = ct_dataset(0)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.preamble = b"PATIENT DOE^JOHN MRN123".ljust(128, b"\0")
    write(ds, tmp_path / "src" / "a.dcm")
    assert (tmp_path / "src" / "a.dcm").read_bytes()[:7] == b"PATIENT"
    summary = deidentify_tree(tmp_path / "src", tmp_path / "out", key=key_path)
    assert summary.deidentified == 1, summary.reasons
    (out,) = (tmp_path / "out").rglob("*.dcm")
    assert out.read_bytes()[:132] == b"\0" * 128 + b"DICM"


def test_encrypted_attributes_and_free_code_text_do_not_pass(tmp_path: Path) -> None:
    """Encrypted original attributes are removed; CodeMeaning is cleaned in kept sequences."""
    from pydicom.dataset import Dataset

    ds = ct_dataset(0)
    encrypted = Dataset()
    encrypted.EncryptedContentTransferSyntaxUID = "1.2.840.10008.1.2.1"
    encrypted.EncryptedContent = b"SECRETPHI!"
    ds.EncryptedAttributesSequence = [encrypted]
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "X1", "99LOCAL", "DOE JOHN"
    ds.WaterEquivalentDiameterCalculationMethodCodeSequence = [code]
    deidentify_dataset(ds, profile=load_profile(), pseudonymizer=Pseudonymizer(KEY))
    assert "EncryptedAttributesSequence" not in ds
    (item,) = ds.WaterEquivalentDiameterCalculationMethodCodeSequence
    assert item.CodeValue == "X1" and not item.get("CodeMeaning")
    assert all(c.CodeMeaning for c in ds.DeidentificationMethodCodeSequence)  # ichkit's own


def test_a_non_ascii_patient_id_is_keyed_by_its_characters(tmp_path: Path) -> None:
    """The same PatientID written in UTF-8 and in Latin-1 is the same patient."""
    out = []
    for charset in ("ISO_IR 192", "ISO_IR 100"):
        ds = ct_dataset(0)
        ds.SpecificCharacterSet = charset
        ds.PatientID = "Müller7"
        path = write(ds, tmp_path / f"{charset[-3:]}.dcm")
        done, _ = deidentify_file(path, key=KEY)
        out.append(str(done.PatientID))
    assert out[0] == out[1]


def test_an_overlay_in_the_pixel_bits_is_quarantined() -> None:
    ds = ct_dataset(0)
    ds.add_new(0x60000100, "US", 16)  # OverlayBitsAllocated: embedded in Pixel Data
    ds.add_new(0x60000102, "US", 12)  # OverlayBitPosition
    assert check_accept(ds, load_profile().accept) == (
        Reason.BURNED_IN_ANNOTATION,
        "overlay in the pixel data's bit 12 (6000,0102 OverlayBitPosition)",
    )
    ds[0x60000102].value = 0  # a separate overlay (6000,3000): removed with its group
    assert check_accept(ds, load_profile().accept) is None
