"""DICOM for head CT: read, decode, convert to HU, assemble series, window, discover.

Reading is tolerant (real-world headers deviate; deviations become findings
and log messages), and every refusal is an :class:`~ichkit.errors.DicomError`
subclass naming the file, the DICOM keyword and the value seen.

Examples
--------
>>> from ichkit.dicom import load_series, stack_windows
>>> series = load_series("exam/series1")  # doctest: +SKIP
>>> x = stack_windows(series.hu, ["brain", "subdural", "soft_tissue"])  # doctest: +SKIP
"""

from __future__ import annotations

from ichkit.dicom._discover import (
    ScanResult,
    SeriesRecord,
    UnreadableFile,
    group_series,
    iter_headers,
    scan_series,
)
from ichkit.dicom._findings import Finding, FindingKind
from ichkit.dicom._geometry import Geometry, assemble, slice_normal
from ichkit.dicom._header import HEADER_TAGS, SliceHeader, read_header
from ichkit.dicom._hu import AIR_HU, fix_rsna_12bit_quirk, has_rsna_12bit_quirk, to_hu
from ichkit.dicom._read import DicomImage, read_image, read_stored_values
from ichkit.dicom._series import Series, iter_files, load_series
from ichkit.dicom._window import WINDOWS, Window, WindowPreset, apply_window, stack_windows

__all__ = [
    "AIR_HU",
    "HEADER_TAGS",
    "WINDOWS",
    "DicomImage",
    "Finding",
    "FindingKind",
    "Geometry",
    "ScanResult",
    "Series",
    "SeriesRecord",
    "SliceHeader",
    "UnreadableFile",
    "Window",
    "WindowPreset",
    "apply_window",
    "assemble",
    "fix_rsna_12bit_quirk",
    "group_series",
    "has_rsna_12bit_quirk",
    "iter_files",
    "iter_headers",
    "load_series",
    "read_header",
    "read_image",
    "read_stored_values",
    "scan_series",
    "slice_normal",
    "stack_windows",
    "to_hu",
]
