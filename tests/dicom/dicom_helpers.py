"""Helpers for ichkit.dicom tests: real data paths and a tiny synthetic CT writer."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
SERIES_A = REALDATA / "rsna-series-a"
SERIES_B = REALDATA / "rsna-series-b"
CQ500 = REALDATA / "cq500-ct0"

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def require_realdata(folder: Path = REALDATA) -> Path:
    """Return ``folder`` or skip the test when the real-data fixtures are absent."""
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} is absent (it lives in ../shared/realdata)")
    return folder


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's validation warnings for test-side reads/writes of RSNA `ID_` UIDs."""
    import pydicom

    settings = pydicom.config.settings
    old = settings.reading_validation_mode, settings.writing_validation_mode
    settings.reading_validation_mode = pydicom.config.IGNORE
    settings.writing_validation_mode = pydicom.config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        settings.reading_validation_mode, settings.writing_validation_mode = old


def write_ct(
    path: Path,
    *,
    position: Sequence[float] = (0.0, 0.0, 0.0),
    orientation: Sequence[float] = AXIAL,
    pixels: np.ndarray | None = None,
    rows: int = 8,
    columns: int = 8,
    series_uid: str = "1.2.826.0.1.3680043.8.498.1",
    sop_uid: str | None = None,
    instance_number: int = 1,
    intercept: float = -1024.0,
    slope: float = 1.0,
    bits_stored: int = 16,
    signed: bool = True,
    extra: dict[str, object] | None = None,
) -> Path:
    """Write a minimal single-frame CT image (Explicit VR Little Endian)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    if pixels is None:
        pixels = np.full((rows, columns), 1024 + 40, dtype=np.int16 if signed else np.uint16)
    rows, columns = pixels.shape
    sop_uid = sop_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "CT"
    ds.PatientID = "SYNTH-1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesInstanceUID = series_uid
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = [f"{v:g}" for v in position]
    ds.ImageOrientationPatient = [f"{v:g}" for v in orientation]
    ds.PixelSpacing = ["0.5", "0.5"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleIntercept = f"{intercept:g}"
    ds.RescaleSlope = f"{slope:g}"
    ds.WindowCenter = "40"
    ds.WindowWidth = "80"
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<i2" if signed else "<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
