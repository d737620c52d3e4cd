"""The I/O shell: reports, quarantine, resume, determinism, workers, Dask, refusals."""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import pydicom
import pytest
from deid_helpers import ct_dataset, write

from ichkit.deid import DeidConfig, Reason, Status, deidentify_tree, lookup
from ichkit.errors import ConfigError


def _tree_digest(root: Path, *, skip: tuple[str, ...] = ("deid-config.json",)) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_mixed_tree_report_and_quarantine(mixed_tree: Path, tmp_path: Path, key_path: Path) -> None:
    before = _tree_digest(mixed_tree)
    dst = tmp_path / "out"
    summary = deidentify_tree(mixed_tree, dst, key=key_path)
    assert _tree_digest(mixed_tree) == before, "SRC must never be modified"
    assert summary.exit_status == 3
    assert (summary.total, summary.deidentified, summary.quarantined, summary.skipped) == (
        9,
        3,
        5,
        1,
    )
    site = {Path(r["input_path"]).name: r for r in _rows(Path(summary.site_report_path or ""))}
    expected = {
        "dose_screen.dcm": Reason.UNSUPPORTED_SOP_CLASS,
        "scout.dcm": Reason.LOCALIZER,
        "burned.dcm": Reason.BURNED_IN_ANNOTATION,
        "sagittal.dcm": Reason.NON_AXIAL,
        "truncated.dcm": Reason.TRUNCATED,
        "notes.txt": Reason.NOT_DICOM,
    }
    for name, reason in expected.items():
        assert site[name]["reason"].startswith(f"{reason.value}: "), site[name]
    assert site["notes.txt"]["status"] == Status.SKIPPED
    assert site["notes.txt"]["copy"] == ""
    quarantine = tmp_path / "out-quarantine"
    for name in ("dose_screen.dcm", "scout.dcm", "burned.dcm", "sagittal.dcm", "truncated.dcm"):
        row = site[name]
        assert row["status"] == Status.QUARANTINED
        copy = Path(row["copy"])
        assert copy.is_relative_to(quarantine / "files")
        assert copy.read_bytes() == Path(row["input_path"]).read_bytes()
    # DST's report: one row per input, no original path in it.
    report = _rows(dst / "deid-report.csv")
    assert len(report) == 9
    assert list(report[0]) == ["input_path", "output_path", "status", "reason"]
    assert all(r["input_path"].startswith("in-") for r in report)
    text = (dst / "deid-report.csv").read_text(encoding="utf-8")
    assert "JOHN" not in text and "MRN12345" not in text
    written = [r for r in report if r["status"] == "deidentified"]
    assert all((dst / r["output_path"]).is_file() for r in written)
    assert sorted(p.name for p in dst.iterdir()) == [
        "TEST-" + written[0]["output_path"].split("/")[0][5:],
        "deid-config.json",
        "deid-report.csv",
    ]
    # Every input path token resolves to its original in the mapping store.
    token = next(r for r in _rows(Path(summary.site_report_path or "")) if r["copy"])["input_token"]
    rows = lookup(str(key_path), token)
    assert rows and rows[0].kind == "path"


def test_rerun_resumes_with_identical_output(
    mixed_tree: Path, tmp_path: Path, key_path: Path
) -> None:
    dst = tmp_path / "out"
    deidentify_tree(mixed_tree, dst, key=key_path)
    first = _tree_digest(dst)
    # Interrupted run: one output lost; rerun resumes and rewrites only that.
    victim = next(dst.rglob("*.dcm"))
    victim.unlink()
    summary = deidentify_tree(mixed_tree, dst, key=key_path)
    assert summary.resumed == 8
    assert _tree_digest(dst) == first
    summary = deidentify_tree(mixed_tree, dst, key=key_path)
    assert summary.resumed == 9
    assert _tree_digest(dst) == first
    # other options make other outputs: nothing is resumed, every file is redone
    summary = deidentify_tree(mixed_tree, dst, key=key_path, config=DeidConfig(options=()))
    assert summary.resumed == 0 and summary.deidentified == 3
    written = [pydicom.dcmread(p) for p in dst.rglob("*.dcm")]
    assert written and all("PatientSex" not in ds for ds in written)  # not retained now


def test_a_quarantine_copy_that_fails_does_not_stop_the_batch(
    tmp_path: Path, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from ichkit.deid import _batch

    src = tmp_path / "src"
    for i in range(3):
        write(ct_dataset(i), src / f"{i}.dcm")
    scout = ct_dataset(3)
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    write(scout, src / "scout.dcm")
    real = shutil.copyfileobj

    def failing(source, target, length=0):  # type: ignore[no-untyped-def]
        if source.name.endswith("scout.dcm"):
            raise PermissionError(13, "Permission denied")
        return real(source, target, length)

    monkeypatch.setattr(_batch.shutil, "copyfileobj", failing)
    summary = deidentify_tree(src, tmp_path / "out", key=key_path)
    assert (summary.deidentified, summary.quarantined) == (3, 1)
    site = {Path(r["input_path"]).name: r for r in _rows(Path(summary.site_report_path or ""))}
    assert site["scout.dcm"]["status"] == Status.QUARANTINED and site["scout.dcm"]["copy"] == ""


def test_same_key_same_bytes_other_key_unlinkable(tmp_path: Path, key_path: Path) -> None:
    from ichkit.deid import generate_key

    src = tmp_path / "src"
    for i in range(3):
        write(ct_dataset(i), src / f"{i}.dcm")
    deidentify_tree(src, tmp_path / "a", key=key_path)
    # Same key from another store (another machine): same bytes.
    other_store = tmp_path / "elsewhere" / "store.sqlite"
    cfg = DeidConfig(store=str(other_store))
    deidentify_tree(src, tmp_path / "b", key=key_path, config=cfg)
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    other_key = generate_key(tmp_path / "keys2" / "other.key", site="TEST")
    deidentify_tree(src, tmp_path / "c", key=tmp_path / "keys2" / "other.key")
    assert other_key.site == "TEST"
    a = {pydicom.dcmread(p).SOPInstanceUID for p in (tmp_path / "a").rglob("*.dcm")}
    c = {pydicom.dcmread(p).SOPInstanceUID for p in (tmp_path / "c").rglob("*.dcm")}
    assert a.isdisjoint(c)
    pa = {pydicom.dcmread(p).PatientID for p in (tmp_path / "a").rglob("*.dcm")}
    pc = {pydicom.dcmread(p).PatientID for p in (tmp_path / "c").rglob("*.dcm")}
    assert pa != pc


def test_date_offset_per_patient(tmp_path: Path, key_path: Path) -> None:
    src = tmp_path / "src"
    write(ct_dataset(0, patient_id="P1"), src / "a.dcm")
    write(ct_dataset(1, patient_id="P1", study_uid="1.2.3.4", series_uid="1.2.3.5"), src / "b.dcm")
    write(ct_dataset(2, patient_id="P2", study_uid="1.2.3.6", series_uid="1.2.3.7"), src / "c.dcm")
    deidentify_tree(src, tmp_path / "out", key=key_path)
    outs = [pydicom.dcmread(p) for p in (tmp_path / "out").rglob("*.dcm")]
    by_patient: dict[str, set[str]] = {}
    for ds in outs:
        by_patient.setdefault(ds.PatientID, set()).add(ds.StudyDate)
    assert len(by_patient) == 2
    assert all(len(dates) == 1 for dates in by_patient.values())
    assert all(d != {"20190314"} for d in by_patient.values())


def test_workers_and_dask_give_identical_bytes(
    tmp_path: Path, key_path: Path, mixed_tree: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    deidentify_tree(mixed_tree, tmp_path / "w1", key=key_path)
    cfg2 = DeidConfig(workers=2, chunk_size=2, quarantine=str(tmp_path / "q2"))
    s2 = deidentify_tree(mixed_tree, tmp_path / "w2", key=key_path, config=cfg2)
    assert s2.exit_status == 3
    expected = _tree_digest(tmp_path / "w1")
    assert _tree_digest(tmp_path / "w2") == expected
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
    ):
        cfg = DeidConfig(
            dask_address=cluster.scheduler_address, chunk_size=2, quarantine=str(tmp_path / "qd")
        )
        sd = deidentify_tree(mixed_tree, tmp_path / "wd", key=key_path, config=cfg)
    assert (sd.deidentified, sd.quarantined, sd.skipped) == (3, 5, 1)
    assert _tree_digest(tmp_path / "wd") == expected


def test_duplicate_sop_instance_quarantined(tmp_path: Path, key_path: Path) -> None:
    src = tmp_path / "src"
    write(ct_dataset(0), src / "a.dcm")
    other = ct_dataset(0)
    other.InstanceNumber = 99
    write(other, src / "b.dcm")
    summary = deidentify_tree(src, tmp_path / "out", key=key_path)
    assert summary.reasons == {Reason.DUPLICATE_INSTANCE.value: 1}
    assert pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm"))).InstanceNumber == 1
    # the same SOPInstanceUID in another series: another output path, still one file
    third = ct_dataset(0, series_uid="1.2.826.0.1.3680043.10.997.2002")
    write(third, src / "c.dcm")
    summary = deidentify_tree(src, tmp_path / "out2", key=key_path)
    assert summary.reasons == {Reason.DUPLICATE_INSTANCE.value: 2}
    assert len(list((tmp_path / "out2").rglob("*.dcm"))) == 1


def test_dry_run_writes_nothing(mixed_tree: Path, tmp_path: Path, key_path: Path) -> None:
    seen = []
    cfg = DeidConfig(dry_run=True)
    summary = deidentify_tree(
        mixed_tree, tmp_path / "out", key=key_path, config=cfg, progress=seen.append
    )
    assert len(seen) == 9 and summary.quarantined == 5
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out-quarantine").exists()
    assert not (key_path.parent / "site.key.mapping.sqlite").exists()


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("key", "the key must not be inside DST"),
        ("store", "the mapping store must not be inside DST"),
        ("quarantine", "the quarantine must not be inside DST"),
    ],
)
def test_refuses_secrets_inside_dst(
    tmp_path: Path, key_path: Path, where: str, message: str
) -> None:
    from ichkit.deid import generate_key

    src = tmp_path / "src"
    write(ct_dataset(0), src / "a.dcm")
    dst = tmp_path / "out"
    key = key_path
    cfg = DeidConfig()
    if where == "key":
        key = dst / "site.key"
        generate_key(key)
    elif where == "store":
        cfg = DeidConfig(store=str(dst / "map.sqlite"))
    else:
        cfg = DeidConfig(quarantine=str(dst / "q"))
    with pytest.raises(ConfigError, match=message):
        deidentify_tree(src, dst, key=key, config=cfg)


def test_refuses_nested_src_dst(tmp_path: Path, key_path: Path) -> None:
    src = tmp_path / "src"
    write(ct_dataset(0), src / "a.dcm")
    with pytest.raises(ConfigError, match="SRC and DST must not contain each other"):
        deidentify_tree(src, src / "out", key=key_path)
    with pytest.raises(ConfigError, match="source does not exist"):
        deidentify_tree(tmp_path / "nope", tmp_path / "out", key=key_path)


def test_bad_settings(tmp_path: Path, key_path: Path) -> None:
    with pytest.raises(ConfigError, match="workers: expected an integer >= 1"):
        DeidConfig(workers=0)
    src = tmp_path / "src"
    write(ct_dataset(0), src / "a.dcm")
    with pytest.raises(ConfigError, match="unknown option 'nope'"):
        deidentify_tree(src, tmp_path / "o", key=key_path, config=DeidConfig(options=("nope",)))


def test_no_options_means_dates_removed(tmp_path: Path, key_path: Path) -> None:
    src = tmp_path / "src"
    ds = ct_dataset(0)
    ds.PatientSex = "M"
    write(ds, src / "a.dcm")
    cfg = DeidConfig(options=())
    deidentify_tree(src, tmp_path / "o", key=key_path, config=cfg)
    out = pydicom.dcmread(next((tmp_path / "o").rglob("*.dcm")))
    assert out.StudyDate == ""  # Basic Profile: Z
    assert out.PatientSex == ""  # Basic Profile: Z
    assert "SeriesDescription" not in out  # Basic Profile: X
    assert "LongitudinalTemporalInformationModified" not in out
    assert [i.CodeValue for i in out.DeidentificationMethodCodeSequence] == ["113100"]


def test_key_file_mode(key_path: Path) -> None:
    assert os.stat(key_path).st_mode & 0o777 == 0o600


def test_truncated_large_pixel_data_is_quarantined(tmp_path: Path, key_path: Path) -> None:
    # 256x256x2 bytes: above the 64 KiB defer size, so Pixel Data is not read
    # but copied by the kernel; a short file must still be caught.
    src = tmp_path / "src"
    good = write(ct_dataset(0, size=256), src / "good.dcm")
    data = good.read_bytes()
    (src / "short.dcm").write_bytes(data[:-1000])
    summary = deidentify_tree(src, tmp_path / "out", key=key_path)
    assert summary.reasons == {Reason.TRUNCATED.value: 1}
    out = pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))
    assert out.PixelData == pydicom.dcmread(good).PixelData


def test_outputs_are_shareable_and_phi_is_owner_only(
    mixed_tree: Path, tmp_path: Path, key_path: Path
) -> None:
    """De-identified files get the umask's mode; originals and the site report 0600."""
    import stat

    from ichkit._atomic import _UMASK

    summary = deidentify_tree(mixed_tree, tmp_path / "out", key=key_path)

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    written = list((tmp_path / "out").rglob("*.dcm"))
    assert written and {mode(p) for p in written} == {0o666 & ~_UMASK}
    quarantine = tmp_path / "out-quarantine"
    assert mode(quarantine) == 0o700
    copies = list((quarantine / "files").rglob("*.dcm"))
    assert copies and {mode(p) for p in copies} == {0o600}
    assert mode(Path(summary.site_report_path or "")) == 0o600
