"""Small DICOM series written with pydicom, for catalog and curation tests.

Each series is a stack of tiny (16 x 16 by default) CT slices whose headers
can be bent to trigger one QC reason at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def uid(*parts: object) -> str:
    """A deterministic UID under the 2.25 root (PS3.5 B.2) from the given parts."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:15], "big"))


def write_slice(
    path: Path,
    *,
    patient: str,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    z: float,
    number: int,
    modality: str = "CT",
    orientation: Sequence[float] = AXIAL,
    size: tuple[int, int] = (16, 16),
    description: str = "HEAD WO",
    contrast: str | None = None,
    truncate_pixels: bool = False,
    stack: Sequence[float] | None = None,
) -> Path:
    """Write one slice at ``z`` mm along ``stack`` (default: the slice normal).

    ``truncate_pixels`` leaves PixelData shorter than Rows x Columns.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.SeriesDescription = description
    ds.PatientID = patient
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 2
    ds.InstanceNumber = number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    if contrast:
        ds.ContrastBolusAgent = contrast
    normal = np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))
    position = (np.asarray(stack, dtype=float) if stack is not None else normal) * z
    ds.ImagePositionPatient = [f"{v:.3f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:g}" for v in orientation]
    ds.PixelSpacing = ["0.5", "0.5"]
    ds.SliceThickness = "5"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    pixels = np.full(size, 40, dtype=np.int16)
    data = pixels.tobytes()
    ds.PixelData = data[: len(data) // 2] if truncate_pixels else data
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(
    folder: Path,
    *,
    patient: str = "P1",
    study: str = "S1",
    series: str = "A",
    n: int = 12,
    spacing: float = 5.0,
    positions: Sequence[float] | None = None,
    sizes: Sequence[tuple[int, int]] | None = None,
    truncate: Sequence[int] = (),
    **kwargs: object,
) -> list[Path]:
    """Write a series of ``n`` slices (or one per given position) into ``folder``."""
    zs = list(positions) if positions is not None else [i * spacing for i in range(n)]
    study_uid = uid("study", patient, study)
    series_uid = uid("series", patient, study, series)
    paths = []
    for i, z in enumerate(zs):
        paths.append(
            write_slice(
                folder / f"{series}_{i:03d}.dcm",
                patient=patient,
                study_uid=study_uid,
                series_uid=series_uid,
                sop_uid=uid("sop", patient, study, series, i),
                z=z,
                number=i + 1,
                size=sizes[i] if sizes is not None else (16, 16),
                truncate_pixels=i in truncate,
                **kwargs,  # type: ignore[arg-type]
            )
        )
    return paths
