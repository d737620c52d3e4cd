"""Header fields of one DICOM image, read fast and tolerantly.

The values are decoded straight from the raw element bytes (PS3.5 §6.2 value
representations) instead of through pydicom's validating converters: that is
several times faster, and it accepts the non-standard UIDs of the RSNA 2019
data (``ID_000000e27``) without a validation warning per file.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ichkit.dicom._fastheader import parse_header
from ichkit.errors import NotDicomError

__all__ = ["HEADER_TAGS", "SliceHeader", "header_from_dataset", "read_header"]

logger = logging.getLogger(__name__)

# keyword -> (tag, VR); the VR is the one of the PS3.6 data dictionary.
_FIELDS: dict[str, tuple[int, str]] = {
    "ImageType": (0x00080008, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "Modality": (0x00080060, "CS"),
    "SeriesDescription": (0x0008103E, "LO"),
    "PatientID": (0x00100020, "LO"),
    "ContrastBolusAgent": (0x00180010, "LO"),
    "BodyPartExamined": (0x00180015, "CS"),
    "SliceThickness": (0x00180050, "DS"),
    "SpacingBetweenSlices": (0x00180088, "DS"),
    "GantryDetectorTilt": (0x00181120, "DS"),
    "ConvolutionKernel": (0x00181210, "SH"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "SeriesNumber": (0x00200011, "IS"),
    "InstanceNumber": (0x00200013, "IS"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "SamplesPerPixel": (0x00280002, "US"),
    "PhotometricInterpretation": (0x00280004, "CS"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "PixelSpacing": (0x00280030, "DS"),
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "PixelRepresentation": (0x00280103, "US"),
    "PixelPaddingValue": (0x00280120, "US or SS"),
    "PixelPaddingRangeLimit": (0x00280121, "US or SS"),
    "WindowCenter": (0x00281050, "DS"),
    "WindowWidth": (0x00281051, "DS"),
    "RescaleIntercept": (0x00281052, "DS"),
    "RescaleSlope": (0x00281053, "DS"),
}

#: The tags :func:`read_header` reads (pass as ``specific_tags`` to ``dcmread``).
HEADER_TAGS: tuple[int, ...] = tuple(tag for tag, _ in _FIELDS.values())

_WANTED = frozenset(HEADER_TAGS)
_IMPLICIT_LE = "1.2.840.10008.1.2"


@dataclass(frozen=True, slots=True)
class SliceHeader:
    """The header fields of one single-frame DICOM image that ichkit uses.

    Attribute names are the DICOM keywords in snake case (PS3.6); absent
    optional attributes are ``None``. Type 1 image pixel attributes (PS3.3
    C.7.6.3) that are absent are 0 (``rows``, ``columns``, ``bits_*``) so
    that the reader can name them in its error.

    Parameters
    ----------
    path
        The file the header was read from.
    transfer_syntax_uid
        (0002,0010) Transfer Syntax UID of the file meta information (PS3.10 §7.1).
    sop_class_uid, sop_instance_uid, modality, series_description, patient_id
        Identification (PS3.3 C.12.1, C.7.3.1, C.7.1.1).
    study_instance_uid, series_instance_uid, series_number, instance_number
        Study, series and instance identification (PS3.3 C.7.2.1, C.7.3.1, C.7.6.1).
    image_position_patient, image_orientation_patient, pixel_spacing, slice_thickness
        Image plane (PS3.3 C.7.6.2): position of the first voxel centre, the
        row and column direction cosines, (row, column) spacing in mm.
    spacing_between_slices, gantry_detector_tilt
        (0018,0088) and (0018,1120) from the CT image module (PS3.3 C.8.2.1).
    samples_per_pixel, photometric_interpretation, number_of_frames, rows, columns
        Image pixel layout (PS3.3 C.7.6.3).
    bits_allocated, bits_stored, pixel_representation
        Stored value encoding (PS3.3 C.7.6.3.1); representation 1 = two's complement.
    pixel_padding_value, pixel_padding_range_limit
        Stored values outside the scan field (PS3.3 C.7.5.1.1.2).
    window_center, window_width
        VOI LUT window(s) (PS3.3 C.11.2); multi-valued in some files.
    rescale_intercept, rescale_slope
        Modality LUT (PS3.3 C.11.1.1.2): HU = stored * slope + intercept;
        1 and 0 when absent.
    image_type
        (0008,0008) Image Type (PS3.3 C.7.6.1.1.2), every value in order
        (``("ORIGINAL", "PRIMARY", "AXIAL")``); empty values keep their place.
        None when absent or empty.
    contrast_bolus_agent
        (0018,0010) Contrast/Bolus Agent (PS3.3 C.7.6.4); "" when absent.
    body_part_examined
        (0018,0015) Body Part Examined (PS3.3 C.7.3.1); "" when absent.
    convolution_kernel
        (0018,1210) Convolution Kernel (PS3.3 C.8.2.1). It may be
        multi-valued (e.g. Siemens ``Hr40f\\3``): all values are kept, joined
        with a backslash as in the encoded value (PS3.5 §6.4); "" when absent.

    The last four default to None / "" so that headers rebuilt from other
    records (not read from a file) need not name them.
    """

    path: Path
    transfer_syntax_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    modality: str
    series_description: str
    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    series_number: int | None
    instance_number: int | None
    image_position_patient: tuple[float, float, float] | None
    image_orientation_patient: tuple[float, float, float, float, float, float] | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    spacing_between_slices: float | None
    gantry_detector_tilt: float | None
    samples_per_pixel: int
    photometric_interpretation: str
    number_of_frames: int
    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    pixel_padding_value: int | None
    pixel_padding_range_limit: int | None
    window_center: tuple[float, ...]
    window_width: tuple[float, ...]
    rescale_intercept: float
    rescale_slope: float
    image_type: tuple[str, ...] | None = None
    contrast_bolus_agent: str = ""
    body_part_examined: str = ""
    convolution_kernel: str = ""

    @property
    def rsna_12bit_quirk(self) -> bool:
        """Whether the header has the RSNA 2019 12-bit storage quirk.

        BitsStored 12, PixelRepresentation 0 (unsigned) and RescaleIntercept
        above -100: the stored values are HU in 12-bit two's complement, not
        ``HU - intercept``. See :func:`ichkit.dicom.to_hu`.
        """
        return (
            self.bits_stored == 12
            and self.pixel_representation == 0
            and self.rescale_intercept > -100
        )


class _NonAsciiError(Exception):
    """A text value needs the Specific Character Set: decode it with pydicom."""


def _raw_value(ds: Any, tag: int) -> tuple[Any, str | None, bool]:
    """Return (value, VR, is_raw_bytes) of an element, without converting it.

    ``ds`` is a pydicom ``Dataset`` or the ``{tag: (VR, bytes)}`` dict of
    :func:`~ichkit.dicom._fastheader.parse_header`.
    """
    if isinstance(ds, dict):
        entry = ds.get(tag)
        return (None, None, False) if entry is None else (entry[1], entry[0], True)
    elem = ds.get_item(tag)
    if elem is None:
        return None, None, False
    value = elem.value
    if isinstance(value, bytes | bytearray):
        return bytes(value), elem.VR, True
    return value, elem.VR, False


def _ascii(value: bytes) -> str:
    """Decode plain ASCII; raise UnicodeDecodeError for anything that needs (0008,0005).

    ISO 2022 text (e.g. Japanese, ``ISO 2022 IR 87``) is 7-bit with ESC (0x1B)
    sequences: it decodes as ASCII but means something else, so it is refused too.
    """
    if b"\x1b" in value:
        raise UnicodeDecodeError(
            "ascii", value, value.index(b"\x1b"), len(value), "ISO 2022 escape"
        )
    return value.decode("ascii")


def _text(ds: Any, tag: int) -> str:
    value, _vr, raw = _raw_value(ds, tag)
    if value is None:
        return ""
    if raw:
        try:
            text = _ascii(value)
        except UnicodeDecodeError:
            # Non-ASCII: let pydicom apply (0008,0005) Specific Character Set.
            if isinstance(ds, dict):
                raise _NonAsciiError from None
            decoded = ds[tag].value
            if isinstance(decoded, list | tuple) or type(decoded).__name__ == "MultiValue":
                decoded = decoded[0] if len(decoded) else ""  # its first value, as below
            return str(decoded).strip(" \x00")
        # A multi-valued string keeps its first value.
        return str(text.split("\\", 1)[0].strip(" \x00"))
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value).strip(" \x00")


def _text_values(ds: Any, tag: int) -> tuple[str, ...]:
    """Every value of a string element (PS3.5 §6.4), padding stripped; () if absent."""
    value, _vr, raw = _raw_value(ds, tag)
    if value is None:
        return ()
    if raw:
        try:
            text = _ascii(value)
        except UnicodeDecodeError:
            if isinstance(ds, dict):
                raise _NonAsciiError from None
            value = ds[tag].value  # pydicom applies (0008,0005) Specific Character Set
        else:
            values = tuple(part.strip(" \x00") for part in text.split("\\"))
            return () if not any(values) else values
    # A converted value: a str, or a pydicom MultiValue of them.
    parts = value.split("\\") if isinstance(value, str) else list(value)
    values = tuple(str(part).strip(" \x00") for part in parts)
    return () if not any(values) else values


def _numbers(ds: Any, tag: int) -> tuple[float, ...] | None:
    """Decode a DS or IS element (PS3.5 Table 6.2-1) into floats; None if absent or bad."""
    value, _vr, raw = _raw_value(ds, tag)
    if value is None:
        return None
    try:
        if raw:
            text = value.decode("ascii").strip(" \x00")
            if not text:
                return None
            return tuple(float(part) for part in text.split("\\") if part.strip())
        if isinstance(value, str | bytes):
            return None if not value else (float(value),)
        if hasattr(value, "__iter__"):
            return tuple(float(v) for v in value)
        return (float(value),)
    except (ValueError, UnicodeDecodeError):
        logger.debug("(%08X) has a non-numeric value %r; ignored", tag, value)
        return None


def _binary(ds: Any, tag: int, vr_hint: str, *, signed_default: bool) -> int | None:
    """Decode the first value of a US/SS element (PS3.5 Table 6.2-1)."""
    value, vr, raw = _raw_value(ds, tag)
    if value is None:
        return None
    if not raw:
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        return None if value is None or value == "" else int(value)
    if len(value) < 2:
        return None
    if vr is None or vr not in ("US", "SS"):
        vr = "SS" if (vr_hint == "SS" or (vr_hint != "US" and signed_default)) else "US"
    little = True if isinstance(ds, dict) else getattr(ds.get_item(tag), "is_little_endian", True)
    fmt = ("<" if little else ">") + ("h" if vr == "SS" else "H")
    return int(struct.unpack(fmt, value[:2])[0])


def _first(values: tuple[float, ...] | None) -> float | None:
    return values[0] if values else None


def _int(values: tuple[float, ...] | None) -> int | None:
    return int(values[0]) if values else None


def header_from_dataset(ds: Any, path: str | os.PathLike[str]) -> SliceHeader:
    """Build a :class:`SliceHeader` from a pydicom dataset read from ``path``.

    Parameters
    ----------
    ds
        A ``pydicom.Dataset`` (elements still raw, as ``dcmread`` leaves them).
    path
        The file it came from, kept in the header and used in messages.

    Returns
    -------
    SliceHeader
        The fields; optional ones absent from the file are ``None``.
    """
    meta = getattr(ds, "file_meta", None)
    tsyntax = ""
    if meta is not None and 0x00020010 in meta:
        tsyntax = _text(meta, 0x00020010)
    return _build(ds, path, tsyntax or _IMPLICIT_LE)


def _build(ds: Any, path: str | os.PathLike[str], tsyntax: str) -> SliceHeader:
    f = _FIELDS
    pixel_representation = _binary(ds, f["PixelRepresentation"][0], "US", signed_default=False)
    signed = pixel_representation == 1
    ipp = _numbers(ds, f["ImagePositionPatient"][0])
    iop = _numbers(ds, f["ImageOrientationPatient"][0])
    spacing = _numbers(ds, f["PixelSpacing"][0])
    return SliceHeader(
        path=Path(path),
        transfer_syntax_uid=tsyntax,
        sop_class_uid=_text(ds, f["SOPClassUID"][0]),
        sop_instance_uid=_text(ds, f["SOPInstanceUID"][0]),
        modality=_text(ds, f["Modality"][0]),
        series_description=_text(ds, f["SeriesDescription"][0]),
        patient_id=_text(ds, f["PatientID"][0]),
        study_instance_uid=_text(ds, f["StudyInstanceUID"][0]),
        series_instance_uid=_text(ds, f["SeriesInstanceUID"][0]),
        series_number=_int(_numbers(ds, f["SeriesNumber"][0])),
        instance_number=_int(_numbers(ds, f["InstanceNumber"][0])),
        image_position_patient=(ipp[0], ipp[1], ipp[2]) if ipp and len(ipp) >= 3 else None,
        image_orientation_patient=(
            (iop[0], iop[1], iop[2], iop[3], iop[4], iop[5]) if iop and len(iop) >= 6 else None
        ),
        pixel_spacing=(spacing[0], spacing[1]) if spacing and len(spacing) >= 2 else None,
        slice_thickness=_first(_numbers(ds, f["SliceThickness"][0])),
        spacing_between_slices=_first(_numbers(ds, f["SpacingBetweenSlices"][0])),
        gantry_detector_tilt=_first(_numbers(ds, f["GantryDetectorTilt"][0])),
        samples_per_pixel=_binary(ds, f["SamplesPerPixel"][0], "US", signed_default=False) or 1,
        photometric_interpretation=_text(ds, f["PhotometricInterpretation"][0]),
        number_of_frames=_int(_numbers(ds, f["NumberOfFrames"][0])) or 1,
        rows=_binary(ds, f["Rows"][0], "US", signed_default=False) or 0,
        columns=_binary(ds, f["Columns"][0], "US", signed_default=False) or 0,
        bits_allocated=_binary(ds, f["BitsAllocated"][0], "US", signed_default=False) or 0,
        bits_stored=_binary(ds, f["BitsStored"][0], "US", signed_default=False) or 0,
        pixel_representation=pixel_representation or 0,
        pixel_padding_value=_binary(
            ds, f["PixelPaddingValue"][0], "US or SS", signed_default=signed
        ),
        pixel_padding_range_limit=_binary(
            ds, f["PixelPaddingRangeLimit"][0], "US or SS", signed_default=signed
        ),
        window_center=_numbers(ds, f["WindowCenter"][0]) or (),
        window_width=_numbers(ds, f["WindowWidth"][0]) or (),
        rescale_intercept=_first(_numbers(ds, f["RescaleIntercept"][0])) or 0.0,
        rescale_slope=_first(_numbers(ds, f["RescaleSlope"][0])) or 1.0,
        image_type=_text_values(ds, f["ImageType"][0]) or None,
        contrast_bolus_agent=_text(ds, f["ContrastBolusAgent"][0]),
        body_part_examined=_text(ds, f["BodyPartExamined"][0]),
        convolution_kernel="\\".join(_text_values(ds, f["ConvolutionKernel"][0])),
    )


def _looks_like_dataset(head: bytes) -> bool:
    """Whether bytes without a DICM preamble start like a raw little-endian data set.

    Old files (ACR-NEMA style, PS3.10 not followed) start directly with a
    group 0x0002 or 0x0008 element; anything else is not DICOM.
    """
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    return group in (0x0002, 0x0008)


def open_dataset(
    path: str | os.PathLike[str], *, header_only: bool, specific_tags: tuple[int, ...] | None
) -> Any:
    """Read ``path`` with pydicom, raising :class:`NotDicomError` for non-DICOM files.

    Files with the PS3.10 preamble and ``DICM`` prefix are read directly;
    files without it are read only if they start like a data set.
    """
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    fspath = os.fspath(path)
    try:
        with open(fspath, "rb") as fp:
            head = fp.read(132)
            force = False
            if len(head) < 132 or head[128:132] != b"DICM":
                if not _looks_like_dataset(head):
                    raise NotDicomError(
                        "not a DICOM file: no 'DICM' prefix at byte 128 (PS3.10 §7.1) "
                        f"and it does not start with a data element (first bytes {head[:8]!r})",
                        path=fspath,
                        field="preamble",
                        value=head[:8],
                    )
                force = True
            fp.seek(0)
            return dcmread(
                fp,
                force=force,
                stop_before_pixels=header_only,
                specific_tags=list(specific_tags) if specific_tags else None,
            )
    except NotDicomError:
        raise
    except (
        InvalidDicomError,
        EOFError,
        ValueError,
        struct.error,
        KeyError,
        OSError,
        # pydicom on corrupt bytes: "Unknown Value Representation", bad lengths
        NotImplementedError,
        TypeError,
        AttributeError,
        IndexError,
    ) as err:
        if isinstance(err, FileNotFoundError | IsADirectoryError | PermissionError):
            raise NotDicomError(
                f"cannot open: {err.strerror}", path=fspath, field="file", value=None
            ) from err
        raise NotDicomError(
            f"not a readable DICOM file: {type(err).__name__}: {err}",
            path=fspath,
            field="data set",
            value=None,
        ) from err


def read_header(path: str | os.PathLike[str]) -> SliceHeader:
    """Read the header fields of one DICOM file, without its pixel data.

    Only the tags in :data:`HEADER_TAGS` are decoded. The common case (Part 10
    file, little endian, ASCII text) is parsed from the first 8 KiB of the
    file, stopping after (0028,1053) Rescale Slope; anything else is read by
    pydicom up to (7FE0,0010) Pixel Data. Either way the cost does not grow
    with the size of the pixel data.

    Parameters
    ----------
    path
        A DICOM Part 10 file (PS3.10 §7).

    Returns
    -------
    SliceHeader
        The header fields.

    Raises
    ------
    NotDicomError
        The file is not DICOM or its header cannot be parsed.
    """
    try:
        fast = parse_header(path, _WANTED)
    except OSError:
        fast = None  # open_dataset reports it
    if fast is not None:
        tsyntax, elements = fast
        try:
            return _build(elements, path, tsyntax or _IMPLICIT_LE)
        except _NonAsciiError:
            pass
    ds = open_dataset(path, header_only=True, specific_tags=HEADER_TAGS)
    return header_from_dataset(ds, path)
