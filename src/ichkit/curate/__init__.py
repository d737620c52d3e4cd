"""Curation of the catalog: QC and series choice, RSNA-layout import/export, splits, statistics.

Examples
--------
>>> from ichkit.catalog import open_catalog
>>> from ichkit.curate import run_qc, make_split, SplitConfig, write_stats
>>> engine = open_catalog("sqlite:///ichkit.db")  # doctest: +SKIP
>>> run_qc(engine)  # doctest: +SKIP
>>> make_split(engine, SplitConfig(test=0.2, seed=1))  # doctest: +SKIP
>>> write_stats(engine, "stats", split="default")  # doctest: +SKIP
"""

from __future__ import annotations

from ichkit.curate.qc import QCConfig, QCReason, QCReport, qc_table, run_qc, write_qc_csv
from ichkit.curate.rsna import RSNA_FILES, ExportReport, export_rsna, import_rsna
from ichkit.curate.selection import SeriesCandidate, choose_series, is_contrast, series_rank
from ichkit.curate.split import (
    SplitConfig,
    SplitResult,
    iterative_stratification,
    make_split,
    read_split,
    split_patients,
    write_split_outputs,
)
from ichkit.curate.stats import LabelStatistics, label_statistics, plot_distribution, write_stats
from ichkit.errors import CurationError

__all__ = [
    "RSNA_FILES",
    "CurationError",
    "ExportReport",
    "LabelStatistics",
    "QCConfig",
    "QCReason",
    "QCReport",
    "SeriesCandidate",
    "SplitConfig",
    "SplitResult",
    "choose_series",
    "export_rsna",
    "import_rsna",
    "is_contrast",
    "iterative_stratification",
    "label_statistics",
    "make_split",
    "plot_distribution",
    "qc_table",
    "read_split",
    "run_qc",
    "series_rank",
    "split_patients",
    "write_qc_csv",
    "write_split_outputs",
    "write_stats",
]
