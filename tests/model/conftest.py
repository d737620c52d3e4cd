"""Fixtures for the model tests: tiny DICOM datasets written here (synth layout).

Each exam is one axial series of small slices: air, a skull ring, brain at
30 HU; a positive exam holds a bright 75 HU blob on a few consecutive slices,
labelled with one subtype (and ``any``). The layout is the ``ichkit synth``
one: ``truth.csv`` + ``dicom/<site>/<patient>/<study>/<series>/*.dcm``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

LABELS = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")


def _write_slice(
    path: Path,
    hu: np.ndarray,
    *,
    sop: str,
    series: str,
    study: str,
    patient: str,
    z: float,
    spacing: float,
    thickness: float = 5.0,
) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop
    ds.Modality = "CT"
    ds.PatientID = patient
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = [-100.0, -100.0, z]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [spacing, spacing]
    ds.SliceThickness = thickness
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = hu.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.PixelData = hu.astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def phantom(
    rng: np.random.Generator, *, size: int, slices: int, positive: bool, lesion_slices: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """(hu (slices, size, size) int16, lesion mask) of one exam."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = size / 2 + rng.uniform(-2, 2, size=2)
    a, b = size * 0.36, size * 0.42
    r = ((xx - c[1]) / a) ** 2 + ((yy - c[0]) / b) ** 2
    base = np.full((size, size), -1000.0, dtype=np.float32)
    base[r < 1.0] = 1000.0
    base[r < 0.8] = 30.0
    hu = np.repeat(base[None], slices, axis=0)
    hu += rng.normal(0, 4, size=hu.shape)
    mask = np.zeros(hu.shape, dtype=bool)
    if positive:
        k0 = int(rng.integers(1, slices - lesion_slices))
        cy, cx = c[0] + rng.uniform(-0.2, 0.2) * b, c[1] + rng.uniform(-0.2, 0.2) * a
        rad = size * 0.12
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 < rad**2
        for k in range(k0, k0 + lesion_slices):
            hu[k][blob] = 75.0 + rng.normal(0, 3)
            mask[k] = blob
    return np.round(hu).astype(np.int16), mask


def make_dataset(
    root: Path,
    *,
    exams: int,
    size: int = 32,
    slices: int = 8,
    seed: int = 0,
    positive_every: int = 2,
    slice_mm: float = 5.0,
    lesion_slices: int = 3,
    patient_prefix: str = "P",
) -> Path:
    """Write a tiny dataset in the synth layout (slices ``slice_mm`` apart); return ``root``.

    Patients are ``<patient_prefix>0000``, ``…0001``, …
    """
    rng = np.random.default_rng(seed)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    lines = ["ID,Label"]
    exam_rows = ["site,patient,study,series," + ",".join(LABELS)]
    mimic_rows = ["sop_instance_uid,series_instance_uid,slice,mimic,any"]
    for e in range(exams):
        patient = f"{patient_prefix}{e:04d}"
        study = f"1.2.826.0.1.3680043.10.1.{seed}.{e}"
        series = f"{study}.1"
        folder = root / "dicom" / "site0" / patient / f"st{e}" / f"se{e}"
        folder.mkdir(parents=True, exist_ok=True)
        positive = e % positive_every == 0
        hu, mask = phantom(
            rng, size=size, slices=slices, positive=positive, lesion_slices=lesion_slices
        )
        subtype = int(rng.integers(0, 5))
        if not positive:  # a calcification (hard negative) on slice 1, listed in mimics.csv
            mid = size // 2
            hu[1, mid : mid + 2, mid : mid + 2] = 250
            mimic_rows.append(f"{series}.2,{series},1,pineal,0")
        exam_label = [0] * 6
        sops = []
        for k in range(slices):
            sop = f"{series}.{k + 1}"
            sops.append(sop)
            # files named in reverse order: the reader must sort by position
            _write_slice(
                folder / f"img{slices - k:03d}.dcm",
                hu[k],
                sop=sop,
                series=series,
                study=study,
                patient=patient,
                z=slice_mm * k,
                spacing=200.0 / size,
                thickness=slice_mm,
            )
            lab = [0] * 6
            if mask[k].any():
                lab[subtype] = 1
                lab[5] = 1
                exam_label[subtype] = exam_label[5] = 1
            lines.extend(f"ID_{sop}_{name},{v}" for name, v in zip(LABELS, lab, strict=True))
        np.savez_compressed(
            root / "masks" / f"{series}.npz", masks=mask, sop_instance_uids=np.array(sops)
        )
        exam_rows.append(f"site0,{patient},st{e},se{e}," + ",".join(map(str, exam_label)))
    (root / "truth.csv").write_text("\n".join(lines) + "\n")
    (root / "exams.csv").write_text("\n".join(exam_rows) + "\n")
    (root / "mimics.csv").write_text("\n".join(mimic_rows) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 exams of 8 slices at 32 px, half positive."""
    return make_dataset(tmp_path_factory.mktemp("tiny-ds"), exams=12, size=32, slices=8)


@pytest.fixture(autouse=True)
def _few_threads() -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder trained for 2 epochs on ``tiny_dataset`` (with model.onnx)."""
    from ichkit.model import load_config, train_model

    out = tmp_path_factory.mktemp("tiny-run")
    cfg = load_config(
        preset="tiny",
        overrides={"data": str(tiny_dataset), "export_onnx": True, "epochs": 2},
    )
    train_model(cfg, out=out)
    return out


@pytest.fixture(scope="session")
def dataset_factory() -> object:
    """The :func:`make_dataset` writer."""
    return make_dataset
