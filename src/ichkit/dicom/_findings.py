"""Findings: problems noticed while reading files or assembling a series.

Findings are reported, never raised: a series with a missing slice or a tilted
gantry is still usable, and the caller decides what to do with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Finding", "FindingKind"]


class FindingKind(StrEnum):
    """What kind of problem a :class:`Finding` reports."""

    MISSING_SLICES = "missing_slices"
    """A gap between neighbouring slices is at least 1.5 times the usual spacing."""
    DUPLICATE_POSITION = "duplicate_position"
    """Several slices share one position along the slice normal; one is kept."""
    UNEVEN_SPACING = "uneven_spacing"
    """Gaps between slices differ from the median gap (but no slice is missing)."""
    GANTRY_TILT = "gantry_tilt"
    """The slices are stacked obliquely to their normal (tilted gantry, sheared voxels)."""
    MIXED_SIZE = "mixed_size"
    """Rows x Columns differ between slices; the majority size is kept."""
    MIXED_ORIENTATION = "mixed_orientation"
    """ImageOrientationPatient differs between slices; the majority orientation is kept."""
    MIXED_PIXEL_SPACING = "mixed_pixel_spacing"
    """PixelSpacing differs between slices; the first slice's spacing is reported."""
    MISSING_POSITION = "missing_position"
    """ImagePositionPatient or ImageOrientationPatient is absent from some slices."""
    MULTIPLE_SERIES = "multiple_series"
    """Files of several SeriesInstanceUIDs were given; the largest series is kept."""
    MIXED_STUDIES = "mixed_studies"
    """One SeriesInstanceUID spans several studies or patients; the largest part is kept."""
    UNREADABLE_FILE = "unreadable_file"
    """A file could not be read as a DICOM image and was left out."""
    RESCALE_QUIRK = "rescale_quirk"
    """The RSNA 12-bit storage quirk (BitsStored 12, unsigned, RescaleIntercept > -100)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a series.

    Parameters
    ----------
    kind
        What kind of problem it is.
    detail
        A human-readable description naming the values seen.
    """

    kind: FindingKind
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"
