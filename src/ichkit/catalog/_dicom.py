"""The one place where the catalog reads DICOM headers: through :func:`ichkit.dicom.read_header`.

Identification (PS3.3 C.7.1.1, C.7.2.1, C.7.3.1) and image plane (C.7.6.2)
fields come from the project's DICOM reader. The series attributes that help
choose a series (ImageType, BodyPartExamined, ContrastBolusAgent,
ConvolutionKernel) are taken when the reader provides them, else left empty.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ichkit.errors import DicomError

__all__ = ["CatalogHeader", "read_catalog_header"]


@dataclass(frozen=True, slots=True)
class CatalogHeader:
    """Header fields of one file, as the catalog stores them."""

    transfer_syntax_uid: str
    sop_instance_uid: str
    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    image_position_patient: tuple[float, float, float] | None
    image_orientation_patient: tuple[float, ...] | None
    pixel_spacing: tuple[float, ...] | None
    rows: int
    columns: int
    slice_thickness: float | None
    spacing_between_slices: float | None
    gantry_detector_tilt: float | None
    image_type: str | None
    body_part_examined: str | None
    contrast_bolus_agent: str | None
    convolution_kernel: str | None


def _optional_text(header: object, name: str) -> str | None:
    value = getattr(header, name, None)
    if value is None:
        return None
    if isinstance(value, list | tuple):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


#: Length of the catalog's UID and PatientID columns.
_MAX_KEY = 128


def _int32(value: int | None) -> int | None:
    """An IS value the catalog's Integer column can hold (else None: it is only an order)."""
    return value if value is None or -(2**31) <= value < 2**31 else None


def read_catalog_header(path: str | os.PathLike[str]) -> CatalogHeader:
    """Read the catalogued header fields of one DICOM file (no pixel data).

    Raises
    ------
    ichkit.errors.NotDicomError
        Not a DICOM file, or its header cannot be parsed.
    ichkit.errors.DicomError
        SOPInstanceUID, StudyInstanceUID or SeriesInstanceUID is absent.
    """
    from ichkit.dicom import read_header

    h = read_header(path)
    for keyword, value in (
        ("SOPInstanceUID", h.sop_instance_uid),
        ("StudyInstanceUID", h.study_instance_uid),
        ("SeriesInstanceUID", h.series_instance_uid),
    ):
        if not value:
            raise DicomError(
                f"{keyword} is absent or empty; the catalog needs it to place the file",
                path=path,
                field=keyword,
                value=value,
            )
    # Checked here, file by file: on PostgreSQL an over-long value would fail the
    # whole batch's INSERT (SQLite stores it silently). UI and LO hold at most 64.
    for keyword, value in (
        ("SOPInstanceUID", h.sop_instance_uid),
        ("StudyInstanceUID", h.study_instance_uid),
        ("SeriesInstanceUID", h.series_instance_uid),
        ("PatientID", h.patient_id),
    ):
        if len(value) > _MAX_KEY:
            raise DicomError(
                f"{keyword} is {len(value)} characters long; the catalog holds at most "
                f"{_MAX_KEY} (the standard allows 64)",
                path=path,
                field=keyword,
                value=value[:80] + "...",
            )
    return CatalogHeader(
        transfer_syntax_uid=h.transfer_syntax_uid,
        sop_instance_uid=h.sop_instance_uid,
        patient_id=h.patient_id,
        study_instance_uid=h.study_instance_uid,
        series_instance_uid=h.series_instance_uid,
        modality=h.modality,
        series_number=_int32(h.series_number),
        series_description=h.series_description,
        instance_number=_int32(h.instance_number),
        image_position_patient=h.image_position_patient,
        image_orientation_patient=h.image_orientation_patient,
        pixel_spacing=h.pixel_spacing,
        rows=h.rows,
        columns=h.columns,
        slice_thickness=h.slice_thickness,
        spacing_between_slices=h.spacing_between_slices,
        gantry_detector_tilt=h.gantry_detector_tilt,
        image_type=_optional_text(h, "image_type"),
        body_part_examined=_optional_text(h, "body_part_examined"),
        contrast_bolus_agent=_optional_text(h, "contrast_bolus_agent"),
        convolution_kernel=_optional_text(h, "convolution_kernel"),
    )
