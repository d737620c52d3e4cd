"""Header-only discovery: walking, grouping, unreadable files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from dicom_helpers import CQ500, REALDATA, SERIES_A, require_realdata, write_ct

from ichkit.dicom import (
    FindingKind,
    SliceHeader,
    UnreadableFile,
    iter_headers,
    read_header,
    scan_series,
)
from ichkit.errors import SeriesError


def _tree(root: Path) -> None:
    for site, uid, zs in (("a/p1", "1.2.3.1", [0, 5, 10]), ("b/p2/s", "1.2.3.2", [0, 5, 15, 20])):
        folder = root / site
        folder.mkdir(parents=True)
        for z in zs:
            write_ct(folder / f"{z}.dcm", position=(0, 0, z), series_uid=uid)
    (root / "b" / "notes.txt").write_text("hello")
    (root / ".hidden").write_text("skipped")


def test_scan_groups_nested_series_and_lists_bad_files(tmp_path: Path) -> None:
    _tree(tmp_path)
    seen: list[object] = []
    result = scan_series(tmp_path, on_item=seen.append)
    assert len(seen) == 8  # 7 DICOM + notes.txt; .hidden skipped
    assert [r.series_instance_uid for r in result.series] == ["1.2.3.1", "1.2.3.2"]
    first, second = result.series
    assert (first.n_slices, first.slice_spacing, first.findings) == (3, 5.0, [])
    assert second.n_slices == 4 and second.slice_spacing == 5.0
    assert [f.kind for f in second.findings] == [FindingKind.MISSING_SLICES]
    assert [p.name for p in second.files] == ["0.dcm", "5.dcm", "15.dcm", "20.dcm"]
    assert [u.path.name for u in result.unreadable] == ["notes.txt"]
    assert result.unreadable[0].error == "NotDicomError"
    record = first.to_dict()
    assert record["modality"] == "CT" and record["patient_id"] == "SYNTH-1"


def test_parallel_workers_give_the_same_result(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert scan_series(tmp_path, workers=2) == scan_series(tmp_path)


def test_iter_headers_never_raises(tmp_path: Path) -> None:
    good = write_ct(tmp_path / "good.dcm")
    (tmp_path / "bad.dcm").write_bytes(b"\x00" * 10)
    items = list(iter_headers([good, tmp_path / "bad.dcm", tmp_path / "missing.dcm"]))
    assert isinstance(items[0], SliceHeader)
    assert isinstance(items[1], UnreadableFile) and "bad.dcm" in items[1].reason
    assert isinstance(items[2], UnreadableFile) and "cannot open" in items[2].reason


def test_file_without_series_uid_is_unreadable(tmp_path: Path) -> None:
    import pydicom

    path = write_ct(tmp_path / "nouid.dcm")
    ds = pydicom.dcmread(path)
    del ds.SeriesInstanceUID
    ds.save_as(path)
    (item,) = iter_headers([path])
    assert isinstance(item, UnreadableFile)
    assert "nouid.dcm: SeriesInstanceUID: no (0020,000E)" in item.reason


def test_header_scan_flags_the_rsna_quirk(tmp_path: Path) -> None:
    write_ct(
        tmp_path / "q.dcm",
        pixels=np.zeros((4, 4), np.uint16),
        bits_stored=12,
        signed=False,
        intercept=0,
    )
    (record,) = scan_series(tmp_path).series
    assert [f.kind for f in record.findings] == [FindingKind.RESCALE_QUIRK]


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SeriesError, match=r"nope: DIR: no such file or folder"):
        scan_series(tmp_path / "nope")


@pytest.mark.realdata
def test_scan_realdata_tree() -> None:
    require_realdata()
    result = scan_series(REALDATA)
    by_patient = {r.patient_id: r for r in result.series}
    assert set(by_patient) == {"ID_52c1ab5a", "ID_fff502d5", "CQ500-CT-0"}
    assert by_patient["ID_52c1ab5a"].n_slices == 32
    assert by_patient["ID_fff502d5"].n_slices == 36
    cq = by_patient["CQ500-CT-0"]
    assert cq.n_slices == 238
    assert {f.kind for f in cq.findings} == {FindingKind.MISSING_SLICES, FindingKind.GANTRY_TILT}
    assert {f.kind for f in by_patient["ID_52c1ab5a"].findings} == {FindingKind.GANTRY_TILT}
    assert [u.path.name for u in result.unreadable] == ["README.md"]


@pytest.mark.realdata
def test_header_of_real_files() -> None:
    require_realdata()
    h = read_header(SERIES_A / "ID_000000e27.dcm")
    assert h.sop_instance_uid == "ID_000000e27"
    assert h.image_orientation_patient == (1, 0, 0, 0, 0.981627183, -0.190808995)
    c = read_header(CQ500 / "CT000001.dcm")
    assert c.transfer_syntax_uid == "1.2.840.10008.1.2.4.70"
    assert (c.pixel_padding_value, c.gantry_detector_tilt, c.instance_number) == (-2000, 8.5, 236)


@pytest.mark.realdata
def test_flat_rsna_layout(tmp_path: Path) -> None:
    require_realdata(SERIES_A)
    for f in SERIES_A.glob("*.dcm"):
        shutil.copy(f, tmp_path / f.name)
    (record,) = scan_series(tmp_path).series
    assert record.n_slices == 32
