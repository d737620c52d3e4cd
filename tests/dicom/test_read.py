"""Per-file reading: errors, HU conversion, the RSNA 12-bit quirk, compressed syntaxes."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from dicom_helpers import CQ500, SERIES_A, SERIES_B, quiet_pydicom, require_realdata, write_ct

from ichkit.dicom import AIR_HU, load_series, read_header, read_image, read_stored_values
from ichkit.errors import (
    NoPixelDataError,
    NotDicomError,
    PixelDecodeError,
    TruncatedPixelDataError,
    UnsupportedImageError,
)

# --- error paths (synthetic files: no real data needed) ------------------------------------


def test_text_file_is_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "notes.dcm"
    path.write_text("this is not DICOM\n" * 20)
    with pytest.raises(NotDicomError, match=r"notes\.dcm: preamble: not a DICOM file.*DICM"):
        read_image(path)
    with pytest.raises(NotDicomError, match=r"notes\.dcm"):
        read_header(path)


def test_missing_file_is_reported_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(NotDicomError, match=r"absent\.dcm: file: cannot open"):
        read_image(tmp_path / "absent.dcm")


def test_truncated_pixel_data(tmp_path: Path) -> None:
    full = write_ct(tmp_path / "full.dcm", pixels=np.zeros((16, 16), np.int16))
    cut = tmp_path / "ID_6431af929.dcm"  # like RSNA's corrupt file: PixelData cut short
    cut.write_bytes(full.read_bytes()[:-100])
    with pytest.raises(
        TruncatedPixelDataError,
        match=re.escape(f"{cut}: PixelData: has 412 bytes; expected Rows*Columns*BitsAllocated/8"),
    ):
        read_image(cut)


def test_no_pixel_data(tmp_path: Path) -> None:
    import pydicom

    path = write_ct(tmp_path / "nopixels.dcm")
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(NoPixelDataError, match=r"nopixels\.dcm: PixelData: no \(7FE0,0010\)"):
        read_image(path)


def test_rgb_image_is_unsupported(tmp_path: Path) -> None:
    import pydicom

    path = write_ct(tmp_path / "rgb.dcm", pixels=np.zeros((4, 4), np.int16))
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(4 * 4 * 3)
    ds.save_as(path)
    with pytest.raises(
        UnsupportedImageError, match=r"rgb\.dcm: SamplesPerPixel: SamplesPerPixel is 3"
    ):
        read_image(path)


def test_palette_colour_is_unsupported(tmp_path: Path) -> None:
    path = write_ct(tmp_path / "palette.dcm", extra={"PhotometricInterpretation": "PALETTE COLOR"})
    with pytest.raises(
        UnsupportedImageError,
        match=r"palette\.dcm: PhotometricInterpretation: .*'PALETTE COLOR'; expected MONOCHROME",
    ):
        read_image(path)


def test_undecodable_compressed_data(tmp_path: Path) -> None:
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    path = write_ct(tmp_path / "badjpeg.dcm", pixels=np.zeros((16, 16), np.int16))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xc3" + bytes(60)])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)
    with pytest.raises(
        PixelDecodeError,
        match=r"badjpeg\.dcm: PixelData: cannot decode pixel data.*1\.2\.840\.10008\.1\.2\.4\.70",
    ):
        read_image(path)


# --- HU conversion on synthetic files ------------------------------------------------------


def test_rescale_and_padding_value(tmp_path: Path) -> None:
    stored = np.array([[-2000, 0, 1024, 1064], [3000, -1100, 24, 5]], dtype=np.int16)
    path = write_ct(tmp_path / "pad.dcm", pixels=stored, extra={"PixelPaddingValue": 5})
    image = read_image(path)
    # -2000-1024 and -1100-1024 are below air; 5 is the PixelPaddingValue (stored value).
    expected = np.array([[AIR_HU, -1024, 0, 40], [1976, AIR_HU, -1000, AIR_HU]], dtype=np.int16)
    np.testing.assert_array_equal(image.hu, expected)
    assert image.hu.dtype == np.int16
    assert not image.quirk_fixed


def test_slope_is_float_math_and_absent_rescale_defaults(tmp_path: Path) -> None:
    stored = np.array([[0, 1, 2, 3]], dtype=np.int16)
    path = write_ct(tmp_path / "slope.dcm", pixels=stored, intercept=-0.25, slope=0.5)
    np.testing.assert_array_equal(
        read_image(path).hu, [[0, 0, 1, 1]]
    )  # rint(-0.25, .25, .75, 1.25)
    import pydicom

    ds = pydicom.dcmread(path)
    del ds.RescaleSlope, ds.RescaleIntercept
    ds.save_as(path)
    np.testing.assert_array_equal(read_image(path).hu, [[0, 1, 2, 3]])


def test_unsigned_12_bit_masks_unused_high_bits(tmp_path: Path) -> None:
    stored = np.array([[0xF000 | 1024, 1064]], dtype=np.uint16)  # garbage in bits 12..15
    path = write_ct(tmp_path / "u12.dcm", pixels=stored, bits_stored=12, signed=False)
    np.testing.assert_array_equal(read_image(path).hu, [[0, 40]])


# --- real data -----------------------------------------------------------------------------


def _head_soft_tissue_median(hu: np.ndarray) -> float:
    """Median HU of the non-bone voxels inside the head on the middle third of slices.

    Head = voxels above -500 HU; bone (>= 300 HU) excluded. If the RSNA quirk fix misfired on
    a correctly stored series, air (-1024) would become 0 HU and tissue would move by ~+1000,
    pulling this median to about 0 — outside the 15-45 HU band of brain parenchyma.
    """
    n = len(hu)
    middle = hu[n // 3 : 2 * n // 3]
    return float(np.median(middle[(middle > -500) & (middle < 300)]))


@pytest.mark.realdata
def test_series_a_is_not_quirky_and_reads_as_brain() -> None:
    require_realdata(SERIES_A)
    images = [read_image(p) for p in sorted(SERIES_A.glob("*.dcm"))]
    assert len(images) == 32
    assert not any(image.quirk_fixed for image in images)
    h = images[0].header
    assert (h.bits_stored, h.pixel_representation, h.rescale_intercept) == (12, 0, -1024.0)
    assert h.slice_thickness is None  # README: no SliceThickness
    assert h.window_center == (40.0, 40.0) and h.window_width == (80.0, 80.0)  # multi-valued
    assert h.sop_instance_uid.startswith("ID_")
    hu = np.stack([image.hu for image in images])
    # Brain parenchyma is 20-45 HU (grey ~35-45, white ~20-30); the band 15-45 allows for CSF.
    assert 15 <= _head_soft_tissue_median(hu) <= 45
    corner = np.median(hu[:, :16, :16])  # air outside the head
    assert -1030 <= corner <= -970


@pytest.mark.realdata
def test_series_b_padding_becomes_air() -> None:
    require_realdata(SERIES_B)
    path = SERIES_B / "ID_032d5f85e.dcm"
    header, stored = read_stored_values(path)
    assert (header.bits_stored, header.pixel_representation) == (16, 1)
    # README: padding outside the scan field is -2048 HU (stored -1024 with intercept -1024).
    assert stored.min() + header.rescale_intercept == -2048
    hu = read_image(path).hu
    assert hu.min() == AIR_HU
    np.testing.assert_array_equal(hu[stored + header.rescale_intercept < -1024], AIR_HU)
    assert 15 <= _head_soft_tissue_median(read_image_stack(SERIES_B)) <= 45


def read_image_stack(folder: Path) -> np.ndarray:
    return load_series(folder).hu


def _quirky_copy(src: Path, dst: Path, *, intercept: str) -> np.ndarray:
    """Write ``src`` as an RSNA quirk file; return the HU the quirk fix must give back.

    The quirky scanners stored HU itself as 12-bit two's complement (stored = HU mod 4096)
    with PixelRepresentation 0 and an intercept near 0; their images floor at -1000 HU
    (the published fix maps stored 3096..4095 to -1000..-1 and cannot express less).
    """
    import pydicom

    original = read_image(src).hu
    expected = np.maximum(original, -1000).astype(np.int16)
    with quiet_pydicom():
        ds = pydicom.dcmread(src)
        ds.PixelData = (expected.astype(np.int32) % 4096).astype("<u2").tobytes()
        ds.RescaleIntercept = intercept
        ds.save_as(dst)
    return expected


@pytest.mark.realdata
@pytest.mark.parametrize("intercept", ["0", "1"])
def test_rsna_quirk_is_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, intercept: str
) -> None:
    require_realdata(SERIES_A)
    src = sorted(SERIES_A.glob("*.dcm"))[16]
    dst = tmp_path / src.name
    expected = _quirky_copy(src, dst, intercept=intercept)
    image = read_image(dst)
    assert image.quirk_fixed
    np.testing.assert_array_equal(image.hu, expected)
    # Without the fix, the image would be ~+4096 off for every negative HU.
    assert (expected < 0).mean() > 0.3
    with caplog.at_level(logging.INFO, logger="ichkit"):
        series = load_series([dst])
    assert series.has("rescale_quirk")
    assert "RSNA 12-bit quirk fixed" in caplog.text


@pytest.mark.realdata
def test_jpeg_lossless_real_file() -> None:
    require_realdata(CQ500)
    path = CQ500 / "CT000001.dcm"
    image = read_image(path)
    assert image.header.transfer_syntax_uid == "1.2.840.10008.1.2.4.70"
    assert image.hu.shape == (512, 512)
    # PixelPaddingValue -2000 (stored) -> -3024 HU -> air.
    assert image.hu.min() == AIR_HU
    assert image.header.pixel_padding_value == -2000


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("syntax", "source"),
    [
        ("RLELossless", SERIES_B / "ID_032d5f85e.dcm"),
        ("RLELossless", SERIES_A / "ID_000000e27.dcm"),
        ("JPEGLSLossless", SERIES_B / "ID_032d5f85e.dcm"),
        ("JPEG2000Lossless", SERIES_B / "ID_032d5f85e.dcm"),
        ("JPEG2000Lossless", SERIES_A / "ID_000000e27.dcm"),
    ],
)
def test_compressed_copies_decode_to_the_same_hu(tmp_path: Path, syntax: str, source: Path) -> None:
    import pydicom
    import pydicom.uid

    require_realdata(source.parent)
    local = tmp_path / "original.dcm"
    shutil.copy(source, local)
    original = read_image(local).hu
    uid = getattr(pydicom.uid, syntax)
    with quiet_pydicom():
        ds = pydicom.dcmread(local)
        ds.compress(uid)
        ds.save_as(tmp_path / "compressed.dcm")
    image = read_image(tmp_path / "compressed.dcm")
    assert image.header.transfer_syntax_uid == uid
    np.testing.assert_array_equal(image.hu, original)


# --- corrupt bytes: a clear error for that file, never a crash of the batch ---------------


def _corrupt_vr(path: Path, vr: bytes, replacement: bytes, after: bytes = b"") -> None:
    data = bytearray(path.read_bytes())
    at = data.index(after + vr, 132) + len(after)  # the first such element after the preamble
    data[at : at + 2] = replacement
    path.write_bytes(bytes(data))


def test_a_corrupt_value_representation_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    from ichkit.dicom import scan_series

    (tmp_path / "s").mkdir()
    good = write_ct(tmp_path / "s" / "a.dcm", position=(0, 0, 0))
    bad = write_ct(tmp_path / "s" / "b.dcm", position=(0, 0, 5))
    _corrupt_vr(bad, b"CS", b"C\xaa")  # the fast parser's byte check let this through
    scan = scan_series(tmp_path / "s")  # raised UnicodeDecodeError before
    # pydicom then reads it (the damaged element is one ichkit does not use)
    assert [r.files for r in scan.series] == [[good, bad]] and not scan.unreadable
    meta = write_ct(tmp_path / "m.dcm")
    # (0002,0010) TransferSyntaxUID's VR: pydicom raises NotImplementedError (unknown VR)
    _corrupt_vr(meta, b"UI", b"U\xf6", after=b"\x02\x00\x10\x00")
    with pytest.raises(NotDicomError, match=r"m\.dcm"):
        read_header(meta)


def test_zero_length_pixel_data_is_truncated(tmp_path: Path) -> None:
    import pydicom

    path = write_ct(tmp_path / "z.dcm")
    ds = pydicom.dcmread(path)
    ds.PixelData = b""
    ds.save_as(path)
    with pytest.raises(TruncatedPixelDataError, match=r"z\.dcm: PixelData: has 0 bytes"):
        read_image(path)


def test_a_symbolic_link_loop_is_walked_once(tmp_path: Path) -> None:
    from ichkit.dicom import iter_files

    (tmp_path / "t" / "sub").mkdir(parents=True)
    write_ct(tmp_path / "t" / "sub" / "a.dcm")
    (tmp_path / "t" / "sub" / "up").symlink_to(tmp_path / "t")  # a loop
    (tmp_path / "t" / "sub" / "dangling").symlink_to(tmp_path / "nowhere")
    assert list(iter_files(tmp_path / "t")) == [tmp_path / "t" / "sub" / "a.dcm"]


def test_iso_2022_and_multi_valued_text_are_decoded(tmp_path: Path) -> None:
    """ISO 2022 text is 7-bit with escapes: it must go through (0008,0005), not ASCII."""
    import pydicom

    path = write_ct(tmp_path / "j.dcm")
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.SeriesDescription = "頭部"
    ds.save_as(path)
    assert b"\x1b$B" in path.read_bytes()  # written with ISO 2022 escapes
    assert read_header(path).series_description == "頭部"
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SeriesDescription = "Kopf\\Schädel"  # two values, not ASCII
    ds.save_as(path)
    assert read_header(path).series_description == "Kopf"
