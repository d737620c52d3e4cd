"""Read one DICOM image file: header checks, pixel decoding, HU conversion."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ichkit.dicom._header import SliceHeader, header_from_dataset, open_dataset
from ichkit.dicom._hu import to_hu
from ichkit.errors import (
    NoPixelDataError,
    PixelDecodeError,
    TruncatedPixelDataError,
    UnsupportedImageError,
)

__all__ = ["DicomImage", "read_image", "read_stored_values"]

logger = logging.getLogger(__name__)

_PIXEL_DATA = 0x7FE00010
_FLOAT_PIXEL_DATA = (0x7FE00008, 0x7FE00009)
#: Native (uncompressed) transfer syntaxes, PS3.5 §A.1-A.3.
_NATIVE = {
    "1.2.840.10008.1.2": "<",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1": "<",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99": "<",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2": ">",  # Explicit VR Big Endian (retired)
}
_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True, slots=True)
class DicomImage:
    """One decoded single-frame image.

    Parameters
    ----------
    header
        Its header fields.
    hu
        Hounsfield units, int16, shape (rows, columns).
    quirk_fixed
        Whether the RSNA 12-bit quirk correction was applied.
    """

    header: SliceHeader
    hu: npt.NDArray[np.int16]
    quirk_fixed: bool


def _check_layout(h: SliceHeader, ds: Any) -> None:
    path = h.path
    if _PIXEL_DATA not in ds:
        if any(tag in ds for tag in _FLOAT_PIXEL_DATA):
            raise UnsupportedImageError(
                "float pixel data is not supported; expected integer (7FE0,0010) PixelData",
                path=path,
                field="FloatPixelData",
            )
        raise NoPixelDataError(
            "no (7FE0,0010) PixelData element: not an image (PS3.3 C.7.6.3)",
            path=path,
            field="PixelData",
            value=None,
        )
    if h.samples_per_pixel != 1:
        raise UnsupportedImageError(
            f"SamplesPerPixel is {h.samples_per_pixel}; expected 1 (greyscale CT)",
            path=path,
            field="SamplesPerPixel",
            value=h.samples_per_pixel,
        )
    if h.photometric_interpretation not in _MONOCHROME:
        raise UnsupportedImageError(
            f"PhotometricInterpretation is {h.photometric_interpretation!r}; "
            "expected MONOCHROME1 or MONOCHROME2",
            path=path,
            field="PhotometricInterpretation",
            value=h.photometric_interpretation,
        )
    if h.number_of_frames != 1:
        raise UnsupportedImageError(
            f"NumberOfFrames is {h.number_of_frames}; expected 1 (multi-frame images "
            "are not supported)",
            path=path,
            field="NumberOfFrames",
            value=h.number_of_frames,
        )
    for keyword, value in (("Rows", h.rows), ("Columns", h.columns)):
        if value <= 0:
            raise UnsupportedImageError(
                f"{keyword} is {value}; expected a positive number",
                path=path,
                field=keyword,
                value=value,
            )
    if h.bits_allocated not in (8, 16, 32):
        raise UnsupportedImageError(
            f"BitsAllocated is {h.bits_allocated}; expected 8, 16 or 32",
            path=path,
            field="BitsAllocated",
            value=h.bits_allocated,
        )
    if not 0 < h.bits_stored <= h.bits_allocated:
        raise UnsupportedImageError(
            f"BitsStored is {h.bits_stored}; expected 1..BitsAllocated ({h.bits_allocated})",
            path=path,
            field="BitsStored",
            value=h.bits_stored,
        )
    if h.pixel_representation not in (0, 1):
        raise UnsupportedImageError(
            f"PixelRepresentation is {h.pixel_representation}; expected 0 or 1",
            path=path,
            field="PixelRepresentation",
            value=h.pixel_representation,
        )


def _native_values(h: SliceHeader, data: bytes) -> npt.NDArray[np.integer]:
    """Decode native PixelData (PS3.5 §8.1.1) into stored values."""
    n = h.rows * h.columns
    itemsize = h.bits_allocated // 8
    expected = n * itemsize
    if len(data) < expected:
        raise TruncatedPixelDataError(
            f"has {len(data)} bytes; expected Rows*Columns*BitsAllocated/8 = "
            f"{h.rows}*{h.columns}*{h.bits_allocated}/8 = {expected}",
            path=h.path,
            field="PixelData",
            value=len(data),
        )
    kind = "i" if h.pixel_representation == 1 else "u"
    order = _NATIVE.get(h.transfer_syntax_uid, "<")
    dtype = np.dtype(f"{order}{kind}{itemsize}")
    values = np.frombuffer(data, dtype=dtype, count=n).reshape(h.rows, h.columns)
    values = values.astype(dtype.newbyteorder("="), copy=True)
    unused = h.bits_allocated - h.bits_stored
    if unused:
        if kind == "i":
            # Sign-extend from BitsStored (high bits may hold anything, PS3.5 §8.1.1).
            values <<= unused
            values >>= unused
        else:
            values &= (1 << h.bits_stored) - 1
    return values


def _decoded_values(h: SliceHeader, ds: Any) -> npt.NDArray[np.integer]:
    """Decode encapsulated PixelData (PS3.5 §8.2, Annex A.4) with pydicom's decoders."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = ds.pixel_array
    except Exception as err:  # decoders raise many types; all mean "cannot decode"
        raise PixelDecodeError(
            f"cannot decode pixel data in transfer syntax {h.transfer_syntax_uid}: "
            f"{type(err).__name__}: {err}",
            path=h.path,
            field="PixelData",
            value=h.transfer_syntax_uid,
        ) from err
    if values.shape != (h.rows, h.columns):
        raise PixelDecodeError(
            f"decoded shape {values.shape} differs from Rows x Columns ({h.rows}, {h.columns})",
            path=h.path,
            field="PixelData",
            value=values.shape,
        )
    return np.asarray(values)


def read_stored_values(path: str | os.PathLike[str]) -> tuple[SliceHeader, Any]:
    """Read a file's header and its stored pixel values (before any rescale).

    Returns
    -------
    header, values
        The header fields and the stored values, shape (rows, columns).

    Raises
    ------
    NotDicomError, NoPixelDataError, UnsupportedImageError,
    TruncatedPixelDataError, PixelDecodeError
        See :func:`read_image`.
    """
    ds = open_dataset(path, header_only=False, specific_tags=None)
    header = header_from_dataset(ds, path)
    _check_layout(header, ds)
    elem = ds.get_item(_PIXEL_DATA)
    data = elem.value
    if header.transfer_syntax_uid in _NATIVE and not getattr(elem, "is_undefined_length", False):
        if data is None:  # zero length: pydicom gives None
            data = b""
        elif not isinstance(data, bytes | bytearray):
            data = bytes(data)
        return header, _native_values(header, data)
    return header, _decoded_values(header, ds)


def read_image(path: str | os.PathLike[str]) -> DicomImage:
    """Read one single-frame greyscale DICOM image as Hounsfield units.

    Native pixel data is decoded with numpy; encapsulated pixel data (JPEG
    Lossless Process 14 incl. SV1, JPEG-LS, JPEG 2000, RLE; PS3.5 Annex A.4)
    through pydicom 3 and the pylibjpeg plugins. Stored values become HU with
    :func:`ichkit.dicom.to_hu` (Modality LUT, RSNA quirk fix, padding → air).

    Parameters
    ----------
    path
        A DICOM Part 10 file holding one greyscale frame.

    Returns
    -------
    DicomImage
        The header fields, the int16 HU image and whether the quirk fix fired.

    Raises
    ------
    NotDicomError
        Not a DICOM file, or its data set cannot be parsed.
    NoPixelDataError
        No (7FE0,0010) PixelData element.
    UnsupportedImageError
        SamplesPerPixel != 1, a PhotometricInterpretation other than
        MONOCHROME1/2, several frames or an unusual bit layout.
    TruncatedPixelDataError
        Native PixelData shorter than Rows*Columns*BitsAllocated/8 bytes.
    PixelDecodeError
        Encapsulated pixel data that the installed decoders cannot decode.
    """
    header, values = read_stored_values(path)
    hu, quirk = to_hu(
        values,
        rescale_slope=header.rescale_slope,
        rescale_intercept=header.rescale_intercept,
        bits_stored=header.bits_stored,
        pixel_representation=header.pixel_representation,
        pixel_padding_value=header.pixel_padding_value,
        pixel_padding_range_limit=header.pixel_padding_range_limit,
    )
    if quirk:
        logger.debug(
            "%s: RSNA 12-bit quirk fixed (BitsStored 12, PixelRepresentation 0, "
            "RescaleIntercept %g)",
            header.path,
            header.rescale_intercept,
        )
    return DicomImage(header=header, hu=hu, quirk_fixed=quirk)
