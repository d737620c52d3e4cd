"""Fill a catalog with synthetic rows (no files): for split, statistics and scale tests.

An RSNA-size catalog (25,000 exams, about 874,000 images; Flanders et al.
2020) can be made in seconds to a minute this way, without writing pixels.
Label prevalences default to those of the RSNA 2019 stage 2 training labels
(image level: any 14.3 %, epidural 0.42 %, intraparenchymal 4.8 %,
intraventricular 3.5 %, subarachnoid 4.7 %, subdural 6.3 %; counts of
``stage_2_train.csv``, 752,803 images), generated exam by exam: an exam is
positive with probability ``exam_positive``, each subtype then appears with
a probability chosen so that the image-level shares come out close to those
figures, on a contiguous run of slices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select

from ichkit.catalog.ingest import get_or_create_site
from ichkit.catalog.label_store import derive_exam_labels, get_label_source
from ichkit.catalog.models import (
    LABEL_COLUMNS,
    ImageLabel,
    Instance,
    LabelSourceKind,
    Patient,
    Series,
    Study,
)

__all__ = ["SyntheticCatalogConfig", "populate_synthetic"]

logger = logging.getLogger(__name__)

# P(subtype | positive exam) and the share of the exam's slices it covers,
# tuned so image-level prevalences land near the RSNA stage 2 training figures.
_SUBTYPE_EXAM_RATE = (0.05, 0.45, 0.30, 0.42, 0.50)
_SUBTYPE_SLICE_SHARE = (0.17, 0.23, 0.24, 0.23, 0.27)


@dataclass(frozen=True, slots=True)
class SyntheticCatalogConfig:
    """Settings of :func:`populate_synthetic`.

    Parameters
    ----------
    exams
        Number of exams (one series each).
    slices
        Mean slices per exam (uniform in ``slices`` ± 25 %).
    sites
        Number of sites; patients are spread unevenly over them.
    exams_per_patient
        Mean exams per patient (RSNA: 25,312 exams of 18,938 patients ≈ 1.34).
    exam_positive
        Probability that an exam holds any hemorrhage.
    seed
        Random seed.
    source
        Label source the image labels are stored under.
    """

    exams: int = 1000
    slices: int = 35
    sites: int = 3
    exams_per_patient: float = 1.34
    exam_positive: float = 0.42
    seed: int = 0
    source: str = "synthetic"


def populate_synthetic(engine: Engine, config: SyntheticCatalogConfig | None = None) -> int:
    """Insert sites, patients, studies, series, instances and image labels; return images made.

    Instances get paths under ``/synthetic`` (no file exists); exam labels are
    derived as for imported labels.
    """
    import numpy as np

    config = config or SyntheticCatalogConfig()
    rng = np.random.default_rng(config.seed)
    n_patients = min(config.exams, max(1, round(config.exams / config.exams_per_patient)))
    # Every patient has at least one exam; the extra exams go to random patients.
    patient_of_exam = np.sort(
        np.concatenate(
            [np.arange(n_patients), rng.integers(0, n_patients, config.exams - n_patients)]
        )
    )
    site_weights = rng.dirichlet(np.full(config.sites, 2.0))
    site_of_patient = rng.choice(config.sites, size=n_patients, p=site_weights)
    lo, hi = max(1, int(config.slices * 0.75)), int(config.slices * 1.25) + 1
    total = 0
    with engine.begin() as connection:
        site_ids = [
            get_or_create_site(connection, f"synthetic-site-{i + 1:02d}")
            for i in range(config.sites)
        ]
        source_id = get_label_source(
            connection, config.source, kind=LabelSourceKind.IMPORT, create=True
        )
        first_patient = (
            connection.execute(
                insert(Patient).returning(Patient.id),
                [
                    {"site_id": site_ids[int(site_of_patient[p])], "patient_key": f"SYN{p:07d}"}
                    for p in range(n_patients)
                ],
            )
            .scalars()
            .all()
        )
        patient_ids = list(first_patient)
        studies = (
            connection.execute(
                insert(Study).returning(Study.id, sort_by_parameter_order=True),
                [
                    {
                        "patient_id": patient_ids[int(patient_of_exam[e])],
                        "study_instance_uid": f"2.25.{config.seed}.{e + 1}",
                    }
                    for e in range(config.exams)
                ],
            )
            .scalars()
            .all()
        )
        series = (
            connection.execute(
                insert(Series).returning(Series.id, sort_by_parameter_order=True),
                [
                    {
                        "study_id": sid,
                        "series_instance_uid": f"2.25.{config.seed}.{e + 1}.1",
                        "modality": "CT",
                        "series_description": "HEAD WO",
                        "selected": False,
                    }
                    for e, sid in enumerate(studies)
                ],
            )
            .scalars()
            .all()
        )
    batch_instances: list[dict[str, object]] = []
    batch_labels: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        if not batch_instances:
            return
        with engine.begin() as connection:
            ids = (
                connection.execute(
                    insert(Instance).returning(Instance.id, sort_by_parameter_order=True),
                    batch_instances,
                )
                .scalars()
                .all()
            )
            rows = []
            for iid, (_, vec) in zip(ids, batch_labels, strict=True):
                row: dict[str, object] = {"source_id": source_id, "instance_id": iid}
                row.update({c: float(v) for c, v in zip(LABEL_COLUMNS, vec, strict=True)})
                rows.append(row)
            connection.execute(insert(ImageLabel), rows)
        batch_instances.clear()
        batch_labels.clear()

    for e, series_id in enumerate(series):
        n = int(rng.integers(lo, hi))
        labels = np.zeros((n, len(LABEL_COLUMNS)), dtype=np.int8)
        if rng.random() < config.exam_positive:
            present = rng.random(5) < np.asarray(_SUBTYPE_EXAM_RATE)
            if not present.any():
                present[int(rng.integers(5))] = True
            for k in np.flatnonzero(present):
                run = max(1, round(n * _SUBTYPE_SLICE_SHARE[k] * rng.uniform(0.5, 1.5)))
                start = int(rng.integers(0, max(1, n - run + 1)))
                labels[start : start + run, k] = 1
            labels[:, 5] = labels[:, :5].max(axis=1)
        for i in range(n):
            sop = f"2.25.{config.seed}.{e + 1}.1.{i + 1}"
            batch_instances.append(
                {
                    "series_id": series_id,
                    "path": f"/synthetic/{e + 1}/{i + 1}.dcm",
                    "sop_instance_uid": sop,
                    "instance_number": i + 1,
                    "position_x": 0.0,
                    "position_y": 0.0,
                    "position_z": 5.0 * i,
                    "image_orientation_patient": "1\\0\\0\\0\\1\\0",
                    "rows": 512,
                    "columns": 512,
                    "size_bytes": 525_000,
                    "mtime_ns": 0,
                    "changed": False,
                }
            )
            batch_labels.append((sop, labels[i]))
        total += n
        if len(batch_instances) >= 20_000:
            flush()
    flush()
    with engine.begin() as connection:
        derive_exam_labels(connection, source_id)
        n_rows = len(connection.execute(select(Study.id)).all())
    logger.info("synthetic catalog: %d exams, %d images", n_rows, total)
    return total
