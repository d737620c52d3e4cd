"""Series assembly: ordering, spacing and findings (synthetic files and real data)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from dicom_helpers import CQ500, SERIES_A, SERIES_B, quiet_pydicom, require_realdata, write_ct

from ichkit.dicom import FindingKind, Series, load_series, read_header, slice_normal
from ichkit.errors import SeriesError

TILTED = (1.0, 0.0, 0.0, 0.0, 0.98162718, -0.190809)


def _stack(tmp_path: Path, zs: list[float], **kwargs: object) -> list[Path]:
    """Write one slice per z, file names and InstanceNumbers deliberately misleading."""
    paths = []
    for i, z in enumerate(zs):
        value = 1024 + int(z)  # the HU of a slice tells where it is: HU = z
        paths.append(
            write_ct(
                tmp_path / f"slice_{len(zs) - i:03d}.dcm",
                position=(0.0, 0.0, z),
                pixels=np.full((4, 4), value, np.int16),
                instance_number=(i * 7) % len(zs) + 1,
                **kwargs,  # type: ignore[arg-type]
            )
        )
    return paths


def test_orders_by_position_not_by_name_or_instance_number(tmp_path: Path) -> None:
    zs = [30.0, 0.0, 20.0, 10.0, 50.0, 40.0]
    _stack(tmp_path, zs)
    series = load_series(tmp_path)
    np.testing.assert_allclose(series.positions, [0, 10, 20, 30, 40, 50])
    np.testing.assert_array_equal(series.hu[:, 0, 0], [0, 10, 20, 30, 40, 50])
    assert series.spacing == (10.0, 0.5, 0.5)
    assert series.findings == []
    assert [read_header(p).sop_instance_uid for p in series.paths] == series.sop_instance_uids
    assert isinstance(series, Series)


def test_feet_first_normal_still_orders_inferior_to_superior(tmp_path: Path) -> None:
    # Row (-1,0,0) x column (0,1,0) points to -z: the normal is flipped so that +z is up.
    _stack(tmp_path, [10.0, 0.0, 20.0], orientation=(-1, 0, 0, 0, 1, 0))
    series = load_series(tmp_path)
    np.testing.assert_array_equal(series.hu[:, 0, 0], [0, 10, 20])
    assert series.normal == (0.0, 0.0, 1.0)


def test_missing_duplicate_and_uneven(tmp_path: Path) -> None:
    paths = _stack(tmp_path, [0, 5, 10, 20, 25, 30, 33, 35])
    write_ct(tmp_path / "dup.dcm", position=(0, 0, 10), pixels=np.full((4, 4), 1034, np.int16))
    series = load_series([*paths, tmp_path / "dup.dcm"])
    kinds = {f.kind for f in series.findings}
    assert kinds == {
        FindingKind.MISSING_SLICES,
        FindingKind.DUPLICATE_POSITION,
        FindingKind.UNEVEN_SPACING,
    }
    assert len(series.hu) == 8
    assert series.spacing[0] == 5.0
    missing = next(f for f in series.findings if f.kind == "missing_slices")
    assert "about 1 slice(s) missing" in missing.detail
    assert "10.000→20.000" in missing.detail


def test_mixed_size_keeps_the_majority(tmp_path: Path) -> None:
    paths = _stack(tmp_path, [0, 5, 10])
    odd = write_ct(tmp_path / "odd.dcm", position=(0, 0, 15), pixels=np.zeros((6, 6), np.int16))
    series = load_series([*paths, odd])
    assert series.hu.shape == (3, 4, 4)
    finding = next(f for f in series.findings if f.kind == FindingKind.MIXED_SIZE)
    assert "odd.dcm" in finding.detail and "4x4: 3" in finding.detail


def test_a_series_uid_over_two_studies_keeps_the_larger(tmp_path: Path) -> None:
    """Two scans under one SeriesInstanceUID are not interleaved into one volume."""
    paths = _stack(tmp_path, [0, 5, 10, 15])
    other = [
        write_ct(
            tmp_path / f"other{i}.dcm",
            position=(0, 0, z),
            extra={"StudyInstanceUID": "1.2.826.0.1.3680043.8.498.77", "PatientID": "B"},
        )
        for i, z in enumerate((2.5, 7.5))
    ]
    series = load_series([*paths, *other])
    assert series.hu.shape[0] == 4 and series.spacing[0] == pytest.approx(5.0)
    finding = next(f for f in series.findings if f.kind == FindingKind.MIXED_STUDIES)
    assert "spans 2 (study, patient) pairs" in finding.detail and "other0.dcm" in finding.detail
    assert "B" not in finding.detail.split("left out")[0]  # no PatientID in the finding


def test_mixed_orientation_keeps_the_majority(tmp_path: Path) -> None:
    paths = _stack(tmp_path, [0, 5, 10])
    odd = write_ct(
        tmp_path / "sag.dcm",
        position=(0, 0, 15),
        orientation=(0, 1, 0, 0, 0, -1),
        pixels=np.zeros((4, 4), np.int16),
    )
    series = load_series([*paths, odd])
    assert len(series.hu) == 3
    assert series.has(FindingKind.MIXED_ORIENTATION)


def test_gantry_tilt_from_sheared_stack(tmp_path: Path) -> None:
    _stack(tmp_path, [0, 5, 10], orientation=TILTED)
    series = load_series(tmp_path)
    tilt = next(f for f in series.findings if f.kind == FindingKind.GANTRY_TILT)
    assert "11.0°" in tilt.detail
    # Spacing is measured along the normal: 5 mm table steps x cos(11°).
    assert series.spacing[0] == pytest.approx(5 * np.cos(np.radians(11.0)), abs=1e-3)


def test_multiple_series_and_unreadable_files(tmp_path: Path) -> None:
    _stack(tmp_path, [0, 5, 10])
    write_ct(tmp_path / "other.dcm", series_uid="1.2.826.0.1.3680043.8.498.99")
    (tmp_path / "readme.txt").write_text("not dicom")
    series = load_series(tmp_path)
    assert len(series.hu) == 3
    assert series.has("multiple_series") and series.has("unreadable_file")
    other = load_series(tmp_path, series_instance_uid="1.2.826.0.1.3680043.8.498.99")
    assert len(other.hu) == 1
    with pytest.raises(SeriesError, match=r"SeriesInstanceUID: SeriesInstanceUID '9.9' not found"):
        load_series(tmp_path, series_instance_uid="9.9")


def test_no_readable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(SeriesError, match=r"none of the 1 file\(s\) is a readable DICOM image"):
        load_series(tmp_path)
    with pytest.raises(SeriesError, match=r"nowhere: source: no such file or folder"):
        load_series(tmp_path / "nowhere")


def test_slice_normal_points_up_for_axial() -> None:
    np.testing.assert_allclose(slice_normal((1, 0, 0, 0, 1, 0)), [0, 0, 1])
    np.testing.assert_allclose(slice_normal((-1, 0, 0, 0, 1, 0)), [0, 0, 1])


# --- real data ---------------------------------------------------------------------------


def _shuffled_copy(src: Path, dst: Path, seed: int) -> dict[str, float]:
    """Copy a series with shuffled file names and wrong InstanceNumbers; return uid -> z."""
    import pydicom

    rng = random.Random(seed)
    files = sorted(src.glob("*.dcm"))
    names = [f"img{i:04d}.dcm" for i in range(len(files))]
    rng.shuffle(names)
    truth = {}
    with quiet_pydicom():
        for i, (path, name) in enumerate(zip(files, names, strict=True)):
            ds = pydicom.dcmread(path)
            ds.InstanceNumber = (i * 13) % len(files) + 1
            truth[str(ds.SOPInstanceUID)] = float(ds.ImagePositionPatient[2])
            ds.save_as(dst / name)
    return truth


@pytest.mark.realdata
@pytest.mark.parametrize("folder", [SERIES_A, SERIES_B], ids=["a", "b"])
def test_real_series_order_ignores_names_and_instance_numbers(tmp_path: Path, folder: Path) -> None:
    require_realdata(folder)
    truth = _shuffled_copy(folder, tmp_path, seed=7)
    series = load_series(tmp_path)
    zs = [truth[uid] for uid in series.sop_instance_uids]
    assert zs == sorted(zs)  # inferior (low z) to superior
    assert len(series.hu) == len(truth)
    assert np.all(np.diff(series.positions) > 0)


@pytest.mark.realdata
def test_series_a_metadata_and_tilt() -> None:
    require_realdata(SERIES_A)
    series = load_series(SERIES_A)
    assert series.hu.shape == (32, 512, 512) and series.hu.dtype == np.int16
    assert series.patient_id == "ID_52c1ab5a"
    assert series.sop_instance_uids[0].startswith("ID_")
    assert series.window_center == 40 and series.window_width == 80
    assert [f.kind for f in series.findings] == [FindingKind.GANTRY_TILT]
    assert series.spacing[1:] == (0.48828125, 0.48828125)
    assert series.image_position_patient.shape == (32, 3)


@pytest.mark.realdata
def test_series_b_has_no_padding_left() -> None:
    require_realdata(SERIES_B)
    series = load_series(SERIES_B)
    assert series.hu.shape == (36, 512, 512)
    assert series.hu.min() == -1024
    assert series.window_center == 40 and series.window_width == 150


@pytest.mark.realdata
def test_cq500_missing_slice(cq500_series: Series) -> None:
    series = cq500_series
    assert series.hu.shape == (238, 512, 512)
    missing = [f for f in series.findings if f.kind == FindingKind.MISSING_SLICES]
    assert len(missing) == 1 and "about 1 slice(s) missing" in missing[0].detail
    assert series.has(FindingKind.GANTRY_TILT)  # GantryDetectorTilt 8.5
    # 0.625 mm table steps with an 8.5° tilt: 0.618 mm along the normal.
    assert series.spacing[0] == pytest.approx(0.625 * np.cos(np.radians(8.5)), abs=2e-3)
    assert np.all(np.diff(series.positions) > 0)
    assert series.patient_id == "CQ500-CT-0"


@pytest.mark.realdata
def test_cq500_subset_list_of_files(tmp_path: Path) -> None:
    require_realdata(CQ500)
    files = sorted(CQ500.glob("*.dcm"))[:5]
    for f in files:
        shutil.copy(f, tmp_path / f.name)
    series = load_series([tmp_path / f.name for f in files])
    assert len(series.hu) == 5
