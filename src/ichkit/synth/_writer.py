"""DICOM writing: one exam → an axial CT series (+ scout + dose report) on disk.

Files follow the CT Image IOD (DICOM PS3.3 A.3: Patient, General Study,
General Series, Frame of Reference, General Equipment, General Image, Image
Plane C.7.6.2, Image Pixel C.7.6.3, CT Image C.8.2.1, VOI LUT, SOP Common) and
are written with a File Meta Information header (PS3.10 7.1). The dose report
is a Secondary Capture Image (PS3.3 A.8) with burned-in text.

Pixel storage per vendor profile (:mod:`ichkit.synth._vendors`):

* ``signed16``: raw = HU - intercept, int16, PixelRepresentation 1;
  pixels outside the reconstruction circle hold PixelPaddingValue;
* ``unsigned12``: raw = HU + 1024, BitsStored 12, PixelRepresentation 0;
* ``rsna_quirk12``: BitsStored 12, PixelRepresentation 0, RescaleIntercept 0
  and raw = HU mod 4096, the exact inverse of the fix used in the RSNA 2019
  challenge (``px = px + 1000; px[px >= 4096] -= 4096; intercept = -1000``),
  which recovers HU for HU in [-1000, 3095].
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.charset import default_encoding
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr, write_data_element, write_file_meta_info
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
)

from ichkit.labels import SUBTYPES
from ichkit.synth._config import SynthConfig
from ichkit.synth._generate import ExamPlan, SynthExam, seed_sequence
from ichkit.synth._phi import Identity, SiteInfo, draw_identity, draw_site, study_datetime
from ichkit.synth._vendors import PixelEncoding, VendorProfile, profile_for_site, site_name

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "PRIVATE_PHI_OFFSETS",
    "WrittenExam",
    "encode_pixels",
    "exam_uids",
    "write_exam",
    "write_npz",
]

#: Implementation Class UID written in the File Meta Information (pydicom's root).
IMPLEMENTATION_CLASS_UID = UID("1.2.826.0.1.3680043.8.498.1.2019")
_DETACHED_STUDY = UID("1.2.840.10008.3.1.2.3.1")
#: Element offsets in the vendor private block: patient name, patient ID,
#: birth date, institution and station, referring physician, noise level.
PRIVATE_PHI_OFFSETS: tuple[int, ...] = (0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F)
#: Attributes of an axial image, besides :meth:`_Header.per_image`'s, that differ
#: from image to image of the series.
_SLICE_KEYWORDS = ("InstanceNumber", "ImagePositionPatient", "SliceLocation")


@dataclass(frozen=True)
class WrittenExam:
    """What was written for one exam (paths relative to the dataset folder)."""

    index: int
    site: str
    patient_id: str
    study_uid: str
    series_uid: str
    series_dir: str
    sop_instance_uids: tuple[str, ...]  # axial images, inferior -> superior
    files: tuple[str, ...]  # their paths, same order
    labels: NDArray[np.uint8]  # (slices, 6)
    extra_files: tuple[str, ...]  # scout and dose report
    best_slices: dict[str, tuple[int, int]]  # subtype -> (slice, mask pixels)
    mimic_slices: dict[str, list[int]]


@dataclass(frozen=True)
class ExamUIDs:
    """UIDs and identifiers of one exam, derivable from the config alone."""

    key: int
    root: str
    study: str
    series: str
    scout_series: str
    dose_series: str
    frame_of_reference: str
    accession: str


def _uid(*parts: object) -> str:
    uid = ".".join(str(p) for p in parts)
    if len(uid) > 64:
        raise ValueError(f"UID {uid!r} is longer than 64 characters")
    return uid


def exam_uids(config: SynthConfig, plan: ExamPlan) -> ExamUIDs:
    """The exam's UIDs (site UID root + per-exam digits from the exam's own seed)."""
    vendor = profile_for_site(plan.site)
    rng = np.random.default_rng(seed_sequence(config.seed, 5, plan.index))
    key = int(rng.integers(10**10, 10**11))
    root = f"{vendor.uid_root}.{plan.site + 1}"
    n = plan.index + 1
    site = draw_site(np.random.default_rng(seed_sequence(config.seed, 4, plan.site)), plan.site)
    return ExamUIDs(
        key=key,
        root=root,
        study=_uid(root, 2, key, n),
        series=_uid(root, 3, key, n, 2),
        scout_series=_uid(root, 3, key, n, 1),
        dose_series=_uid(root, 3, key, n, 999),
        frame_of_reference=_uid(root, 5, key, n),
        accession=f"{site.accession_prefix}{int(rng.integers(10**7, 10**8))}",
    )


def encode_pixels(hu: NDArray[np.int16], vendor: VendorProfile) -> NDArray[np.integer]:
    """Stored pixel values of HU for a vendor's encoding (no padding applied)."""
    h = hu.astype(np.int32)
    if vendor.encoding is PixelEncoding.SIGNED16:
        return (h - vendor.intercept).astype(np.int16)
    if vendor.encoding is PixelEncoding.UNSIGNED12:
        return np.clip(h - vendor.intercept, 0, 4095).astype(np.uint16)
    # RSNA quirk: stored so that ((raw + 1000) mod 4096) - 1000 == HU
    return np.mod(np.clip(h, -1000, 3095), 4096).astype(np.uint16)


def _da(d: dt.date) -> str:
    return d.strftime("%Y%m%d")


def _tm(t: dt.datetime) -> str:
    return t.strftime("%H%M%S") + f".{t.microsecond // 1000:03d}"


def _age(birth: dt.date, on: dt.date) -> str:
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return f"{max(years, 0):03d}Y"


def _file_names(vendor: VendorProfile, uids: list[str], rng: np.random.Generator) -> list[str]:
    n = len(uids)
    if vendor.naming == "sop":
        return [f"{u}.dcm" for u in uids]
    if vendor.naming == "rsna":
        hexes: set[str] = set()
        names: list[str] = []
        while len(names) < n:
            h = f"{int(rng.integers(0, 16**9)):09x}"
            if h not in hexes:
                hexes.add(h)
                names.append(f"ID_{h}.dcm")
        return names
    if vendor.naming == "im_shuffled":
        perm = rng.permutation(n)
        return [f"IM_{int(p) + 1:04d}.dcm" for p in perm]
    nums = rng.choice(10**8, size=n, replace=False)
    return [f"IM{int(x):08d}.dcm" for x in nums]


class _Header:
    """Builds datasets for one exam: shared modules + per-image attributes."""

    def __init__(
        self,
        exam: SynthExam,
        config: SynthConfig,
        plan: ExamPlan,
        uids: ExamUIDs,
        identity: Identity,
        site: SiteInfo,
        when: dt.datetime,
        prior_study: str | None,
        rng: np.random.Generator,
    ) -> None:
        self.exam = exam
        self.meta = exam.metadata
        self.vendor = exam.metadata.vendor
        self.config = config
        self.plan = plan
        self.uids = uids
        self.identity = identity
        self.site = site
        self.when = when
        self.prior_study = prior_study
        self.patient_id = site.id_format.format(identity.mrn_number % 10**7)
        self.referring = site.referring[int(rng.integers(len(site.referring)))]
        self.reader = site.radiologists[int(rng.integers(len(site.radiologists)))]
        self.tech = site.technologists[int(rng.integers(len(site.technologists)))]
        self.study_id = f"{int(rng.integers(1000, 99999))}"

    def base(
        self,
        sop_class: str,
        sop_uid: str,
        series_uid: str,
        series_number: int,
        series_description: str,
        modality: str = "CT",
        offset_s: float = 0.0,
    ) -> Dataset:
        ds = Dataset()
        ident, site, v = self.identity, self.site, self.vendor
        series_time = self.when + dt.timedelta(seconds=30.0 * series_number)
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = sop_class
        ds.StudyDate = _da(self.when.date())
        ds.SeriesDate = _da(series_time.date())
        ds.StudyTime = _tm(self.when)
        ds.SeriesTime = _tm(series_time)
        _assign(ds, self.per_image(sop_uid, offset_s))
        ds.AccessionNumber = self.uids.accession
        ds.Modality = modality
        ds.Manufacturer = v.manufacturer
        ds.InstitutionName = site.institution
        ds.InstitutionAddress = site.address
        ds.ReferringPhysicianName = self.referring
        ds.StationName = site.station_name
        ds.StudyDescription = f"CT HEAD WO CONTRAST {ident.family.upper()}"
        ds.ProcedureCodeSequence = DicomSequence(
            [_code("CTHEADWO", "L", "CT HEAD WITHOUT CONTRAST")]
        )
        ds.SeriesDescription = series_description
        ds.InstitutionalDepartmentName = site.department
        ds.PhysiciansOfRecord = self.referring
        ds.PerformingPhysicianName = self.reader
        ds.NameOfPhysiciansReadingStudy = self.reader
        ds.OperatorsName = self.tech
        ds.ManufacturerModelName = v.model
        ref = Dataset()
        ref.ReferencedSOPClassUID = _DETACHED_STUDY
        ref.ReferencedSOPInstanceUID = self.prior_study or _uid(self.uids.root, 9, self.uids.key, 1)
        ds.ReferencedStudySequence = DicomSequence([ref])
        ds.PatientName = ident.name
        ds.PatientID = self.patient_id
        ds.IssuerOfPatientID = site.institution
        ds.PatientBirthDate = _da(ident.birth_date)
        ds.PatientSex = ident.sex
        other = Dataset()
        other.PatientID = ident.other_id
        other.IssuerOfPatientID = "SSA"
        other.TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence = DicomSequence([other])
        ds.OtherPatientIDs = ident.other_id
        ds.PatientAge = _age(ident.birth_date, self.when.date())
        ds.PatientWeight = f"{60 + (ident.mrn_number % 40)}"
        ds.PatientAddress = ident.address
        ds.PatientTelephoneNumbers = ident.phone
        ds.AdditionalPatientHistory = ident.history
        ds.DeviceSerialNumber = site.device_serial
        ds.SoftwareVersions = v.software
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = self.uids.study
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = self.study_id
        ds.SeriesNumber = series_number
        ds.FrameOfReferenceUID = self.uids.frame_of_reference
        ds.PositionReferenceIndicator = "OM"
        req = Dataset()
        req.AccessionNumber = self.uids.accession
        req.RequestedProcedureID = f"RP{self.uids.accession}"
        req.RequestedProcedureDescription = f"CT HEAD WO - {ident.given} {ident.family}"
        req.ScheduledProcedureStepID = f"SPS{self.study_id}"
        req.ScheduledProcedureStepDescription = f"STAT head CT for {ident.family.upper()}"
        req.RequestingPhysician = self.referring
        ds.RequestAttributesSequence = DicomSequence([req])
        ds.RequestingPhysician = self.referring
        ds.ImageComments = (
            f"Reviewed by {self.reader.split('^')[0]}; tech {self.tech.split('^')[0]}"
        )
        # Offsets 0x3A-0x3F are undefined in pydicom's private dictionaries for
        # every profile's creator, so implicit-VR readers see them as UN.
        block = ds.private_block(v.private_group, v.private_creator, create=True)
        for offset, value in zip(PRIVATE_PHI_OFFSETS, self.private_phi(), strict=True):
            block.add_new(offset, "LO", value)
        return ds

    def per_image(self, sop_uid: str, offset_s: float) -> dict[str, str]:
        """The attributes of :meth:`base` that differ from image to image of a series."""
        when = self.when + dt.timedelta(seconds=offset_s)
        return {
            "SOPInstanceUID": sop_uid,
            "AcquisitionDate": _da(when.date()),
            "ContentDate": _da(when.date()),
            "AcquisitionTime": _tm(when),
            "ContentTime": _tm(when + dt.timedelta(seconds=2)),
        }

    def private_phi(self) -> tuple[str, ...]:
        """Values of the vendor private block (in PRIVATE_PHI_OFFSETS order)."""
        ident, site = self.identity, self.site
        return (
            ident.name.replace("^", " "),
            self.patient_id,
            _da(ident.birth_date),
            f"{site.institution}, {site.station_name}",
            self.referring.replace("^", " "),
            f"{self.meta.noise_sigma:.2f}",
        )

    def pixel_module(
        self, ds: Dataset, rows: int, cols: int, *, bits_stored: int, signed: bool
    ) -> None:
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = rows
        ds.Columns = cols
        ds.BitsAllocated = 16
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = int(signed)


def _assign(ds: Dataset, values: dict[str, Any]) -> None:
    for keyword, value in values.items():
        setattr(ds, keyword, value)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _set_pixels(
    ds: Dataset, transfer_syntax: str, arr: NDArray[np.integer] | None, plugin: str
) -> None:
    """Set the File Meta Information and (encoded) Pixel Data of ``ds``."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    ds.file_meta.ImplementationVersionName = "ICHKIT_SYNTH_1"
    if arr is not None:
        if UID(transfer_syntax).is_compressed:
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.compress(transfer_syntax, arr, encoding_plugin=plugin, generate_instance_uid=False)
        else:
            ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
            ds.PixelData = np.ascontiguousarray(arr).tobytes()
    else:
        ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)


def _save(
    ds: Dataset, path: Path, transfer_syntax: str, arr: NDArray[np.integer] | None, plugin: str
) -> None:
    _set_pixels(ds, transfer_syntax, arr, plugin)
    ds.save_as(path, enforce_file_format=True)


class _SliceWriter:
    """Writes the images of one series from a template dataset.

    Each image is the template with its own ``per_image`` values and Pixel Data.
    pydicom re-encodes every element of every file (and builds the header anew
    for each); here the runs of elements between the per-image ones, the same in
    every image, are encoded once and only the per-image elements and the File
    Meta Information are encoded for each file. The bytes equal pydicom's
    ``dcmwrite`` of the same dataset (``splice=False`` writes with it; the tests
    compare the two on every vendor profile).
    """

    def __init__(
        self,
        template: Dataset,
        per_image: Sequence[str],
        transfer_syntax: str,
        plugin: str,
        *,
        splice: bool = True,
    ) -> None:
        self.ds = template
        self.transfer_syntax = UID(transfer_syntax)
        self.plugin = plugin
        self.splice = splice
        self._per_image = frozenset(Tag(keyword) for keyword in (*per_image, "PixelData"))
        self._parts: list[bytes | BaseTag] = []
        self._size = 0

    def write(self, path: Path, values: dict[str, Any], arr: NDArray[np.integer]) -> None:
        """Write the template with ``values`` (``per_image`` keywords) and ``arr`` to ``path``."""
        ds = self.ds
        if not {Tag(k) for k in values} <= self._per_image:
            raise ValueError(f"not per-image attributes: {sorted(values)}")
        _assign(ds, values)
        _set_pixels(ds, self.transfer_syntax, arr, self.plugin)
        if not self.splice:
            ds.save_as(path, enforce_file_format=True)
            return
        if not self._parts:
            self._encode_shared()
        elif len(ds) != self._size:
            raise RuntimeError("the template gained or lost elements between images")
        ds["PixelData"].is_undefined_length = self.transfer_syntax.is_compressed
        fp = self._buffer()
        fp.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
        charset = ds.get("SpecificCharacterSet", default_encoding)
        for part in self._parts:
            if isinstance(part, bytes):
                fp.write(part)
            else:
                write_data_element(fp, ds.get_item(part), charset)
        path.write_bytes(fp.getvalue())

    def _encode_shared(self) -> None:
        """Encode the runs of shared elements, as ``write_dataset`` would (tag order)."""
        ds = self.ds
        correct_ambiguous_vr(ds, self.transfer_syntax.is_little_endian)
        charset = ds.get("SpecificCharacterSet", default_encoding)
        run = self._buffer()
        for tag in sorted(ds.keys()):
            if tag.element == 0 and tag.group > 6:  # retired group lengths: never written
                continue
            if tag in self._per_image:
                self._parts += [run.getvalue(), tag]
                run = self._buffer()
            else:
                write_data_element(run, ds.get_item(tag), charset)
        self._parts.append(run.getvalue())
        self._parts = [p for p in self._parts if p != b""]
        self._size = len(ds)

    def _buffer(self) -> DicomBytesIO:
        fp = DicomBytesIO()
        fp.is_implicit_VR = self.transfer_syntax.is_implicit_VR
        fp.is_little_endian = self.transfer_syntax.is_little_endian
        return fp


def write_exam(
    exam: SynthExam,
    config: SynthConfig,
    plan: ExamPlan,
    out: Path,
    *,
    prior_study: str | None = None,
    splice: bool = True,
) -> WrittenExam:
    """Write one exam under ``out/dicom`` (and its masks under ``out/masks``).

    The series is written into a hidden temporary folder and renamed into
    place, so an interrupted run never leaves a partial series under its name.
    ``splice=False`` writes each image with pydicom's ``dcmwrite`` instead of
    re-using the encoded shared elements (same bytes, slower; for tests).
    """
    meta = exam.metadata
    vendor = meta.vendor
    uids = exam_uids(config, plan)
    rng = np.random.default_rng(seed_sequence(config.seed, 6, plan.index))
    identity = draw_identity(np.random.default_rng(seed_sequence(config.seed, 3, plan.patient)))
    site = draw_site(np.random.default_rng(seed_sequence(config.seed, 4, plan.site)), plan.site)
    when = study_datetime(config.seed, rng)
    header = _Header(exam, config, plan, uids, identity, site, when, prior_study, rng)
    sname = site_name(plan.site)
    study_dir = Path("dicom") / sname / header.patient_id / uids.study
    n = exam.hu.shape[0]
    instance = [(n - k) if vendor.superior_first else (k + 1) for k in range(n)]
    # instance UIDs end in a per-image number (as scanners' time stamps do), so
    # neither their order nor "<uid>.dcm" file names follow the slices
    stamps = rng.choice(np.arange(10**5, 10**6), size=n, replace=False)
    sops = [_uid(uids.root, 4, uids.key, plan.index + 1, 2, int(stamps[k])) for k in range(n)]
    names = _file_names(vendor, sops, rng)
    raw = encode_pixels(exam.hu, vendor)
    if vendor.padding is not None:
        rr, cc = np.mgrid[: meta.rows, : meta.columns]
        c0 = (meta.rows - 1) / 2.0
        outside = (rr - c0) ** 2 + (cc - c0) ** 2 > (meta.rows / 2.0) ** 2
        raw = raw.copy()
        raw[:, outside] = vendor.padding
    desc = f"HEAD {meta.slice_thickness:.1f}mm {vendor.kernel}"
    series_desc = f"{desc} - {identity.family.upper()} {identity.given[0]}"

    final = out / study_dir / uids.series
    tmp = out / study_dir / f".tmp-{uids.series}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    normal = np.cross(
        np.asarray(meta.image_orientation[:3]), np.asarray(meta.image_orientation[3:])
    )
    ds = header.base(CTImageStorage, sops[0], uids.series, 2, series_desc)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ScanOptions = "HELICAL MODE" if vendor.manufacturer.startswith("GE") else "AXIAL MODE"
    ds.SliceThickness = f"{meta.slice_thickness:.3f}".rstrip("0").rstrip(".")
    ds.KVP = vendor.kvp
    ds.SpacingBetweenSlices = ds.SliceThickness
    ds.DataCollectionDiameter = "250"
    ds.ReconstructionDiameter = f"{meta.pixel_spacing * meta.columns:.2f}"
    ds.GantryDetectorTilt = f"{meta.gantry_tilt:.1f}"
    ds.TableHeight = "160"
    ds.RotationDirection = "CW"
    ds.ExposureTime = 1000
    ds.XRayTubeCurrent = int(180 + 20 * (plan.index % 5))
    ds.ConvolutionKernel = vendor.kernel
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [f"{x:.6g}" for x in meta.image_orientation]
    ds.PixelSpacing = [f"{meta.pixel_spacing:.6g}"] * 2
    header.pixel_module(
        ds,
        meta.rows,
        meta.columns,
        bits_stored=16 if vendor.encoding is PixelEncoding.SIGNED16 else 12,
        signed=vendor.encoding is PixelEncoding.SIGNED16,
    )
    if vendor.padding is not None:
        ds.PixelPaddingValue = vendor.padding
    ds.WindowCenter = (
        list(vendor.window_center) if len(vendor.window_center) > 1 else vendor.window_center[0]
    )
    ds.WindowWidth = (
        list(vendor.window_width) if len(vendor.window_width) > 1 else vendor.window_width[0]
    )
    if len(vendor.window_center) > 1:
        ds.WindowCenterWidthExplanation = [
            "BRAIN",
            "BONE" if vendor.window_width[1] > 1000 else "SUBDURAL",
        ]
    ds.RescaleIntercept = vendor.intercept
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    per_image = (*header.per_image(sops[0], 0.0), *_SLICE_KEYWORDS)
    writer = _SliceWriter(
        ds, per_image, vendor.transfer_syntax, vendor.encoding_plugin, splice=splice
    )
    for k in range(n):
        pos = meta.image_positions[k]
        values: dict[str, Any] = {
            **header.per_image(sops[k], 0.5 * instance[k]),
            "InstanceNumber": instance[k],
            "ImagePositionPatient": [f"{x:.6g}" for x in pos],
            "SliceLocation": f"{float(pos @ normal):.3f}",
        }
        writer.write(tmp / names[k], values, raw[k])
    extras: list[str] = []
    if config.scout:
        scout_dir = out / study_dir / uids.scout_series
        scout_dir.mkdir(parents=True, exist_ok=True)
        name = _write_scout(header, exam, scout_dir)
        extras.append(str((study_dir / uids.scout_series / name).as_posix()))
    if config.dose_report:
        dose_dir = out / study_dir / uids.dose_series
        dose_dir.mkdir(parents=True, exist_ok=True)
        name = _write_dose_report(header, exam, dose_dir)
        extras.append(str((study_dir / uids.dose_series / name).as_posix()))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)

    best: dict[str, tuple[int, int]] = {}
    for s in SUBTYPES:
        areas = exam.masks[s].reshape(n, -1).sum(axis=1)
        if areas.max() > 0:
            k = int(np.argmax(areas))
            best[s] = (k, int(areas[k]))
    if config.masks:
        arrays: dict[str, NDArray[np.generic]] = {s: exam.masks[s] for s in SUBTYPES}
        arrays["sop_instance_uids"] = np.asarray(sops)
        arrays["labels"] = exam.labels
        write_npz(out / "masks" / f"{uids.series}.npz", arrays)
    return WrittenExam(
        index=plan.index,
        site=sname,
        patient_id=header.patient_id,
        study_uid=uids.study,
        series_uid=uids.series,
        series_dir=str((study_dir / uids.series).as_posix()),
        sop_instance_uids=tuple(sops),
        files=tuple(str((study_dir / uids.series / name).as_posix()) for name in names),
        labels=exam.labels,
        extra_files=tuple(extras),
        best_slices=best,
        mimic_slices=dict(meta.mimics),
    )


def _write_scout(header: _Header, exam: SynthExam, folder: Path) -> str:
    """A lateral localizer: the volume's attenuation summed across the head."""
    from scipy import ndimage  # type: ignore[import-untyped]

    meta = exam.metadata
    att = np.clip((exam.hu.astype(np.float32) + 1000.0) / 1000.0, 0.0, None)
    proj = att.sum(axis=2) * meta.pixel_spacing  # (slices, rows): z by antero-posterior
    size = meta.rows
    proj = ndimage.zoom(
        proj[::-1], (size / proj.shape[0], 1.0), order=1, grid_mode=True, mode="nearest"
    )
    img = np.clip(proj / max(float(proj.max()), 1e-3) * 3000.0, 0, 4095).astype(np.uint16)
    uid = _uid(header.uids.root, 4, header.uids.key, header.plan.index + 1, 1, 1)
    ds = header.base(CTImageStorage, uid, header.uids.scout_series, 1, "SCOUT LAT", offset_s=-60.0)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.KVP = 120
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = 1
    top = meta.image_positions[-1]
    z_extent = meta.slice_thickness * len(meta.image_positions)
    ds.ImagePositionPatient = [0, f"{top[1]:.6g}", f"{top[2] + meta.slice_thickness / 2:.6g}"]
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.PixelSpacing = [f"{z_extent / size:.6g}", f"{meta.pixel_spacing:.6g}"]
    header.pixel_module(ds, img.shape[0], img.shape[1], bits_stored=12, signed=False)
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.WindowCenter = 1500
    ds.WindowWidth = 3000
    name = "SCOUT_0001.dcm"
    _save(ds, folder / name, ExplicitVRLittleEndian, img, "")
    return name


def _write_dose_report(header: _Header, exam: SynthExam, folder: Path) -> str:
    """A dose report screen capture with burned-in PHI, as vendors export it."""
    meta = exam.metadata
    n = len(meta.image_positions)
    ctdi = 45.0 + 10.0 * (header.plan.index % 7) / 7.0
    dlp = ctdi * n * meta.slice_thickness / 10.0
    lines = [
        f"{header.site.institution}",
        "",
        f"Patient Name: {header.identity.name.replace('^', ' ')}",
        f"Patient ID:   {header.patient_id}",
        f"Accession:    {header.uids.accession}",
        f"Exam Date:    {header.when.strftime('%b %d %Y %H:%M')}",
        "Exam Description: CT HEAD WO CONTRAST",
        "",
        "Series  Type    Scan Range    CTDIvol  DLP",
        "1       Scout   -             -        -",
        f"2       Helical {n * meta.slice_thickness:5.1f} mm     {ctdi:5.2f}    {dlp:7.2f}",
        "",
        f"Total Exam DLP: {dlp:8.2f} mGy-cm",
        f"Phantom: Head 16 cm   {header.vendor.model}",
    ]
    img = render_text(lines, size=512)
    uid = _uid(header.uids.root, 4, header.uids.key, header.plan.index + 1, 999, 1)
    ds = header.base(
        SecondaryCaptureImageStorage,
        uid,
        header.uids.dose_series,
        999,
        "Dose Report",
        offset_s=600.0,
    )
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    ds.BurnedInAnnotation = "YES"
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = img.shape
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    name = "DOSE_0001.dcm"
    _save(ds, folder / name, ExplicitVRLittleEndian, img, "")
    return name


def render_text(lines: list[str], *, size: int) -> NDArray[np.uint8]:
    """White monospace text on black, as an 8-bit image.

    Each line is rasterised by matplotlib's FreeType wrapper as matplotlib's
    Agg renderer does it (DejaVu Sans Mono, 9.5 pt at 100 dpi, antialiased,
    matplotlib's hinting), its top at ``0.05 + 0.055 * i`` of the height and 4 %
    from the left edge. Drawing the glyphs directly skips building a matplotlib
    figure for every dose report, which took 6x as long (benchmarks/RESULTS.md,
    synthetic exams).
    """
    from matplotlib import font_manager
    from matplotlib.backends.backend_agg import get_hinting_flag

    # get_font caches one FT2Font per thread and file
    font = font_manager.get_font(font_manager.findfont("DejaVu Sans Mono"))
    out = np.zeros((size, size), dtype=np.uint8)
    left = round(0.04 * size)
    for i, line in enumerate(lines):
        top = round((0.05 + 0.055 * i) * size)
        if not line.strip() or top >= size:
            continue
        font.clear()
        font.set_size(9.5, 100)
        font.set_text(line, 0.0, flags=get_hinting_flag())  # type: ignore[no-untyped-call]
        font.draw_glyphs_to_bitmap(antialiased=True)
        glyphs = np.asarray(font.get_image())
        h, w = min(glyphs.shape[0], size - top), min(glyphs.shape[1], size - left)
        region = out[top : top + h, left : left + w]
        np.maximum(region, glyphs[:h, :w], out=region)
    return out


def write_npz(path: Path, arrays: dict[str, NDArray[np.generic]]) -> None:
    """Write arrays as a compressed ``.npz`` with fixed zip timestamps (same bytes each run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            data = io.BytesIO()
            np.lib.format.write_array(data, np.asanyarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data.getvalue())
    from ichkit._atomic import atomic_write_bytes

    atomic_write_bytes(path, buf.getvalue())
