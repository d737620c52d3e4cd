"""A whole synthetic dataset on disk: DICOM tree, truth files, config, preview.

Layout (the ``ichkit synth`` contract of the design notes)::

    OUT/dicom/<site>/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/*.dcm
    OUT/truth.csv          RSNA labels of every axial image (ichkit.labels format)
    OUT/exams.csv          one row per exam: site, patient, study, series, 6 labels
    OUT/mimics.csv         one row per axial image holding a calcification mimic
                           (sop_instance_uid, series_instance_uid, slice, mimic, any):
                           hard negatives, scored by ``ichkit evaluate``
    OUT/synth-config.json  the frozen SynthConfig
    OUT/masks/<SeriesInstanceUID>.npz   (with masks=True) per-subtype slice masks
    OUT/preview.png        (with preview=True) contact sheet, brain window
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ichkit.errors import ConfigError
from ichkit.labels import LABELS, image_id, write_labels
from ichkit.synth._config import SynthConfig
from ichkit.synth._generate import ExamPlan, generate_exam, plan_dataset
from ichkit.synth._writer import WrittenExam, exam_uids, write_exam

__all__ = ["DatasetSummary", "write_dataset"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`write_dataset` wrote."""

    out: Path
    exams: tuple[WrittenExam, ...]
    images: int
    positive_exams: int
    preview: Path | None


def _prior_study(config: SynthConfig, plans: list[ExamPlan], plan: ExamPlan) -> str | None:
    if plan.visit == 0:
        return None
    earlier = next(p for p in plans if p.patient == plan.patient and p.visit == plan.visit - 1)
    return exam_uids(config, earlier).study


def _one(args: tuple[SynthConfig, ExamPlan, str | None, str]) -> WrittenExam:
    config, plan, prior, out = args
    exam = generate_exam(config, plan)
    return write_exam(exam, config, plan, Path(out), prior_study=prior)


def write_dataset(
    config: SynthConfig,
    out: str | os.PathLike[str],
    *,
    workers: int = 1,
    preview: bool = False,
    progress: Progress | None = None,
) -> DatasetSummary:
    """Generate and write a synthetic dataset.

    Parameters
    ----------
    config
        The dataset settings (saved as ``OUT/synth-config.json``).
    out
        Output folder; must not already hold a dataset (``dicom/`` or truth files).
    workers
        Processes generating exams in parallel; the bytes written do not depend on it.
    preview
        Also write ``OUT/preview.png`` (a contact sheet in the brain window).
    progress
        Called as ``progress(done, total)`` after each exam.

    Raises
    ------
    ConfigError
        ``workers`` < 1, or ``out`` already holds a dataset or is a file.
    """
    out = Path(out)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(
            f"must be an integer >= 1; got {workers!r}", field="--workers", value=workers
        )
    if out.exists() and not out.is_dir():
        raise ConfigError("output exists and is not a folder", path=out, field="OUT")
    for name in ("dicom", "truth.csv", "exams.csv", "mimics.csv", "synth-config.json"):
        if (out / name).exists():
            raise ConfigError(
                f"output folder already holds a dataset ({name}); choose a new or empty folder",
                path=out,
                field="OUT",
                value=str(out),
            )
    out.mkdir(parents=True, exist_ok=True)
    plans = plan_dataset(config)
    tasks = [(config, p, _prior_study(config, plans, p), str(out)) for p in plans]
    results: list[WrittenExam] = []
    total = len(tasks)
    if workers == 1 or total == 1:
        for task in tasks:
            results.append(_one(task))
            if progress is not None:
                progress(len(results), total)
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=ctx) as pool:
            for written in pool.map(_one, tasks, chunksize=1):
                results.append(written)
                if progress is not None:
                    progress(len(results), total)
    results.sort(key=lambda r: r.index)
    _write_tables(out, results)
    from ichkit._atomic import atomic_write_text

    atomic_write_text(out / "synth-config.json", config.to_json())
    preview_path = None
    if preview:
        from ichkit.synth._preview import write_preview

        preview_path = write_preview(config, out, plans, results)
    images = sum(len(r.sop_instance_uids) for r in results)
    positives = sum(int(r.labels[:, -1].max()) for r in results)
    logger.debug(
        "wrote %d exams (%d images, %d with hemorrhage) to %s", total, images, positives, out
    )
    return DatasetSummary(out, tuple(results), images, positives, preview_path)


def _write_tables(out: Path, results: list[WrittenExam]) -> None:
    import numpy as np
    import pandas as pd

    from ichkit._atomic import atomic_write_text

    ids = [image_id(uid) for r in results for uid in r.sop_instance_uids]
    values = np.concatenate([r.labels for r in results]).astype(np.float64)
    wide = pd.DataFrame(values, index=pd.Index(ids, name="image_id"), columns=list(LABELS))
    write_labels(out / "truth.csv", wide)
    exams = pd.DataFrame(
        {
            "site": [r.site for r in results],
            "patient": [r.patient_id for r in results],
            "study": [r.study_uid for r in results],
            "series": [r.series_uid for r in results],
            **{lab: [int(r.labels[:, i].max()) for r in results] for i, lab in enumerate(LABELS)},
        }
    )
    atomic_write_text(out / "exams.csv", exams.to_csv(index=False))
    rows = []
    for r in results:
        by_slice: dict[int, list[str]] = {}
        for name, slices in r.mimic_slices.items():
            for k in slices:
                by_slice.setdefault(int(k), []).append(name)
        for k in sorted(by_slice):
            rows.append(
                {
                    "sop_instance_uid": r.sop_instance_uids[k],
                    "series_instance_uid": r.series_uid,
                    "slice": k,
                    "mimic": ";".join(sorted(by_slice[k])),
                    "any": int(r.labels[k, -1]),
                }
            )
    columns = ["sop_instance_uid", "series_instance_uid", "slice", "mimic", "any"]
    atomic_write_text(out / "mimics.csv", pd.DataFrame(rows, columns=columns).to_csv(index=False))
