"""Stored pixel values → Hounsfield units, with the RSNA 12-bit quirk fixed."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

__all__ = ["AIR_HU", "fix_rsna_12bit_quirk", "has_rsna_12bit_quirk", "to_hu"]

logger = logging.getLogger(__name__)

#: HU given to air and to every value below it (padding outside the scan field).
AIR_HU = -1024

_INT16_MAX = int(np.iinfo(np.int16).max)


def has_rsna_12bit_quirk(
    *, bits_stored: int, pixel_representation: int, rescale_intercept: float
) -> bool:
    """Whether a header has the RSNA 2019 12-bit storage quirk.

    Some scanners in the RSNA 2019 ICH data store HU values as 12-bit two's
    complement while declaring them unsigned (PixelRepresentation 0, PS3.3
    C.7.6.3.1) with a RescaleIntercept near 0 instead of about -1024 (PS3.3
    C.11.1.1.2). The well-known test used by the challenge's public kernels is
    ``BitsStored == 12 and PixelRepresentation == 0 and RescaleIntercept > -100``.
    """
    return bits_stored == 12 and pixel_representation == 0 and rescale_intercept > -100


def fix_rsna_12bit_quirk(stored: npt.NDArray[np.integer]) -> tuple[npt.NDArray[np.int32], float]:
    """Reinterpret quirky RSNA 12-bit stored values; return (values, new intercept).

    This is the correction published with the challenge (J. Howard, Kaggle
    kernel "cleaning the data for rapid prototyping", reused by the public
    kernels): ``px = px + 1000; px[px >= 4096] -= 4096; intercept = -1000``.
    Stored values 0..3095 are HU 0..3095 and 3096..4095 are HU -1000..-1, so
    HU below -1000 (absent from these scanners' images) cannot be represented.

    Parameters
    ----------
    stored
        The stored values as decoded (unsigned 12 bit in 16-bit words).

    Returns
    -------
    values, intercept
        The corrected stored values and the RescaleIntercept (-1000) to use
        with them and the file's RescaleSlope.
    """
    values = stored.astype(np.int32) + 1000
    values[values >= 4096] -= 4096
    return values, -1000.0


def to_hu(
    stored: npt.NDArray[np.integer],
    *,
    rescale_slope: float = 1.0,
    rescale_intercept: float = 0.0,
    bits_stored: int = 16,
    pixel_representation: int = 1,
    pixel_padding_value: int | None = None,
    pixel_padding_range_limit: int | None = None,
) -> tuple[npt.NDArray[np.int16], bool]:
    """Convert stored pixel values to int16 Hounsfield units.

    Applies the Modality LUT rescale ``HU = stored * slope + intercept``
    (PS3.3 C.11.1.1.2; float math, rounded, clipped to the int16 range), after
    fixing the RSNA 12-bit quirk when the header has it (see
    :func:`has_rsna_12bit_quirk`). Pixel padding (PS3.3 C.7.5.1.1.2: stored
    values equal to PixelPaddingValue, or between it and
    PixelPaddingRangeLimit) and every HU below :data:`AIR_HU` (padding at
    -2000, -2048 or -3024 HU outside the scan field) become :data:`AIR_HU`.

    Parameters
    ----------
    stored
        Stored values as decoded from PixelData, any integer dtype.
    rescale_slope, rescale_intercept
        (0028,1053) and (0028,1052); 1 and 0 when absent.
    bits_stored, pixel_representation
        (0028,0101) and (0028,0103), used to detect the RSNA quirk.
    pixel_padding_value, pixel_padding_range_limit
        (0028,0120) and (0028,0121) as stored values, or None.

    Returns
    -------
    hu, quirk_fixed
        The HU image (int16, same shape) and whether the quirk fix fired.
    """
    padding: npt.NDArray[np.bool_] | None = None
    if pixel_padding_value is not None:
        if pixel_padding_range_limit is not None:
            low = min(pixel_padding_value, pixel_padding_range_limit)
            high = max(pixel_padding_value, pixel_padding_range_limit)
            padding = (stored >= low) & (stored <= high)
        else:
            padding = stored == pixel_padding_value
    quirk = has_rsna_12bit_quirk(
        bits_stored=bits_stored,
        pixel_representation=pixel_representation,
        rescale_intercept=rescale_intercept,
    )
    values: npt.NDArray[np.integer] = stored
    intercept = float(rescale_intercept)
    if quirk:
        values, intercept = fix_rsna_12bit_quirk(stored)
    slope = float(rescale_slope)
    if slope == 1.0 and intercept.is_integer():
        hu32 = values.astype(np.int32, copy=False) + np.int32(intercept)
    else:
        scaled = values.astype(np.float32) * np.float32(slope) + np.float32(intercept)
        hu32 = np.rint(scaled, out=scaled).clip(AIR_HU, _INT16_MAX).astype(np.int32)
    np.clip(hu32, AIR_HU, _INT16_MAX, out=hu32)
    if padding is not None:
        hu32[padding] = AIR_HU
    return hu32.astype(np.int16), quirk
