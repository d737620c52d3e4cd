"""Label statistics and figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ichkit.catalog import (
    SyntheticCatalogConfig,
    open_catalog,
    populate_synthetic,
    read_exam_labels,
    read_image_labels,
)
from ichkit.curate import CurationError, SplitConfig, label_statistics, make_split, write_stats
from ichkit.labels import LABELS


def test_stats_match_direct_counts(catalog_url: str, tmp_path: Path) -> None:
    engine = open_catalog(catalog_url)
    populate_synthetic(engine, SyntheticCatalogConfig(exams=60, slices=6, sites=2, seed=3))
    split = make_split(engine, SplitConfig(test=0.3, seed=1))
    stats = label_statistics(engine, split="default")
    exams = read_exam_labels(engine, "synthetic")
    images = read_image_labels(engine, "synthetic")
    for level, frame, table in (("exam", exams, stats.exams), ("image", images, stats.images)):
        subset = frame["patient_id"].map(split.assignment)
        for name in ("train", "test"):
            part = frame[subset == name]
            got = table[(table["subset"] == name)].set_index("label")
            for lab in LABELS:
                assert got.loc[lab, "positive"] == int((part[lab] >= 0.5).sum()), (level, lab)
                assert got.loc[lab, "total"] == len(part)
    assert stats.sites["exams"].sum() == len(exams)
    assert stats.sites["images"].sum() == len(images)
    paths = write_stats(engine, tmp_path / "stats", split="default")
    names = sorted(p.name for p in paths)
    assert names == [
        "exam_distribution.csv",
        "exam_distribution.png",
        "image_distribution.csv",
        "image_distribution.png",
        "site_distribution.csv",
        "site_distribution.png",
    ]
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(tmp_path / "stats" / "exam_distribution.csv")
    assert list(table.columns) == ["subset", "label", "positive", "total", "fraction"]


def test_stats_without_split_count_all(catalog_url: str) -> None:
    engine = open_catalog(catalog_url)  # on PostgreSQL too: no constant in GROUP BY
    populate_synthetic(engine, SyntheticCatalogConfig(exams=10, slices=4, sites=1))
    stats = label_statistics(engine)
    assert set(stats.exams["subset"]) == {"all"}
    with pytest.raises(CurationError, match="--split: no split 'x'"):
        label_statistics(engine, split="x")
