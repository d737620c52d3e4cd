"""Label distributions of the catalog, by subset and site, as tables and bar charts.

The figures follow Figures 4 and 5 of Flanders et al., "Construction of a
Machine Learning Dataset through Collaboration: The RSNA 2019 Brain CT
Hemorrhage Challenge", Radiology: AI 2020: the share of exams (Figure 4) and
of images (Figure 5) positive for each label, training and test sets side by
side. The counts are aggregated in the database (a value >= 0.5 counts as
positive), so an RSNA-size catalog (874k images) takes seconds.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, case, func, literal, select

from ichkit.catalog import (
    LABEL_COLUMNS,
    ExamLabel,
    ImageLabel,
    Instance,
    Patient,
    Series,
    Site,
    Split,
    SplitMember,
    Study,
    get_label_source,
)
from ichkit.errors import CurationError
from ichkit.labels import LABELS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LabelStatistics", "label_statistics", "plot_distribution", "write_stats"]

logger = logging.getLogger(__name__)

_SUBSET_ORDER = ("all", "train", "val", "test")
_COLOURS = {"all": "#4c72b0", "train": "#4c72b0", "val": "#55a868", "test": "#dd8452"}


@dataclass(frozen=True, slots=True)
class LabelStatistics:
    """Label counts by subset (and site).

    ``exams`` and ``images``: one row per (subset, label) with ``positive``,
    ``total`` and ``fraction``; ``sites``: one row per (site, subset) with
    exam and image totals and positive counts per label.
    """

    source: str
    split: str | None
    exams: pd.DataFrame
    images: pd.DataFrame
    sites: pd.DataFrame


def _aggregate(engine: Engine, level: str, source_id: int, split_id: int | None) -> Any:
    import pandas as pd

    table: Any = ExamLabel if level == "exam" else ImageLabel
    if split_id is None:
        subset: Any = literal("all")
    else:
        subset = func.coalesce(SplitMember.subset, "unassigned")
    query = select(
        Site.name.label("site"),
        subset.label("subset"),
        func.count().label("total"),
        *[func.sum(case((getattr(table, c) >= 0.5, 1), else_=0)).label(c) for c in LABEL_COLUMNS],
    )
    if level == "exam":
        query = query.select_from(ExamLabel).join(Study, ExamLabel.study_id == Study.id)
    else:
        query = (
            query.select_from(ImageLabel)
            .join(Instance, ImageLabel.instance_id == Instance.id)
            .join(Series, Instance.series_id == Series.id)
            .join(Study, Series.study_id == Study.id)
        )
    query = query.join(Patient, Study.patient_id == Patient.id).join(
        Site, Patient.site_id == Site.id
    )
    if split_id is not None:
        query = query.outerjoin(
            SplitMember,
            and_(SplitMember.patient_id == Patient.id, SplitMember.split_id == split_id),
        )
    # PostgreSQL refuses a constant in GROUP BY ('all' without a split): group by site only
    grouping = (Site.name,) if split_id is None else (Site.name, subset)
    query = query.where(table.source_id == source_id).group_by(*grouping)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(rows, columns=["site", "subset", "total", *LABELS])
    for col in ["total", *LABELS]:
        frame[col] = frame[col].astype("int64")
    return frame


def _long(by_site: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    totals = by_site.groupby("subset", sort=False)[["total", *LABELS]].sum()
    rows = []
    for subset in [s for s in _SUBSET_ORDER if s in totals.index]:
        values = totals.loc[[subset]].to_numpy(dtype="int64")[0]
        counts = dict(zip(totals.columns, (int(v) for v in values), strict=True))
        total = counts["total"]
        for lab in LABELS:
            pos = counts[lab]
            rows.append(
                {
                    "subset": subset,
                    "label": lab,
                    "positive": pos,
                    "total": total,
                    "fraction": pos / total if total else 0.0,
                }
            )
    return pd.DataFrame(rows, columns=["subset", "label", "positive", "total", "fraction"])


def label_statistics(
    engine: Engine, *, source: str | None = None, split: str | None = None
) -> LabelStatistics:
    """Count positive exams and images per label, by subset and site.

    Parameters
    ----------
    engine
        An open catalog with labels.
    source
        Label source (None: the only one).
    split
        Name of a stored split; None counts the whole catalog as ``all``.
    """
    from ichkit.curate.rsna import _only_source

    source = source or _only_source(engine)
    with engine.connect() as connection:
        source_id = get_label_source(connection, source)
        split_id = None
        if split is not None:
            split_id = connection.execute(select(Split.id).where(Split.name == split)).scalar()
            if split_id is None:
                names = connection.execute(select(Split.name)).scalars().all()
                raise CurationError(
                    f"no split {split!r}; the catalog has: {', '.join(names) or '(none)'}",
                    field="--split",
                    value=split,
                )
    exam_sites = _aggregate(engine, "exam", source_id, split_id)
    image_sites = _aggregate(engine, "image", source_id, split_id)
    exam_sites = exam_sites[exam_sites["subset"] != "unassigned"]
    image_sites = image_sites[image_sites["subset"] != "unassigned"]
    sites = exam_sites.merge(
        image_sites, on=["site", "subset"], how="outer", suffixes=("_exams", "_images")
    ).fillna(0)
    sites = sites.rename(columns={"total_exams": "exams", "total_images": "images"})
    for col in sites.columns[2:]:
        sites[col] = sites[col].astype("int64")
    sites = sites.sort_values(["site", "subset"]).reset_index(drop=True)
    return LabelStatistics(
        source=source,
        split=split,
        exams=_long(exam_sites),
        images=_long(image_sites),
        sites=sites,
    )


def plot_distribution(
    table: pd.DataFrame, *, title: str, unit: str, path: str | os.PathLike[str]
) -> Path:
    """Bar chart of the positive fraction per label, one bar per subset side by side.

    Parameters
    ----------
    table
        ``exams`` or ``images`` of :class:`LabelStatistics`.
    title
        Figure title.
    unit
        ``exams`` or ``images`` (axis label).
    path
        PNG file to write (atomically).
    """

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ichkit._atomic import atomic_save_figure

    subsets = [s for s in _SUBSET_ORDER if s in set(table["subset"])]
    x = np.arange(len(LABELS))
    width = 0.8 / max(len(subsets), 1)
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=120)
    for i, subset in enumerate(subsets):
        part = table[table["subset"] == subset].set_index("label").reindex(list(LABELS))
        pct = 100.0 * part["fraction"].to_numpy(dtype=float)
        total = int(part["total"].iloc[0]) if len(part) else 0
        bars = ax.bar(
            x + (i - (len(subsets) - 1) / 2) * width,
            pct,
            width,
            label=f"{subset} (n = {total:,} {unit})",
            color=_COLOURS.get(subset),
        )
        for bar, count in zip(bars, part["positive"].to_numpy(), strict=True):
            ax.annotate(
                f"{int(count):,}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 1),
                textcoords="offset points",
            )
    ax.set_xticks(x, [lab.replace("intra", "intra-\n") for lab in LABELS], fontsize=8)
    ax.set_ylabel(f"% of {unit} positive")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)
    return Path(path)


def _plot_sites(sites: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ichkit._atomic import atomic_save_figure

    names = sorted(set(sites["site"]))
    subsets = [s for s in _SUBSET_ORDER if s in set(sites["subset"])]
    x = np.arange(len(names))
    width = 0.8 / max(len(subsets), 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    for i, subset in enumerate(subsets):
        part = sites[sites["subset"] == subset].set_index("site").reindex(names).fillna(0)
        offset = x + (i - (len(subsets) - 1) / 2) * width
        colour = _COLOURS.get(subset)
        left.bar(offset, part["exams"].to_numpy(dtype=float), width, label=subset, color=colour)
        exams = part["exams"].to_numpy(dtype=float)
        share = np.divide(
            100.0 * part["any_exams"].to_numpy(dtype=float),
            exams,
            out=np.zeros_like(exams),
            where=exams > 0,
        )
        right.bar(offset, share, width, label=subset, color=colour)
    for ax, label in ((left, "exams"), (right, "% of exams with any hemorrhage")):
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, fontsize=8)
    left.set_title("Exams per site")
    right.set_title("Positive exams per site")
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)
    return path


def write_stats(
    engine: Engine,
    out: str | os.PathLike[str],
    *,
    source: str | None = None,
    split: str | None = None,
) -> list[Path]:
    """Write the label distributions as CSV and PNG into ``out``.

    Files: ``exam_distribution.csv/.png`` (Figure 4 of Flanders et al. 2020),
    ``image_distribution.csv/.png`` (Figure 5), ``site_distribution.csv/.png``.

    Returns
    -------
    list of Path
        The files written.
    """
    from ichkit._atomic import atomic_write_text

    stats = label_statistics(engine, source=source, split=split)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, table, unit in (("exam", stats.exams, "exams"), ("image", stats.images, "images")):
        csv_path = folder / f"{name}_distribution.csv"
        atomic_write_text(csv_path, table.to_csv(index=False))
        written.append(csv_path)
        title = f"{name.capitalize()}-level label distribution"
        if split:
            title += f" (split {split!r})"
        written.append(
            plot_distribution(
                table, title=title, unit=unit, path=folder / f"{name}_distribution.png"
            )
        )
    site_csv = folder / "site_distribution.csv"
    atomic_write_text(site_csv, stats.sites.to_csv(index=False))
    written.append(site_csv)
    written.append(_plot_sites(stats.sites, folder / "site_distribution.png"))
    logger.info("wrote %d files to %s", len(written), folder)
    return written
