"""The RSNA 2019 Kaggle layout: import it into the catalog, export the catalog as it.

The layout (RSNA Intracranial Hemorrhage Detection, stage 2)::

    stage_2_train/ID_<image>.dcm        one flat folder of training images
    stage_2_train.csv                   labels, long format (ID_<image>_<label>,Label)
    stage_2_test/ID_<image>.dcm         test images
    stage_2_sample_submission.csv       test image rows, Label 0.5

File names carry no structure: images are grouped into series and studies
by their headers (StudyInstanceUID, SeriesInstanceUID) when ingested. Export
adds our ``exams.csv`` (one row per exam), ``image_exams.csv`` (image id,
study, subset: the map ``ichkit score --exams`` reads) and
``stage_2_test_truth.csv`` (the test labels, to be kept private by a challenge
host).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from ichkit.catalog import (
    IngestConfig,
    IngestReport,
    LabelImportReport,
    LabelSourceKind,
    import_labels_csv,
    ingest,
    label_sources,
    read_image_labels,
)
from ichkit.errors import CurationError
from ichkit.labels import LABELS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RSNA_FILES", "ExportReport", "export_rsna", "import_rsna"]

logger = logging.getLogger(__name__)

#: Names of the files and folders of the RSNA stage 2 layout.
RSNA_FILES = {
    "train_images": "stage_2_train",
    "train_labels": "stage_2_train.csv",
    "test_images": "stage_2_test",
    "sample_submission": "stage_2_sample_submission.csv",
    "test_truth": "stage_2_test_truth.csv",
    "exams": "exams.csv",
    "image_exams": "image_exams.csv",
}


def import_rsna(
    engine: Engine,
    images: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    *,
    site: str = "rsna",
    source: str = "rsna",
    config: IngestConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[IngestReport, LabelImportReport | None]:
    """Catalog an RSNA-layout image folder and store its labels as a label source.

    Parameters
    ----------
    engine
        An open catalog.
    images
        The flat folder of ``ID_*.dcm`` files (e.g. ``stage_2_train``).
    labels
        The long labels CSV (``stage_2_train.csv``); None for unlabelled images.
    site
        Site name the images are catalogued under.
    source
        Label source name the labels are stored under.
    config, progress
        Passed to :func:`ichkit.catalog.ingest`.

    Returns
    -------
    ingest_report, label_report
    """
    report = ingest(engine, images, site=site, config=config, progress=progress)
    label_report = None
    if labels is not None:
        label_report = import_labels_csv(engine, labels, source=source, kind=LabelSourceKind.IMPORT)
    return report, label_report


@dataclass(slots=True)
class ExportReport:
    """What an export wrote."""

    out: Path
    train_images: int = 0
    test_images: int = 0
    linked: int = 0
    copied: int = 0
    unchanged: int = 0
    removed: int = 0
    exams: int = 0
    files: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"exported {self.train_images} train and {self.test_images} test images "
            f"({self.exams} exams) to {self.out}: {self.linked} hard-linked, {self.copied} copied, "
            f"{self.unchanged} already there, {self.removed} stale removed"
        )


def _place(src: str, dst: Path) -> str:
    """Hard-link (or copy) ``src`` to ``dst`` atomically; return what was done.

    A copy keeps the source's modification time (``copy2``), so that a later
    export sees it unchanged by size and time (across file systems, where
    hard links fail, RSNA's 440 GB would otherwise be copied again every run).
    """
    try:
        if dst.exists():
            if os.path.samefile(src, dst):
                return "unchanged"
            s, d = os.stat(src), os.stat(dst)
            if (s.st_size, s.st_mtime_ns) == (d.st_size, d.st_mtime_ns):
                return "unchanged"
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(src, tmp)
            how = "linked"
        except OSError:
            shutil.copy2(src, tmp)
            how = "copied"
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return how


def _only_source(engine: Engine) -> str:
    sources = label_sources(engine)
    if len(sources) != 1:
        raise CurationError(
            f"the catalog has {len(sources)} label sources "
            f"({', '.join(n for n, _, _ in sources) or 'none'}); name one with --source",
            field="--source",
            value=None,
        )
    return sources[0][0]


def _qc_ran(engine: Engine) -> bool:
    """Whether QC has checked the catalog (then only selected series are exported).

    Decided by the series QC has given a status, not by the selected ones: a QC
    that excluded every series must export nothing, not everything.

    Raises
    ------
    CurationError
        QC checked some series but not all (it was interrupted, or exams were
        ingested after it): its selection would be partial.
    """
    from ichkit.curate.qc import qc_progress

    with engine.connect() as connection:
        checked, total = qc_progress(connection)
    if 0 < checked < total:
        raise CurationError(
            f"QC has checked {checked} of {total} series (interrupted, or exams were "
            "ingested since): run ichkit qc again before exporting",
            field="qc_status",
            value=total - checked,
        )
    return checked > 0


def _exams_table(images: pd.DataFrame) -> pd.DataFrame:
    agg: dict[str, Any] = {
        "site": "first",
        "patient_key": "first",
        "study_instance_uid": "first",
        "series_instance_uid": lambda s: ";".join(sorted(set(s))),
        "subset": "first",
        "path": "count",
    }
    agg.update({lab: "max" for lab in LABELS})
    table = images.groupby("study_id", sort=True).agg(agg)
    table = table.rename(
        columns={
            "patient_key": "patient",
            "study_instance_uid": "study",
            "series_instance_uid": "series",
            "path": "n_images",
        }
    )
    for lab in LABELS:
        table[lab] = (table[lab] >= 0.5).astype("int8")
    columns = ["site", "patient", "study", "series", "subset", "n_images", *LABELS]
    return table[columns].sort_values(["site", "patient", "study"])


def export_rsna(
    engine: Engine,
    out: str | os.PathLike[str],
    *,
    source: str | None = None,
    split: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write the catalog's labelled images in the RSNA stage 2 layout.

    Images of the selected series (after ``ichkit qc``; all series before)
    that carry labels from ``source`` are hard-linked (copied across file
    systems), atomically, as ``ID_<image>.dcm``. With a split, train and val
    patients go to ``stage_2_train`` and test patients to ``stage_2_test``;
    without one, every image is a training image. Images of earlier exports
    that are no longer exported are removed.

    Parameters
    ----------
    engine
        An open catalog.
    out
        Output folder (created).
    source
        Label source (None: the only one).
    split
        Name of a stored split (:func:`ichkit.curate.make_split`).
    progress
        Called with the number of images placed, every 1,000.

    Returns
    -------
    ExportReport
    """
    import numpy as np
    import pandas as pd

    from ichkit._atomic import atomic_write_text
    from ichkit.curate.split import read_split
    from ichkit.labels import write_labels

    source = source or _only_source(engine)
    images = read_image_labels(engine, source, selected_only=_qc_ran(engine))
    if images.empty:
        raise CurationError(
            f"label source {source!r} labels no exportable image (run qc, or import labels)",
            field="--source",
            value=source,
        )
    if split is not None:
        assignment = read_split(engine, split)
        subsets = images["patient_id"].map(assignment)
        images = images.assign(subset=subsets.fillna("unassigned").astype(str))
        dropped = int((images["subset"] == "unassigned").sum())
        if dropped:
            logger.warning(
                "%d labelled image(s) of patients outside split %r left out", dropped, split
            )
            images = images[images["subset"] != "unassigned"]
    else:
        images = images.assign(subset="train")
    dup = images.index.duplicated()
    if dup.any():
        first = images.index[dup][0]
        raise CurationError(
            f"image id {first!r} belongs to several catalogued files (a UID collision); "
            "resolve it before exporting",
            field="SOPInstanceUID",
            value=first,
        )
    root = Path(out)
    report = ExportReport(out=root)
    train_dir = root / RSNA_FILES["train_images"]
    test_dir = root / RSNA_FILES["test_images"]
    for folder in (train_dir, test_dir):
        folder.mkdir(parents=True, exist_ok=True)
    is_test = (images["subset"] == "test").to_numpy()
    wanted: dict[Path, set[str]] = {train_dir: set(), test_dir: set()}
    done = 0
    for image, path, in_test in zip(images.index, images["path"], is_test, strict=True):
        folder = test_dir if in_test else train_dir
        name = f"ID_{image}.dcm"
        wanted[folder].add(name)
        how = _place(str(path), folder / name)
        if how == "linked":
            report.linked += 1
        elif how == "copied":
            report.copied += 1
        else:
            report.unchanged += 1
        done += 1
        if progress is not None and done % 1000 == 0:
            progress(1000)
    if progress is not None and done % 1000:
        progress(done % 1000)
    for folder, names in wanted.items():
        with os.scandir(folder) as entries:
            for entry in entries:
                if (
                    entry.name.startswith("ID_")
                    and entry.name.endswith(".dcm")
                    and (entry.name not in names)
                ):
                    os.unlink(entry.path)
                    report.removed += 1
    report.test_images = int(is_test.sum())
    report.train_images = len(images) - report.test_images
    train: pd.DataFrame = images[list(LABELS)][~is_test]
    test: pd.DataFrame = images[list(LABELS)][is_test]
    files = [
        write_labels(root / RSNA_FILES["train_labels"], train),
        write_labels(
            root / RSNA_FILES["sample_submission"],
            pd.DataFrame(np.full(test.shape, 0.5), index=test.index, columns=list(LABELS)),
        ),
        write_labels(root / RSNA_FILES["test_truth"], test),
    ]
    exams = _exams_table(images)
    atomic_write_text(root / RSNA_FILES["exams"], exams.to_csv(index=False))
    files.append(root / RSNA_FILES["exams"])
    # image -> exam, the map `ichkit score --exams` reads for exam-level AUC
    image_exams = pd.DataFrame(
        {
            "image_id": images.index.astype(str),
            "study": images["study_instance_uid"].to_numpy(),
            "subset": images["subset"].to_numpy(),
        }
    )
    atomic_write_text(root / RSNA_FILES["image_exams"], image_exams.to_csv(index=False))
    files.append(root / RSNA_FILES["image_exams"])
    report.exams = len(exams)
    report.files = [train_dir, test_dir, *files]
    logger.info("%s", report.summary())
    return report
