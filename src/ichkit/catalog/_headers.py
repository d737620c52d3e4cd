"""Per-file work of ingest: stat-free header read and checksum, run in worker processes.

The header fields come from :func:`ichkit.dicom.read_header` (decoded from
the raw element bytes, without pixel data); this module only turns them into
the small picklable records the catalog stores, and adds the file checksum.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = [
    "FileFailure",
    "FileRecord",
    "checksum_file",
    "checksum_many",
    "read_many",
    "read_record",
]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class FileRecord:
    """What the catalog keeps of one DICOM file (one :class:`~ichkit.catalog.models.Instance`)."""

    path: str
    size_bytes: int
    mtime_ns: int
    checksum: str | None
    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    image_position_patient: tuple[float, float, float] | None
    image_orientation_patient: str | None
    pixel_spacing: str | None
    rows: int
    columns: int
    transfer_syntax_uid: str
    slice_thickness: float | None
    spacing_between_slices: float | None
    gantry_detector_tilt: float | None
    image_type: str | None
    body_part_examined: str | None
    contrast_bolus_agent: str | None
    convolution_kernel: str | None


@dataclass(frozen=True, slots=True)
class FileFailure:
    """A file that could not be catalogued, and why."""

    path: str
    reason: str


def checksum_file(path: str, algorithm: str) -> str:
    """Return ``<algorithm>:<hex digest>`` of the whole file (hashlib algorithm name)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb", buffering=0) as handle:
        while True:
            block = handle.read(_CHUNK)
            if not block:
                break
            digest.update(block)
    return f"{algorithm}:{digest.hexdigest()}"


def _join(values: tuple[float, ...] | None) -> str | None:
    if not values:
        return None
    return "\\".join(f"{v:.6g}" for v in values)


def read_record(path: str, size_bytes: int, mtime_ns: int, checksum: str | None) -> FileRecord:
    """Read the header of ``path`` into a :class:`FileRecord` (checksum: algorithm or None).

    Raises
    ------
    ichkit.errors.DicomError
        The file is not DICOM, or lacks a UID the catalog keys on.
    """
    from ichkit.catalog._dicom import read_catalog_header

    h = read_catalog_header(path)
    digest = checksum_file(path, checksum) if checksum else None
    return FileRecord(
        path=path,
        size_bytes=size_bytes,
        mtime_ns=mtime_ns,
        checksum=digest,
        patient_id=h.patient_id,
        study_instance_uid=h.study_instance_uid,
        series_instance_uid=h.series_instance_uid,
        sop_instance_uid=h.sop_instance_uid,
        modality=h.modality,
        series_number=h.series_number,
        series_description=h.series_description,
        instance_number=h.instance_number,
        image_position_patient=h.image_position_patient,
        image_orientation_patient=_join(h.image_orientation_patient),
        pixel_spacing=_join(h.pixel_spacing),
        rows=h.rows,
        columns=h.columns,
        transfer_syntax_uid=h.transfer_syntax_uid,
        slice_thickness=h.slice_thickness,
        spacing_between_slices=h.spacing_between_slices,
        gantry_detector_tilt=h.gantry_detector_tilt,
        image_type=h.image_type,
        body_part_examined=h.body_part_examined,
        contrast_bolus_agent=h.contrast_bolus_agent,
        convolution_kernel=h.convolution_kernel,
    )


def read_many(
    items: list[tuple[str, int, int]], checksum: str | None
) -> list[FileRecord | FileFailure]:
    """Read a chunk of files (path, size, mtime_ns); failures are returned, never raised."""
    from ichkit.errors import IchkitError

    out: list[FileRecord | FileFailure] = []
    for path, size, mtime in items:
        try:
            out.append(read_record(path, size, mtime, checksum))
        except IchkitError as err:
            out.append(FileFailure(path, err.reason))
        except OSError as err:
            out.append(FileFailure(path, f"cannot read: {err.strerror or err}"))
        except Exception as err:
            out.append(FileFailure(path, f"{type(err).__name__}: {err}"))
    return out


def checksum_many(items: list[str], checksum: str) -> list[str | FileFailure]:
    """Checksum a chunk of files; unreadable ones become :class:`FileFailure`."""
    out: list[str | FileFailure] = []
    for path in items:
        try:
            out.append(checksum_file(path, checksum))
        except OSError as err:
            out.append(FileFailure(path, f"cannot read: {err.strerror or err}"))
    return out
