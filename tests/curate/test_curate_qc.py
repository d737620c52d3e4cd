"""QC: each reason triggered by a crafted series; series selection per study."""

from __future__ import annotations

from pathlib import Path

import pytest
from ichkit_test_factory import SAGITTAL, write_series
from sqlalchemy import select

from ichkit.catalog import IngestConfig, QCFinding, Series, ingest, open_catalog
from ichkit.curate import CurationError, QCConfig, QCReason, qc_table, run_qc, write_qc_csv

TILTED = (1.0, 0.0, 0.0, 0.0, 0.981627, -0.190809)  # rsna-series-a's orientation

# One crafted series per reason: (reason, write_series keyword arguments).
CASES: list[tuple[str, dict[str, object]]] = [
    (QCReason.WRONG_MODALITY, {"modality": "MR"}),
    (QCReason.NOT_AXIAL, {"orientation": SAGITTAL}),
    (QCReason.TOO_FEW_SLICES, {"n": 4}),
    (QCReason.MISSING_SLICES, {"positions": [0, 5, 10, 15, 25, 30, 35, 40, 45, 50, 55, 60]}),
    (QCReason.DUPLICATE_POSITION, {"positions": [0, 5, 10, 15, 15, 20, 25, 30, 35, 40, 45, 50]}),
    (
        QCReason.UNEVEN_SPACING,
        {"positions": [0, 5, 10, 15, 20, 26, 31, 36, 41, 46, 51, 56]},
    ),
    (QCReason.MIXED_SIZE, {"sizes": [(16, 16)] * 11 + [(16, 20)]}),
    (QCReason.CORRUPT_PIXEL_DATA, {"truncate": range(12)}),
    (QCReason.CONTRAST, {"contrast": "IODINE", "description": "HEAD W CONTRAST"}),
    (QCReason.GANTRY_TILT, {"orientation": TILTED, "stack": (0.0, 0.0, 1.0)}),
]


def _catalog(url: str, root: Path) -> object:
    engine = open_catalog(url)
    ingest(engine, root, site="alpha", config=IngestConfig(workers=1))
    return engine


@pytest.mark.parametrize(("reason", "kwargs"), CASES, ids=[str(r) for r, _ in CASES])
def test_each_reason_is_triggered(reason: str, kwargs: dict[str, object], tmp_path: Path) -> None:
    write_series(tmp_path / "d" / "good", patient="P1", study="S1")
    write_series(tmp_path / "d" / "bad", patient="P2", study="S2", **kwargs)  # type: ignore[arg-type]
    engine = _catalog(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "d")
    report = run_qc(engine)  # type: ignore[arg-type]
    table = qc_table(engine)  # type: ignore[arg-type]
    good = table[table["patient"] == "P1"].iloc[0]
    bad = table[table["patient"] == "P2"].iloc[0]
    assert (good["qc_status"], good["reasons"], bool(good["selected"])) == ("included", "", True)
    assert reason in bad["reasons"].split(";"), bad["details"]
    assert report.reasons[reason] == 1
    if reason == QCReason.GANTRY_TILT:
        # A tilted gantry is reported but does not exclude by default.
        assert bad["qc_status"] == "included"
    else:
        assert bad["qc_status"] == "excluded"
        assert not bad["selected"]


def test_qc_on_both_backends_selects_one_series_per_study(catalog_url: str, tmp_path: Path) -> None:
    write_series(
        tmp_path / "d" / "brain", patient="P1", study="S1", series="A", description="HEAD WO"
    )
    write_series(
        tmp_path / "d" / "bone", patient="P1", study="S1", series="B", description="HEAD BONE"
    )
    write_series(tmp_path / "d" / "sag", patient="P1", study="S1", series="C", orientation=SAGITTAL)
    engine = _catalog(catalog_url, tmp_path / "d")
    report = run_qc(engine, QCConfig(sample_reads=2))  # type: ignore[arg-type]
    assert (report.n_series, report.n_studies, report.n_selected) == (3, 1, 1)
    assert (report.n_included, report.n_excluded) == (1, 2)
    with engine.connect() as c:  # type: ignore[attr-defined]
        chosen = c.execute(select(Series.series_description).where(Series.selected)).scalars().all()
        reasons = sorted(c.execute(select(QCFinding.reason)).scalars().all())
    assert chosen == ["HEAD WO"]
    assert reasons == ["not_axial", "not_selected"]
    # Re-running replaces the findings rather than adding to them.
    run_qc(engine)  # type: ignore[arg-type]
    with engine.connect() as c:  # type: ignore[attr-defined]
        assert len(c.execute(select(QCFinding.id)).all()) == 2

    # A run stopped part-way (Ctrl-C, an I/O error) leaves the previous QC whole.
    def stop(_n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_qc(engine, progress=stop)  # type: ignore[arg-type]
    with engine.connect() as c:  # type: ignore[attr-defined]
        assert len(c.execute(select(QCFinding.id)).all()) == 2
        chosen = c.execute(select(Series.series_description).where(Series.selected)).scalars().all()
        assert chosen == ["HEAD WO"]
    csv = write_qc_csv(engine, tmp_path / "qc.csv")  # type: ignore[arg-type]
    text = csv.read_text()
    assert text.startswith("site,patient,study_instance_uid,series_instance_uid,")
    assert "another" not in text or "was chosen" in text


def test_exclude_setting_is_checked() -> None:
    with pytest.raises(CurationError, match="exclude: unknown QC reason"):
        QCConfig(exclude=frozenset({"blurry"}))


def test_selection_ranking() -> None:
    from ichkit.curate import SeriesCandidate, choose_series, is_contrast

    bone = SeriesCandidate(1, 30, series_description="HEAD 5mm BONE")
    brain = SeriesCandidate(2, 30, series_description="HEAD 5mm BRAIN")
    thin = SeriesCandidate(3, 240, series_description="HEAD 0.625 BRAIN", slice_thickness=0.625)
    post = SeriesCandidate(4, 30, series_description="HEAD C+ BRAIN")
    chosen = choose_series([bone, thin, post, brain])
    assert chosen is not None and chosen.series_id == 2
    # a 5 mm series beats a thin one that lacks SliceThickness (rsna-series-a does)
    unknown = SeriesCandidate(5, 238, series_description="HEAD BRAIN")
    five = SeriesCandidate(6, 32, series_description="HEAD BRAIN", slice_thickness=5.0)
    fine = SeriesCandidate(7, 160, series_description="HEAD BRAIN", slice_thickness=1.0)
    assert choose_series([unknown, five]) == five
    assert choose_series([unknown, fine]) == unknown
    assert is_contrast("HEAD W/O CONTRAST", None) is False
    assert is_contrast("CTA HEAD", None) is True
    assert is_contrast("HEAD", "OMNIPAQUE") is True
    # ContrastBolusAgent values that say there was none
    for none in ("NONE", "No contrast", "NO CONTRAST", "N/A", "n", "-", "NONE GIVEN", "W/O"):
        assert is_contrast("HEAD", none) is False, none
    assert is_contrast("HEAD", "Not applicable") is False
    # post-operative and trauma head CTs are not contrast studies
    for plain in ("HEAD POST-OP", "POST OP HEAD", "POST TRAUMA", "CT HEAD WITH RECON"):
        assert is_contrast(plain, None) is False, plain
    for post in (
        "HEAD POST CONTRAST",
        "AXIAL POST-CON",
        "HEAD W CON",
        "HEAD +C",
        "WITH IV CONTRAST",
    ):
        assert is_contrast(post, None) is True, post
    assert choose_series([]) is None
