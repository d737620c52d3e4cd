"""Ingest: header-only cataloguing, idempotent re-runs, changed and unreadable files, collisions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ichkit_test_factory import write_series
from sqlalchemy import func, select

from ichkit.catalog import (
    CatalogError,
    IngestConfig,
    IngestIssue,
    Instance,
    Patient,
    Series,
    Site,
    Study,
    find_uid_collisions,
    ingest,
    open_catalog,
    schema_revision,
)


def _count(engine: object, table: object) -> int:
    with engine.connect() as c:  # type: ignore[attr-defined]
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())


def test_open_catalog_migrates_once(catalog_url: str) -> None:
    engine = open_catalog(catalog_url)
    assert schema_revision(engine) == "0001"
    again = open_catalog(catalog_url)
    assert schema_revision(again) == "0001"
    assert _count(again, Site) == 0


def test_bad_url_is_a_catalog_error() -> None:
    with pytest.raises(CatalogError, match="--db: not a usable database URL"):
        open_catalog("nosuchdialect://x")


def test_ingest_builds_hierarchy(catalog_url: str, tmp_path: Path) -> None:
    write_series(tmp_path / "d" / "p1" / "s1", patient="P1", study="S1", series="A", n=5)
    write_series(tmp_path / "d" / "p1" / "s1", patient="P1", study="S1", series="B", n=3)
    write_series(tmp_path / "d" / "p2", patient="P2", study="S9", series="A", n=4)
    engine = open_catalog(catalog_url)
    report = ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    assert (report.seen, report.added, report.n_unreadable) == (12, 12, 0)
    assert _count(engine, Patient) == 2
    assert _count(engine, Study) == 2
    assert _count(engine, Series) == 3
    assert _count(engine, Instance) == 12
    with engine.connect() as c:
        row = c.execute(select(Instance).order_by(Instance.id)).first()
        assert row is not None
        assert row.checksum.startswith("sha256:")
        assert row.rows == 16 and row.columns == 16
        assert row.transfer_syntax_uid == "1.2.840.10008.1.2.1"
        assert row.position_z == pytest.approx(0.0)
        assert row.size_bytes == os.path.getsize(row.path)


def test_ingest_is_idempotent_and_adds_only_new_files(catalog_url: str, tmp_path: Path) -> None:
    write_series(tmp_path / "d" / "a", patient="P1", n=6)
    engine = open_catalog(catalog_url)
    first = ingest(
        engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1, batch_size=4)
    )
    assert first.added == 6
    again = ingest(
        engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1, batch_size=4)
    )
    assert (again.seen, again.added, again.unchanged) == (6, 0, 6)
    write_series(tmp_path / "d" / "b", patient="P2", n=3)
    third = ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    assert (third.added, third.unchanged) == (3, 6)
    assert _count(engine, Instance) == 9
    assert _count(engine, Series) == 2


def test_changed_file_is_flagged_touched_file_is_not(catalog_url: str, tmp_path: Path) -> None:
    paths = write_series(tmp_path / "d", patient="P1", n=3)
    engine = open_catalog(catalog_url)
    ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    # Same bytes, new modification time: not a change.
    st = paths[0].stat()
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    # Different bytes, same size: a change (found by the checksum).
    data = bytearray(paths[1].read_bytes())
    data[-1] ^= 0xFF
    paths[1].write_bytes(bytes(data))
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 9_000_000_000))
    report = ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    assert (report.added, report.touched, report.n_changed, report.unchanged) == (0, 1, 1, 1)
    assert report.changed[0][0] == str(paths[1].resolve())
    assert "content changed since ingest: checksum sha256:" in report.changed[0][1]
    with engine.connect() as c:
        flagged = c.execute(select(Instance.path).where(Instance.changed.is_(True))).scalars().all()
        kinds = c.execute(select(IngestIssue.kind)).scalars().all()
    assert flagged == [str(paths[1].resolve())]
    assert kinds == ["changed"]
    # The touched file's new stat is stored: a third run sees it unchanged.
    third = ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    assert third.touched == 0 and third.n_changed == 1


def test_unreadable_files_are_listed_and_do_not_stop_the_run(
    catalog_url: str, tmp_path: Path
) -> None:
    write_series(tmp_path / "d", patient="P1", n=3)
    (tmp_path / "d" / "notes.bin").write_bytes(b"hello, not dicom at all" * 10)
    (tmp_path / "d" / "empty.dcm").write_bytes(b"")
    (tmp_path / "d" / "deid-report.csv").write_text("a,b\n")
    (tmp_path / "d" / ".hidden").write_bytes(b"x")
    engine = open_catalog(catalog_url)
    report = ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    assert (report.added, report.n_unreadable, report.skipped) == (3, 2, 1)
    reasons = dict(report.unreadable)
    assert "not a DICOM file" in reasons[str((tmp_path / "d" / "notes.bin").resolve())]
    assert _count(engine, IngestIssue) == 2
    # A re-run retries them and does not duplicate the issues.
    ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    assert _count(engine, IngestIssue) == 2


def test_missing_uid_is_a_reason(tmp_path: Path) -> None:
    import pydicom

    path = write_series(tmp_path / "d", patient="P1", n=1)[0]
    ds = pydicom.dcmread(path)
    del ds.SeriesInstanceUID
    ds.save_as(path)
    engine = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    report = ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    assert report.unreadable[0][1] == (
        "SeriesInstanceUID is absent or empty; the catalog needs it to place the file"
    )


def test_uid_collisions_across_sites_are_reported(catalog_url: str, tmp_path: Path) -> None:
    write_series(tmp_path / "a", patient="P1", study="S1", n=3)
    engine = open_catalog(catalog_url)
    ingest(engine, tmp_path / "a", site="alpha", config=IngestConfig(workers=1))
    import shutil

    shutil.copytree(tmp_path / "a", tmp_path / "c")
    report = ingest(engine, tmp_path / "c", site="beta", config=IngestConfig(workers=1))
    levels = sorted({c.level for c in report.collisions})
    assert levels == ["instance", "series", "study"]
    first = next(c for c in report.collisions if c.level == "instance")
    assert first.sites == ("alpha", "beta")
    assert len(first.paths) == 2
    with engine.connect() as c:
        found = find_uid_collisions(c)
    assert {x.level for x in found} == {"study", "series", "instance"}


def test_same_site_copies_are_duplicates_not_collisions(catalog_url: str, tmp_path: Path) -> None:
    import shutil

    write_series(tmp_path / "a", patient="P1", study="S1", n=3)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    engine = open_catalog(catalog_url)
    ingest(engine, tmp_path / "a", site="alpha", config=IngestConfig(workers=1))
    dup = ingest(engine, tmp_path / "b", site="alpha", config=IngestConfig(workers=1))
    assert len(dup.duplicates) == 3
    assert dup.collisions == []
    assert dup.duplicates[0].sites == ("alpha",)
    # the copies are listed, not catalogued a second time (QC would see each
    # position twice, and the labels of those images would be ambiguous)
    assert dup.added == 0
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(Instance)).scalar_one() == 3
    # the same within one run: two copies of an image in one folder, one row
    write_series(tmp_path / "d" / "x", patient="P2", study="S2", n=2)
    shutil.copytree(tmp_path / "d" / "x", tmp_path / "d" / "y")
    both = ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    assert both.added == 2 and len(both.duplicates) == 4


def test_parallel_ingest_matches_serial(tmp_path: Path) -> None:
    for p in range(3):
        write_series(tmp_path / "d" / f"p{p}", patient=f"P{p}", n=10)
    serial = open_catalog(f"sqlite:///{tmp_path / 's.db'}")
    parallel = open_catalog(f"sqlite:///{tmp_path / 'p.db'}")
    ingest(serial, tmp_path / "d", site="x", config=IngestConfig(workers=1))
    report = ingest(
        parallel,
        tmp_path / "d",
        site="x",
        config=IngestConfig(workers=2, chunk_size=4, batch_size=16, min_parallel=0),
    )
    assert report.added == 30
    rows = []
    for engine in (serial, parallel):
        with engine.connect() as c:
            rows.append(
                sorted(c.execute(select(Instance.sop_instance_uid, Instance.checksum)).all())
            )
    assert rows[0] == rows[1]


def test_bad_settings_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="checksum: unknown checksum algorithm 'crc99'"):
        IngestConfig(checksum="crc99")
    engine = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(CatalogError, match="DIR: not a folder"):
        ingest(engine, tmp_path / "nope", site="x")
    with pytest.raises(CatalogError, match="--site: a site name must be"):
        ingest(engine, tmp_path, site=" bad")


def test_migrations_match_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ichkit.catalog import Base

    engine = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []


def test_an_over_long_key_is_one_unreadable_file(catalog_url: str, tmp_path: Path) -> None:
    """On PostgreSQL a 200-character PatientID failed the whole batch's INSERT."""
    import warnings

    import pydicom

    paths = write_series(tmp_path / "d", patient="P1", n=3)
    ds = pydicom.dcmread(paths[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # over LO's 64 characters, on purpose
        ds.PatientID = "X" * 200
        ds.InstanceNumber = 2**40  # beyond the catalog's Integer: kept as no number
        ds.save_as(paths[1])
    ds = pydicom.dcmread(paths[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.InstanceNumber = 2**40
        ds.save_as(paths[2])
    engine = open_catalog(catalog_url)
    report = ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    assert (report.added, report.n_unreadable) == (2, 1)
    assert "PatientID is 200 characters long" in report.unreadable[0][1]


def test_two_ingests_of_one_site_at_once(catalog_url: str, tmp_path: Path) -> None:
    """Both create the site, patients, studies and series: neither may fail on the other's."""
    from concurrent.futures import ThreadPoolExecutor

    if not catalog_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers itself")
    for p in range(4):
        write_series(tmp_path / "a" / f"p{p}", patient=f"P{p}", study=f"S{p}", n=6)
        write_series(tmp_path / "b" / f"p{p}", patient=f"P{p}", study=f"S{p}", series="B", n=6)
    engine = open_catalog(catalog_url)
    config = IngestConfig(workers=1, batch_size=8)
    with ThreadPoolExecutor(2) as pool:
        jobs = [
            pool.submit(ingest, engine, tmp_path / d, site="alpha", config=config) for d in "ab"
        ]
        reports = [j.result() for j in jobs]
    assert sum(r.added for r in reports) == 48
    assert _count(engine, Patient) == 4 and _count(engine, Study) == 4
    assert _count(engine, Series) == 8 and _count(engine, Instance) == 48
