"""The RSNA Kaggle layout: import on real RSNA series, export, and the export/import round trip."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from ichkit_test_factory import write_series
from sqlalchemy import func, select

from ichkit.catalog import (
    IngestConfig,
    Series,
    Study,
    import_labels,
    ingest,
    open_catalog,
    read_image_labels,
)
from ichkit.curate import (
    CurationError,
    SplitConfig,
    export_rsna,
    import_rsna,
    make_split,
    run_qc,
)
from ichkit.labels import LABELS, read_labels, write_labels

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
SERIES = ("rsna-series-a", "rsna-series-b")


def _rsna_folder(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    """The two real RSNA series, flattened into one folder as on Kaggle, and a labels file."""
    missing = [s for s in SERIES if not (REALDATA / s).is_dir()]
    if missing:
        pytest.skip(f"real data folder(s) absent: {', '.join(str(REALDATA / s) for s in missing)}")
    flat = tmp_path / "stage_2_train"
    flat.mkdir()
    names = []
    for s in SERIES:
        for f in sorted((REALDATA / s).glob("ID_*.dcm")):
            os.symlink(f, flat / f.name)
            names.append(f.stem[3:])
    # Labels written for this test: series b has a subdural run on 6 slices.
    rng = np.random.default_rng(7)
    values = np.zeros((len(names), len(LABELS)))
    b_rows = np.arange(len(names))[-36:]
    positive = rng.choice(b_rows, 6, replace=False)
    values[positive, LABELS.index("subdural")] = 1
    values[positive, LABELS.index("any")] = 1
    wide = pd.DataFrame(values, index=pd.Index(names, name="image_id"), columns=list(LABELS))
    labels = write_labels(tmp_path / "stage_2_train.csv", wide)
    return flat, labels, wide


@pytest.mark.realdata
def test_import_rsna_groups_real_series_by_header(catalog_url: str, tmp_path: Path) -> None:
    flat, labels, wide = _rsna_folder(tmp_path)
    engine = open_catalog(catalog_url)
    report, label_report = import_rsna(engine, flat, labels, config=IngestConfig(workers=1))
    assert (report.added, report.n_unreadable) == (68, 0)
    assert label_report is not None and (label_report.labelled, label_report.unmatched) == (68, 0)
    assert label_report.exams == 2
    with engine.connect() as c:
        counts = c.execute(
            select(Series.series_instance_uid, func.count())
            .join(Series.instances)
            .group_by(Series.series_instance_uid)
            .order_by(Series.series_instance_uid)
        ).all()
        assert c.execute(select(func.count()).select_from(Study)).scalar_one() == 2
    assert sorted(n for _, n in counts) == [32, 36]
    stored = read_image_labels(engine, "rsna")[list(LABELS)].sort_index()
    pd.testing.assert_frame_equal(
        stored, wide.sort_index(), check_names=False, check_index_type=False
    )
    # QC on the real series: both are tilted (8 and 11 degrees by ichkit.dicom): reported only.
    qc = run_qc(engine)
    assert qc.n_selected == 2
    assert qc.reasons["gantry_tilt"] == 2
    assert qc.n_excluded == 0


@pytest.mark.realdata
def test_export_then_import_round_trips_real_labels(tmp_path: Path) -> None:
    flat, labels, wide = _rsna_folder(tmp_path)
    engine = open_catalog(f"sqlite:///{tmp_path / 'a.db'}")
    import_rsna(engine, flat, labels, config=IngestConfig(workers=1))
    out = tmp_path / "export"
    report = export_rsna(engine, out)
    assert (report.train_images, report.test_images) == (68, 0)
    again = open_catalog(f"sqlite:///{tmp_path / 'b.db'}")
    import_rsna(
        again, out / "stage_2_train", out / "stage_2_train.csv", config=IngestConfig(workers=1)
    )
    first = read_image_labels(engine, "rsna")[list(LABELS)].sort_index()
    second = read_image_labels(again, "rsna")[list(LABELS)].sort_index()
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(
        read_labels(out / "stage_2_train.csv").sort_index(),
        wide.sort_index(),
        check_names=False,
        check_index_type=False,
    )


def _synthetic_tree(root: Path, n_patients: int = 6) -> pd.DataFrame:
    """Series of 10 slices for several patients; returns truth labels (wide)."""
    rows = {}
    for p in range(n_patients):
        paths = write_series(root / f"p{p}", patient=f"P{p}", study=f"S{p}", n=10)
        for i, path in enumerate(paths):
            import pydicom

            sop = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
            positive = p % 2 == 0 and 3 <= i <= 5
            rows[str(sop)] = [0, int(positive), 0, 0, 0, int(positive)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(LABELS)).astype(float)


def test_export_with_split_writes_the_rsna_layout(catalog_url: str, tmp_path: Path) -> None:
    truth = _synthetic_tree(tmp_path / "d")
    engine = open_catalog(catalog_url)
    ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    import_labels(engine, truth, source="truth")
    run_qc(engine)
    make_split(engine, SplitConfig(test=0.34, seed=1))
    out = tmp_path / "out"
    report = export_rsna(engine, out, split="default")
    assert report.train_images + report.test_images == 60
    assert report.test_images == 20  # 2 of 6 patients, 10 slices each
    assert sorted(p.name for p in out.iterdir()) == [
        "exams.csv",
        "image_exams.csv",
        "stage_2_sample_submission.csv",
        "stage_2_test",
        "stage_2_test_truth.csv",
        "stage_2_train",
        "stage_2_train.csv",
    ]
    train_files = {p.name for p in (out / "stage_2_train").iterdir()}
    train_labels = read_labels(out / "stage_2_train.csv")
    assert train_files == {f"ID_{i}.dcm" for i in train_labels.index}
    submission = read_labels(out / "stage_2_sample_submission.csv")
    assert (submission.to_numpy() == 0.5).all() and len(submission) == 20
    assert {f"ID_{i}.dcm" for i in submission.index} == {
        p.name for p in (out / "stage_2_test").iterdir()
    }
    exams = pd.read_csv(out / "exams.csv")
    assert list(exams.columns) == [
        "site",
        "patient",
        "study",
        "series",
        "subset",
        "n_images",
        *LABELS,
    ]
    assert sorted(exams["subset"].value_counts().to_dict().items()) == [("test", 2), ("train", 4)]
    # image_exams.csv is the image -> exam map ichkit score --exams reads
    from ichkit.metrics import read_exam_map

    mapping = read_exam_map(out / "image_exams.csv")
    assert len(mapping) == 60 and len(set(mapping.values())) == 6
    # Files are hard links of the catalogued ones (same inode).
    one = next((out / "stage_2_train").iterdir())
    assert one.stat().st_nlink == 2
    # Export is idempotent; a new split removes images that moved between sets.
    again = export_rsna(engine, out, split="default")
    assert again.unchanged == 60 and again.linked == 0
    make_split(engine, SplitConfig(test=0.34, seed=5), replace=True)
    moved = export_rsna(engine, out, split="default")
    n_files = len(list((out / "stage_2_train").iterdir())) + len(
        list((out / "stage_2_test").iterdir())
    )
    assert n_files == 60
    assert moved.removed == moved.linked
    # Round trip through import-rsna of the train part.
    back = open_catalog(f"sqlite:///{tmp_path / 'back.db'}")
    import_rsna(
        back, out / "stage_2_train", out / "stage_2_train.csv", config=IngestConfig(workers=1)
    )
    got = read_image_labels(back, "rsna")[list(LABELS)].sort_index()
    want = truth.loc[got.index, list(LABELS)].sort_index()
    pd.testing.assert_frame_equal(got, want, check_names=False, check_index_type=False)


def test_export_without_labels_is_an_error(tmp_path: Path) -> None:
    engine = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(CurationError, match="--source: the catalog has 0 label sources"):
        export_rsna(engine, tmp_path / "out")


def _labelled_catalog(tmp_path: Path, *, qc: bool = False) -> Any:
    """Six synthetic patients ingested into an SQLite catalog with their labels."""
    truth = _synthetic_tree(tmp_path / "d")
    engine = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    import_labels(engine, truth, source="truth")
    if qc:
        run_qc(engine)
    return engine


def test_export_follows_qc_even_when_it_excluded_everything(tmp_path: Path) -> None:
    """QC that kept no series exports nothing (not everything); half-done QC is refused."""
    from sqlalchemy import update

    engine = _labelled_catalog(tmp_path, qc=True)
    with engine.begin() as c:  # as if QC had excluded every series
        c.execute(update(Series).values(qc_status="excluded", selected=False))
    with pytest.raises(CurationError, match="labels no exportable image"):
        export_rsna(engine, tmp_path / "out")
    with engine.begin() as c:  # as if QC had stopped half-way
        first = c.execute(select(Series.id).order_by(Series.id)).scalars().first()
        c.execute(update(Series).where(Series.id == first).values(qc_status=None))
    with pytest.raises(CurationError, match=r"QC has checked 5 of 6 series"):
        export_rsna(engine, tmp_path / "out")


def test_split_leaves_out_exams_qc_excluded(tmp_path: Path) -> None:
    """Only exams with a series QC selected are split (and so counted in the figures)."""
    from sqlalchemy import update

    engine = _labelled_catalog(tmp_path, qc=True)
    all_six = make_split(engine, SplitConfig(test=0.34, seed=1))
    assert len(all_six.assignment) == 6
    with engine.begin() as c:  # QC excluded the one series of one study
        first = c.execute(select(Series.id).order_by(Series.id)).scalars().first()
        c.execute(
            update(Series).where(Series.id == first).values(qc_status="excluded", selected=False)
        )
    with pytest.raises(CurationError, match="split named 'default' is already stored"):
        make_split(engine, SplitConfig(test=0.34, seed=1))  # the stored split stays
    five = make_split(engine, SplitConfig(test=0.34, seed=1), replace=True)
    assert len(five.assignment) == 5
    assert int(five.distribution["exams"].sum()) == 5


def test_a_copied_export_is_not_copied_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where hard links fail (another file system), a second export copies nothing."""
    import os

    from ichkit.curate import rsna

    engine = _labelled_catalog(tmp_path)

    def no_link(src: str, dst: str) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(rsna.os, "link", no_link)
    first = export_rsna(engine, tmp_path / "out")
    assert first.copied == 60 and first.linked == 0
    again = export_rsna(engine, tmp_path / "out")
    assert again.copied == 0 and again.unchanged == 60
    assert os.path.getsize(next((tmp_path / "out" / "stage_2_train").iterdir())) > 0


def test_label_import_names_repeats_and_bad_values(tmp_path: Path) -> None:
    """'abc' and 'ID_abc' are one image: identical rows pass, others name both rows."""
    from ichkit.catalog import CatalogError

    truth = _synthetic_tree(tmp_path / "d", n_patients=1)
    engine = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    ingest(engine, tmp_path / "d", site="alpha", config=IngestConfig(workers=1))
    first = str(truth.index[0])
    same = pd.concat([truth, truth.iloc[[0]].rename(index={first: f"ID_{first}"})])
    report = import_labels(engine, same, source="a")
    assert report.labelled == 10
    other = same.copy()
    other.iloc[-1, 0] = 1.0
    with pytest.raises(CatalogError, match=f"image '{first}' is labelled twice with other values"):
        import_labels(engine, other, source="b")
    bad = truth.copy()
    bad.iloc[2, 3] = 1.5
    with pytest.raises(CatalogError, match=r"label 'subarachnoid' is 1\.5"):
        import_labels(engine, bad, source="c")
