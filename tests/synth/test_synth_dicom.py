"""DICOM output: vendor variants round-trip to the phantom's HU; headers are realistic."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from conftest import SynthDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
)

from ichkit.dicom import AIR_HU
from ichkit.synth import (
    PixelEncoding,
    SynthConfig,
    generate_exam,
    plan_dataset,
    profile_for_site,
)
from ichkit.synth._generate import HU_MIN


def _fov(rows: int) -> np.ndarray:
    rr, cc = np.mgrid[:rows, :rows]
    c = (rows - 1) / 2.0
    return (rr - c) ** 2 + (cc - c) ** 2 <= (rows / 2.0) ** 2


def _hu_with_pydicom(ds: pydicom.Dataset) -> np.ndarray:
    """raw * slope + intercept, with the RSNA 2019 Kaggle fix for the 12-bit quirk."""
    px = ds.pixel_array.astype(np.int32)
    intercept = float(ds.RescaleIntercept)
    if ds.BitsStored == 12 and ds.PixelRepresentation == 0 and intercept > -100:
        px = px + 1000
        px[px >= 4096] = px[px >= 4096] - 4096
        intercept = -1000.0
    return px * float(ds.RescaleSlope) + intercept


def test_all_vendor_variants_present(synth_dataset: SynthDataset) -> None:
    syntaxes, encodings = set(), set()
    for written in synth_dataset.summary.exams:
        ds = pydicom.dcmread(synth_dataset.path / written.files[0], stop_before_pixels=True)
        syntaxes.add(ds.file_meta.TransferSyntaxUID)
        encodings.add((int(ds.BitsStored), int(ds.PixelRepresentation), int(ds.RescaleIntercept)))
    assert syntaxes == {
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        RLELossless,
        JPEGLSLossless,
        JPEG2000Lossless,
    }
    assert {(16, 1, -1024), (12, 0, -1024), (12, 0, 0), (16, 1, 0)} <= encodings


def test_each_vendor_round_trips_to_phantom_hu(synth_dataset: SynthDataset) -> None:
    cfg = synth_dataset.config
    plans = plan_dataset(cfg)
    seen = set()
    for written in synth_dataset.summary.exams:
        exam = generate_exam(cfg, plans[written.index])
        vendor = profile_for_site(plans[written.index].site)
        seen.add(vendor.encoding)
        inside = _fov(exam.metadata.rows)
        for k, rel in enumerate(written.files):
            ds = pydicom.dcmread(synth_dataset.path / rel)
            assert ds.SOPInstanceUID == written.sop_instance_uids[k]
            hu = _hu_with_pydicom(ds)
            assert np.array_equal(hu[inside], exam.hu[k][inside]), (vendor.key, k)
            if vendor.padding is not None:
                assert (ds.pixel_array[~inside] == vendor.padding).all()
    assert seen == set(PixelEncoding)


def test_load_series_round_trip(synth_dataset: SynthDataset) -> None:
    """The dicom stage's reader gives the phantom HU back, inferior to superior."""
    from ichkit.dicom import load_series

    cfg = synth_dataset.config
    plans = plan_dataset(cfg)
    for written in synth_dataset.summary.exams:
        series = load_series(synth_dataset.path / written.series_dir)
        exam = generate_exam(cfg, plans[written.index])
        assert tuple(series.sop_instance_uids) == written.sop_instance_uids
        # the whole image: where the writer put padding (read back as AIR_HU),
        # the truth holds air too (a tilted head can reach past the
        # reconstruction circle), and no blood
        truth = exam.hu
        if exam.metadata.vendor.padding is not None:
            outside = ~_fov(exam.metadata.rows)
            assert (truth[:, outside] == HU_MIN).all()
            assert not any(m[:, outside].any() for m in exam.masks.values())
            truth = np.where(outside, AIR_HU, truth)
        assert np.array_equal(series.hu, truth)
        assert series.spacing[1] == pytest.approx(exam.metadata.pixel_spacing, rel=1e-5)
        assert series.spacing[0] == pytest.approx(exam.metadata.slice_thickness, rel=1e-3)


def test_file_names_not_in_slice_order(synth_dataset: SynthDataset) -> None:
    shuffled = 0
    for written in synth_dataset.summary.exams:
        names = [f.rsplit("/", 1)[1] for f in written.files]
        shuffled += names != sorted(names) and names[::-1] != sorted(names)
    assert shuffled == len(synth_dataset.summary.exams)


def test_geometry_and_uids(synth_dataset: SynthDataset) -> None:
    for written in synth_dataset.summary.exams:
        dss = [
            pydicom.dcmread(synth_dataset.path / f, stop_before_pixels=True) for f in written.files
        ]
        vendor = next(
            p
            for p in (profile_for_site(s) for s in range(5))
            if p.manufacturer == dss[0].Manufacturer and p.model == dss[0].ManufacturerModelName
        )
        iop = np.array(dss[0].ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        pos = np.array([np.dot(np.array(d.ImagePositionPatient, dtype=float), normal) for d in dss])
        assert (np.diff(pos) > 0).all()  # files listed inferior -> superior
        assert np.allclose(np.diff(pos), float(dss[0].SliceThickness), atol=0.01)
        inst = [int(d.InstanceNumber) for d in dss]
        assert sorted(inst) == list(range(1, len(dss) + 1))
        for d in dss:
            assert d.SOPClassUID == CTImageStorage
            assert d.SOPInstanceUID.startswith(vendor.uid_root + ".")
            assert d.StudyInstanceUID.startswith(vendor.uid_root + ".")
            assert len(d.SOPInstanceUID) <= 64
            assert d.Modality == "CT" and d.PatientPosition == "HFS"


def test_scout_and_dose_report(synth_dataset: SynthDataset) -> None:
    for written in synth_dataset.summary.exams:
        kinds = {}
        for rel in written.extra_files:
            ds = pydicom.dcmread(synth_dataset.path / rel)
            kinds[ds.SOPClassUID] = ds
            assert ds.StudyInstanceUID == written.study_uid
            assert ds.SeriesInstanceUID != written.series_uid
            assert ds.pixel_array.size > 0
        scout = kinds[CTImageStorage]
        assert "LOCALIZER" in scout.ImageType
        dose = kinds[SecondaryCaptureImageStorage]
        assert dose.BurnedInAnnotation == "YES"
        assert dose.pixel_array.max() > 100  # burned-in text


def test_spliced_images_equal_pydicom_dcmwrite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The fast writer (shared elements encoded once per series) writes the very bytes
    pydicom's dcmwrite writes for the same datasets, on every vendor profile."""
    from pathlib import Path

    from ichkit.synth._writer import write_exam

    cfg = SynthConfig(exams=5, seed=4, size=48, slices=5, sites=5, prevalence=0.6)
    plans = plan_dataset(cfg)
    profiles = set()
    for plan in plans:
        exam = generate_exam(cfg, plan)
        fast = write_exam(exam, cfg, plan, tmp_path / "fast")
        slow = write_exam(exam, cfg, plan, tmp_path / "slow", splice=False)
        assert fast.files == slow.files
        profiles.add(profile_for_site(plan.site).transfer_syntax)
        for name in fast.files:
            a = Path(tmp_path / "fast" / name).read_bytes()
            b = Path(tmp_path / "slow" / name).read_bytes()
            assert a == b, name
        # the files differ from image to image where they should
        first, last = (
            pydicom.dcmread(tmp_path / "fast" / f) for f in (fast.files[0], fast.files[-1])
        )
        assert first.SOPInstanceUID != last.SOPInstanceUID
        assert first.ImagePositionPatient != last.ImagePositionPatient
    assert len(profiles) == 5


def test_dose_report_text_matches_a_matplotlib_figure() -> None:
    """``render_text`` draws glyphs directly; a matplotlib figure with the same text
    (the way it was drawn before) puts the same ink in the same place."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ichkit.synth._writer import render_text

    lines = ["Patient Name: DOE JANE", "", "Patient ID:   A0012345", "Exam Date:    Mar 14 2019"]
    fig = Figure(figsize=(2.56, 2.56), dpi=100, facecolor="black")
    canvas = FigureCanvasAgg(fig)
    for i, line in enumerate(lines):
        fig.text(0.04, 0.95 - i * 0.055, line, color="white", family="DejaVu Sans Mono",
                 fontsize=9.5, va="top")  # fmt: skip
    canvas.draw()  # type: ignore[no-untyped-call]
    want = np.asarray(canvas.buffer_rgba())[..., 0]  # type: ignore[no-untyped-call]
    got = render_text(lines, size=256)
    assert got.shape == (256, 256) and got.dtype == np.uint8

    def extent(img: np.ndarray, axis: int) -> tuple[int, int]:
        lit = np.nonzero(img.max(axis=axis) > 128)[0]
        return int(lit.min()), int(lit.max())

    for axis in (0, 1):
        (a0, a1), (b0, b1) = extent(want, axis), extent(got, axis)
        assert abs(a0 - b0) <= 2 and abs(a1 - b1) <= 2, (axis, (a0, a1), (b0, b1))
    assert abs(int(got.sum()) - int(want.sum())) < 0.05 * int(want.sum())
    # the empty second line stays black; other text gives other pixels
    row = round((0.05 + 0.055) * 256)
    assert got[row + 3 : row + 10].max() == 0
    assert not np.array_equal(got, render_text(["Patient Name: ROE JOHN"], size=256))
