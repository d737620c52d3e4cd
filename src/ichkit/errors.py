"""Exceptions raised by ichkit.

Every error raised for bad input is a subclass of :class:`IchkitError`. Its
message names the file, the field (DICOM keyword, CSV row or column) and the
value seen, so that a user can find and fix the problem without a traceback.
The CLI turns an :class:`IchkitError` into a one-line message and exit status
:attr:`IchkitError.exit_status`.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "CheckpointMismatchError",
    "ConfigError",
    "CurationError",
    "DatasetError",
    "DicomError",
    "IchkitError",
    "LabelsError",
    "ModelError",
    "NoPixelDataError",
    "NotDicomError",
    "PixelDecodeError",
    "SeriesError",
    "SubmissionError",
    "TruncatedPixelDataError",
    "UnsupportedImageError",
]

_UNSET: Any = object()


class IchkitError(Exception):
    """Base class of every error ichkit raises for bad input or usage.

    Parameters
    ----------
    message
        What is wrong, including the value seen and what was expected.
    path
        The file (or folder) concerned, if any; it prefixes the message.
    field
        The DICOM keyword, CSV row/column or setting concerned, if any.
    value
        The offending value, kept for programs that handle the error.
    """

    exit_status: int = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        field: str | None = None,
        value: Any = _UNSET,
    ) -> None:
        self.path = None if path is None else os.fspath(path)
        self.field = field
        self.value = None if value is _UNSET else value
        self.reason = message
        parts = [p for p in (self.path, field) if p]
        super().__init__(": ".join([*parts, message]))


class ConfigError(IchkitError):
    """A setting is unknown or has an invalid value."""


class LabelsError(IchkitError):
    """A labels CSV (RSNA format) is malformed."""


class SubmissionError(LabelsError):
    """A challenge submission does not match the truth file it is scored on."""


class DicomError(IchkitError):
    """A DICOM file cannot be used."""


class NotDicomError(DicomError):
    """The file is not a DICOM file (no DICM preamble and not parseable)."""


class NoPixelDataError(DicomError):
    """The DICOM file holds no PixelData element."""


class UnsupportedImageError(DicomError):
    """The image uses a photometric interpretation, bit depth or layout ichkit does not read."""


class TruncatedPixelDataError(DicomError):
    """The PixelData element holds fewer bytes than the image header announces."""


class PixelDecodeError(DicomError):
    """Compressed pixel data could not be decoded."""


class SeriesError(DicomError):
    """Files cannot be assembled into one series (none readable, several series mixed)."""


class CurationError(IchkitError):
    """A curation step (QC, split, export, statistics) cannot run as asked."""


class ModelError(IchkitError):
    """A model file (checkpoint or ONNX) cannot be used."""


class CheckpointMismatchError(ModelError):
    """A model was made for another label order, window set or input size."""


class DatasetError(IchkitError):
    """A training or evaluation dataset cannot be found or used."""
