"""Labels in the catalog: label sources, image labels, derived exam labels.

A *label source* is one set of labels: a reader, an imported file (an RSNA
CSV, a synthetic truth file) or a model. Image labels are matched to
catalogued instances by SOPInstanceUID (an RSNA image id ``abc`` matches the
UID ``ID_abc`` as well as ``abc``, see :func:`ichkit.labels.image_id`). Exam
labels are derived per source as the maximum over each study's labelled
images.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, func, insert, select

from ichkit.catalog.errors import CatalogError
from ichkit.catalog.models import (
    LABEL_COLUMNS,
    ExamLabel,
    ImageLabel,
    Instance,
    LabelSource,
    LabelSourceKind,
    Patient,
    Series,
    Site,
    Study,
)
from ichkit.labels import LABELS, image_id

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LabelImportReport",
    "derive_exam_labels",
    "get_label_source",
    "import_labels",
    "import_labels_csv",
    "label_sources",
    "read_exam_labels",
    "read_image_labels",
]

logger = logging.getLogger(__name__)

_CHUNK = 5000


@dataclass(slots=True)
class LabelImportReport:
    """What a label import did: images matched, labels without a catalogued image."""

    source: str
    labelled: int = 0
    unmatched: int = 0
    ambiguous: int = 0
    exams: int = 0
    unmatched_examples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"label source {self.source}: {self.labelled} images labelled, {self.exams} exams, "
            f"{self.unmatched} label rows without a catalogued image, "
            f"{self.ambiguous} matching several files"
        )


def get_label_source(
    connection: Connection,
    name: str,
    *,
    kind: LabelSourceKind | str | None = None,
    description: str | None = None,
    create: bool = False,
) -> int:
    """Return the id of the label source ``name`` (created when ``create``).

    Raises
    ------
    CatalogError
        No such source and ``create`` is false (the message lists the sources),
        or an existing source has another kind.
    """
    row = connection.execute(
        select(LabelSource.id, LabelSource.kind).where(LabelSource.name == name)
    ).first()
    if row is not None:
        if kind is not None and str(kind) != row.kind:
            raise CatalogError(
                f"label source {name!r} exists with kind {row.kind!r}, not {str(kind)!r}",
                field="--source",
                value=name,
            )
        return int(row.id)
    if not create:
        names = [
            n for (n,) in connection.execute(select(LabelSource.name).order_by(LabelSource.name))
        ]
        raise CatalogError(
            f"no label source {name!r}; the catalog has: {', '.join(names) or '(none)'}",
            field="--source",
            value=name,
        )
    try:
        kind_value = LabelSourceKind(str(kind or LabelSourceKind.IMPORT))
    except ValueError as err:
        raise CatalogError(
            f"unknown label source kind {kind!r}; expected one of "
            f"{', '.join(k.value for k in LabelSourceKind)}",
            field="--kind",
            value=kind,
        ) from err
    if not name or len(name) > 128:
        raise CatalogError(
            "a label source name must be 1 to 128 characters", field="--source", value=name
        )
    new_id = connection.execute(
        insert(LabelSource)
        .values(name=name, kind=kind_value.value, description=description)
        .returning(LabelSource.id)
    ).scalar_one()
    return int(new_id)


def label_sources(engine: Engine) -> list[tuple[str, str, int]]:
    """(name, kind, number of labelled images) of every label source, by name."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(LabelSource.name, LabelSource.kind, func.count(ImageLabel.instance_id))
            .outerjoin(ImageLabel, ImageLabel.source_id == LabelSource.id)
            .group_by(LabelSource.id, LabelSource.name, LabelSource.kind)
            .order_by(LabelSource.name)
        )
        return [(str(n), str(k), int(c)) for n, k, c in rows]


def _one_row_per_image(ids: list[str], values: Any, names: list[Any]) -> tuple[list[str], Any]:
    """Drop repeated rows of an image (``abc`` and ``ID_abc`` are one image).

    Identical repeats are dropped; repeats with other values are an error naming
    both rows, as a labels file with conflicting duplicates is.
    """
    first: dict[str, int] = {}
    keep: list[int] = []
    for k, img in enumerate(ids):
        j = first.setdefault(img, k)
        if j == k:
            keep.append(k)
        elif not (values[j] == values[k]).all():
            raise CatalogError(
                f"image {img!r} is labelled twice with other values: rows {names[j]!r} "
                f"({values[j].tolist()}) and {names[k]!r} ({values[k].tolist()})",
                field="ID",
                value=img,
            )
    if len(keep) == len(ids):
        return ids, values
    return [ids[k] for k in keep], values[keep]


def import_labels(
    engine: Engine,
    wide: pd.DataFrame,
    *,
    source: str,
    kind: LabelSourceKind | str = LabelSourceKind.IMPORT,
    description: str | None = None,
    strict: bool = False,
) -> LabelImportReport:
    """Store a wide labels table (index image id, columns LABELS) as a label source.

    Existing labels of the source for the same images are replaced. Images
    that the catalog does not hold are counted (and logged); with ``strict``,
    or when none at all match, that is an error.

    Parameters
    ----------
    engine
        An open catalog.
    wide
        Image-level labels as read by :func:`ichkit.labels.read_labels`.
    source
        Name of the label source (created if new).
    kind
        ``reader``, ``import`` or ``model``.
    description
        Free text kept with a new source (e.g. the file it came from).
    strict
        Raise when any labelled image is not catalogued.

    Returns
    -------
    LabelImportReport
    """
    import numpy as np

    missing_cols = [c for c in LABELS if c not in wide.columns]
    if missing_cols:
        raise CatalogError(
            f"labels table lacks column(s) {', '.join(missing_cols)}", field="columns"
        )
    values = wide[list(LABELS)].to_numpy(dtype=np.float64)
    bad = np.isnan(values) | (values < 0) | (values > 1)
    if bad.any():
        r, c = (int(x) for x in np.argwhere(bad)[0])
        raise CatalogError(
            f"image {wide.index[r]!r} label {LABELS[c]!r} is {float(values[r, c])!r}; "
            "label values must lie in [0, 1] and not be NaN",
            field="Label",
            value=float(values[r, c]),
        )
    ids = [image_id(str(i)) for i in wide.index]
    ids, values = _one_row_per_image(ids, values, list(wide.index))
    report = LabelImportReport(source=source)
    with engine.begin() as connection:
        source_id = get_label_source(
            connection, source, kind=kind, description=description, create=True
        )
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            wanted = chunk + [f"ID_{i}" for i in chunk]
            matches: dict[str, list[int]] = {}
            for sop, iid in connection.execute(
                select(Instance.sop_instance_uid, Instance.id).where(
                    Instance.sop_instance_uid.in_(wanted)
                )
            ):
                matches.setdefault(image_id(str(sop)), []).append(int(iid))
            rows: list[dict[str, Any]] = []
            for offset, img in enumerate(chunk):
                found = matches.get(img)
                if not found:
                    report.unmatched += 1
                    if len(report.unmatched_examples) < 5:
                        report.unmatched_examples.append(img)
                    continue
                if len(found) > 1:
                    report.ambiguous += 1
                vals = values[start + offset]
                for iid in found:
                    row: dict[str, Any] = {"source_id": source_id, "instance_id": iid}
                    row.update({c: float(v) for c, v in zip(LABEL_COLUMNS, vals, strict=True)})
                    rows.append(row)
            if rows:
                connection.execute(
                    delete(ImageLabel).where(
                        ImageLabel.source_id == source_id,
                        ImageLabel.instance_id.in_([r["instance_id"] for r in rows]),
                    )
                )
                connection.execute(insert(ImageLabel), rows)
                report.labelled += len(rows)
        if report.labelled == 0 and ids:
            raise CatalogError(
                f"none of the {len(ids)} labelled images is in the catalog "
                f"(first: {ids[0]!r}); ingest the images first",
                field="ID",
                value=ids[0],
            )
        if strict and report.unmatched:
            raise CatalogError(
                f"{report.unmatched} labelled image(s) are not in the catalog "
                f"(first: {report.unmatched_examples[0]!r})",
                field="ID",
                value=report.unmatched_examples[0],
            )
        report.exams = derive_exam_labels(connection, source_id)
    if report.unmatched:
        logger.warning(
            "%d labelled image(s) are not in the catalog (e.g. %s)",
            report.unmatched,
            ", ".join(report.unmatched_examples),
        )
    logger.info("%s", report.summary())
    return report


def import_labels_csv(
    engine: Engine,
    path: str | os.PathLike[str],
    *,
    source: str,
    kind: LabelSourceKind | str = LabelSourceKind.IMPORT,
    strict: bool = False,
) -> LabelImportReport:
    """Read an RSNA labels CSV (:func:`ichkit.labels.read_labels`) and store it as a source."""
    from ichkit.labels import read_labels

    wide = read_labels(path)
    return import_labels(
        engine,
        wide,
        source=source,
        kind=kind,
        description=f"imported from {os.fspath(path)}",
        strict=strict,
    )


def derive_exam_labels(connection: Connection, source_id: int) -> int:
    """Recompute the exam labels of a source: per study, the maximum over its labelled images.

    Returns the number of exams labelled.
    """
    connection.execute(delete(ExamLabel).where(ExamLabel.source_id == source_id))
    label_cols = [getattr(ImageLabel, c) for c in LABEL_COLUMNS]
    query = (
        select(
            ImageLabel.source_id,
            Series.study_id,
            func.count(ImageLabel.instance_id),
            *[func.max(c) for c in label_cols],
        )
        .join(Instance, ImageLabel.instance_id == Instance.id)
        .join(Series, Instance.series_id == Series.id)
        .where(ImageLabel.source_id == source_id)
        .group_by(ImageLabel.source_id, Series.study_id)
    )
    connection.execute(
        insert(ExamLabel).from_select(["source_id", "study_id", "n_images", *LABEL_COLUMNS], query)
    )
    count = connection.execute(
        select(func.count()).select_from(ExamLabel).where(ExamLabel.source_id == source_id)
    ).scalar_one()
    return int(count)


def read_image_labels(engine: Engine, source: str, *, selected_only: bool = False) -> pd.DataFrame:
    """Image labels of a source, one row per image.

    Returns
    -------
    pandas.DataFrame
        Index ``image_id`` (SOPInstanceUID without ``ID_``); columns
        :data:`~ichkit.labels.LABELS`, then ``instance_id``, ``study_id``,
        ``patient_id`` (catalog ids), ``site``, ``path``, ``patient_key``
        (PatientID), ``study_instance_uid``, ``series_instance_uid``.
    """
    import pandas as pd

    with engine.connect() as connection:
        source_id = get_label_source(connection, source)
        query = (
            select(
                Instance.sop_instance_uid,
                *[getattr(ImageLabel, c) for c in LABEL_COLUMNS],
                Instance.id,
                Study.id,
                Patient.id,
                Site.name,
                Instance.path,
                Patient.patient_key,
                Study.study_instance_uid,
                Series.series_instance_uid,
            )
            .join(Instance, ImageLabel.instance_id == Instance.id)
            .join(Series, Instance.series_id == Series.id)
            .join(Study, Series.study_id == Study.id)
            .join(Patient, Study.patient_id == Patient.id)
            .join(Site, Patient.site_id == Site.id)
            .where(ImageLabel.source_id == source_id)
            .order_by(Instance.id)
        )
        if selected_only:
            query = query.where(Series.selected.is_(True))
        rows = connection.execute(query).all()
    columns = [
        "sop",
        *LABELS,
        "instance_id",
        "study_id",
        "patient_id",
        "site",
        "path",
        "patient_key",
        "study_instance_uid",
        "series_instance_uid",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame.index = pd.Index([image_id(str(s)) for s in frame["sop"]], name="image_id")
    return frame.drop(columns=["sop"])


def read_exam_labels(engine: Engine, source: str) -> pd.DataFrame:
    """Exam labels of a source, one row per study.

    Returns
    -------
    pandas.DataFrame
        Index ``study_id`` (catalog id); columns ``study_instance_uid``,
        ``patient_id``, ``patient_key``, ``site``, ``n_images``, then
        :data:`~ichkit.labels.LABELS`.
    """
    import pandas as pd

    with engine.connect() as connection:
        source_id = get_label_source(connection, source)
        rows = connection.execute(
            select(
                Study.id,
                Study.study_instance_uid,
                Patient.id,
                Patient.patient_key,
                Site.name,
                ExamLabel.n_images,
                *[getattr(ExamLabel, c) for c in LABEL_COLUMNS],
            )
            .join(Study, ExamLabel.study_id == Study.id)
            .join(Patient, Study.patient_id == Patient.id)
            .join(Site, Patient.site_id == Site.id)
            .where(ExamLabel.source_id == source_id)
            .order_by(Study.id)
        ).all()
    columns = [
        "study_id",
        "study_instance_uid",
        "patient_id",
        "patient_key",
        "site",
        "n_images",
        *LABELS,
    ]
    return pd.DataFrame(rows, columns=columns).set_index("study_id")
