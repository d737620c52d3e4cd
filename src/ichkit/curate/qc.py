"""Quality control of catalogued series, and the choice of one series per study.

Each series is checked from its catalogued headers (no file is re-read for
that) and one sampled slice per series is decoded to catch corrupt pixel
data. The geometry checks are those of :func:`ichkit.dicom.assemble` (the
same rules :func:`ichkit.dicom.load_series` applies), so a series that QC
passes loads cleanly. Every failed check is stored as a
:class:`~ichkit.catalog.models.QCFinding` with its reason and detail; a series
with any excluding finding gets ``qc_status = "excluded"``. Then, per study,
one of the remaining series is *selected* (:mod:`ichkit.curate.selection`);
the others get a ``not_selected`` finding naming the chosen one.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from ichkit.catalog import Instance, Patient, QCFinding, Series, Site, Study
from ichkit.curate.selection import SeriesCandidate, choose_series, is_contrast
from ichkit.errors import CurationError

if TYPE_CHECKING:
    import pandas as pd

    from ichkit.dicom import SliceHeader

__all__ = ["QCConfig", "QCReason", "QCReport", "qc_table", "run_qc", "write_qc_csv"]

logger = logging.getLogger(__name__)


class QCReason(enum.StrEnum):
    """Why a series was flagged (stored in ``qc_finding.reason``)."""

    WRONG_MODALITY = "wrong_modality"
    """Modality (0008,0060) is not CT."""
    NOT_AXIAL = "not_axial"
    """The slice normal is far from the patient's z axis (sagittal/coronal, localizer)."""
    TOO_FEW_SLICES = "too_few_slices"
    """Fewer slices than :attr:`QCConfig.min_slices`."""
    UNEVEN_SPACING = "uneven_spacing"
    MISSING_SLICES = "missing_slices"
    DUPLICATE_POSITION = "duplicate_position"
    MIXED_SIZE = "mixed_size"
    MIXED_ORIENTATION = "mixed_orientation"
    MIXED_PIXEL_SPACING = "mixed_pixel_spacing"
    MISSING_POSITION = "missing_position"
    GANTRY_TILT = "gantry_tilt"
    """Tilted gantry: usable (the volume is sheared), reported but not excluding by default."""
    CORRUPT_PIXEL_DATA = "corrupt_pixel_data"
    """A sampled slice's pixel data could not be decoded."""
    CONTRAST = "contrast"
    """Contrast-enhanced (ContrastBolusAgent or SeriesDescription); the dataset is non-contrast."""
    NOT_SELECTED = "not_selected"
    """Passed QC, but another series of the study was chosen."""


_DEFAULT_EXCLUDE = frozenset(r.value for r in QCReason if r is not QCReason.GANTRY_TILT)


@dataclass(frozen=True, slots=True)
class QCConfig:
    """Settings of a QC run.

    Parameters
    ----------
    min_slices
        Fewer slices than this is ``too_few_slices`` (RSNA exams have 20-60).
    max_axial_angle
        Degrees between the slice normal and the z axis beyond which a series
        is ``not_axial`` (gantry tilts stay well below 30).
    sample_reads
        Slices per series whose pixel data is decoded (0 to skip).
    seed
        Seed of the sampled slices.
    exclude
        Reasons that exclude a series; the others are only reported.
    """

    min_slices: int = 10
    max_axial_angle: float = 45.0
    sample_reads: int = 1
    seed: int = 0
    exclude: frozenset[str] = _DEFAULT_EXCLUDE

    def __post_init__(self) -> None:
        unknown = sorted(set(self.exclude) - {r.value for r in QCReason})
        if unknown:
            raise CurationError(
                f"unknown QC reason(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(r.value for r in QCReason)}",
                field="exclude",
                value=unknown,
            )
        if self.min_slices < 1 or self.sample_reads < 0:
            raise CurationError(
                "min_slices must be >= 1 and sample_reads >= 0",
                field="min_slices/sample_reads",
                value=(self.min_slices, self.sample_reads),
            )


@dataclass(slots=True)
class QCReport:
    """Outcome of a QC run: series counted by status, findings counted by reason."""

    n_series: int = 0
    n_included: int = 0
    n_excluded: int = 0
    n_studies: int = 0
    n_selected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"{self.n_series} series checked: {self.n_included} pass, {self.n_excluded} excluded; "
            f"{self.n_selected} of {self.n_studies} studies have a selected series"
        )


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    path: str
    sop: str
    instance_number: int | None
    ipp: tuple[float, float, float] | None
    iop: tuple[float, ...] | None
    pixel_spacing: tuple[float, ...] | None
    rows: int
    columns: int
    transfer_syntax_uid: str


def _floats(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(v) for v in text.split("\\"))
    except ValueError:
        return None


def _slice_header(row: _Row, series: Any) -> SliceHeader:
    """A :class:`ichkit.dicom.SliceHeader` rebuilt from catalog rows (no file read)."""
    from ichkit.dicom import SliceHeader

    iop = row.iop
    ps = row.pixel_spacing
    return SliceHeader(
        path=Path(row.path),
        transfer_syntax_uid=row.transfer_syntax_uid,
        sop_class_uid="",
        sop_instance_uid=row.sop,
        modality=series.modality or "",
        series_description=series.series_description or "",
        patient_id="",
        study_instance_uid="",
        series_instance_uid=series.series_instance_uid,
        series_number=series.series_number,
        instance_number=row.instance_number,
        image_position_patient=row.ipp,
        image_orientation_patient=(
            (iop[0], iop[1], iop[2], iop[3], iop[4], iop[5]) if iop and len(iop) == 6 else None
        ),
        pixel_spacing=(ps[0], ps[1]) if ps and len(ps) == 2 else None,
        slice_thickness=series.slice_thickness,
        spacing_between_slices=series.spacing_between_slices,
        gantry_detector_tilt=series.gantry_detector_tilt,
        samples_per_pixel=1,
        photometric_interpretation="MONOCHROME2",
        number_of_frames=1,
        rows=row.rows,
        columns=row.columns,
        bits_allocated=16,
        bits_stored=16,
        pixel_representation=1,
        pixel_padding_value=None,
        pixel_padding_range_limit=None,
        window_center=(),
        window_width=(),
        rescale_intercept=0.0,
        rescale_slope=1.0,
    )


def _axial_angle(iop: tuple[float, ...] | None) -> float | None:
    """Degrees between the slice normal (PS3.3 C.7.6.2.1.1) and the patient z axis."""
    if not iop or len(iop) != 6:
        return None
    from ichkit.dicom import slice_normal

    normal = slice_normal(iop)
    z = min(1.0, abs(float(normal[2])))
    return math.degrees(math.acos(z))


def _check_series(
    series: Any, rows: list[_Row], config: QCConfig, rng: random.Random
) -> list[tuple[str, str]]:
    """Return (reason, detail) of every check the series fails."""
    from ichkit.dicom import FindingKind, assemble, read_image
    from ichkit.errors import IchkitError

    found: list[tuple[str, str]] = []
    modality = (series.modality or "").upper()
    if modality != "CT":
        found.append((QCReason.WRONG_MODALITY, f"Modality is {modality or '(absent)'!r}, not 'CT'"))
    if is_contrast(series.series_description, series.contrast_bolus_agent):
        found.append(
            (
                QCReason.CONTRAST,
                f"contrast-enhanced: ContrastBolusAgent {series.contrast_bolus_agent!r}, "
                f"SeriesDescription {series.series_description!r}",
            )
        )
    orientations = Counter(r.iop for r in rows if r.iop)
    if orientations:
        angle = _axial_angle(orientations.most_common(1)[0][0])
        if angle is not None and angle > config.max_axial_angle:
            found.append(
                (
                    QCReason.NOT_AXIAL,
                    f"slice normal is {angle:.0f} degrees from the z axis "
                    f"(> {config.max_axial_angle:g}); ImageOrientationPatient "
                    f"{orientations.most_common(1)[0][0]}",
                )
            )
    if len(rows) < config.min_slices:
        found.append(
            (QCReason.TOO_FEW_SLICES, f"{len(rows)} slice(s), fewer than {config.min_slices}")
        )
    geometry = assemble([_slice_header(r, series) for r in rows])
    mapping = {k.value: k.value for k in FindingKind}
    for finding in geometry.findings:
        kind = mapping.get(str(finding.kind))
        if kind in {r.value for r in QCReason}:
            found.append((kind, finding.detail))
    if config.sample_reads and rows:
        sample = rng.sample(rows, min(config.sample_reads, len(rows)))
        for r in sample:
            try:
                read_image(r.path)
            except IchkitError as err:
                found.append((QCReason.CORRUPT_PIXEL_DATA, f"{r.path}: {err.reason}"))
            except OSError as err:
                found.append(
                    (QCReason.CORRUPT_PIXEL_DATA, f"{r.path}: cannot read: {err.strerror or err}")
                )
    return [(str(reason), detail) for reason, detail in found]


def _series_chunks(engine: Engine, size: int) -> Iterator[list[Any]]:
    last = 0
    while True:
        with engine.connect() as connection:
            chunk = connection.execute(
                select(Series.__table__).where(Series.id > last).order_by(Series.id).limit(size)
            ).all()
        if not chunk:
            return
        yield list(chunk)
        last = int(chunk[-1].id)


def run_qc(
    engine: Engine,
    config: QCConfig | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> QCReport:
    """Check every catalogued series, store findings, and select one series per study.

    Earlier QC findings are replaced. Series are handled a few hundred at a
    time, so memory stays flat.

    Parameters
    ----------
    engine
        An open catalog.
    config
        Thresholds and which reasons exclude (:class:`QCConfig`).
    progress
        Called with the number of series checked after each chunk.

    Returns
    -------
    QCReport
    """
    config = config or QCConfig()
    rng = random.Random(config.seed)
    report = QCReport()
    # Every series is checked first (the slow part: sampled pixel reads), holding
    # only statuses and findings (a few per series); the old results are then
    # replaced in one transaction, so an interrupted run leaves the previous QC
    # (and its selection) as it was.
    findings: list[dict[str, Any]] = []
    status: dict[int, str] = {}
    for chunk in _series_chunks(engine, 200):
        ids = [s.id for s in chunk]
        by_series: dict[int, list[_Row]] = {i: [] for i in ids}
        with engine.connect() as connection:
            for r in connection.execute(
                select(
                    Instance.id,
                    Instance.series_id,
                    Instance.path,
                    Instance.sop_instance_uid,
                    Instance.instance_number,
                    Instance.position_x,
                    Instance.position_y,
                    Instance.position_z,
                    Instance.image_orientation_patient,
                    Instance.pixel_spacing,
                    Instance.rows,
                    Instance.columns,
                    Instance.transfer_syntax_uid,
                )
                .where(Instance.series_id.in_(ids))
                .order_by(Instance.id)
            ):
                ipp = (
                    (float(r.position_x), float(r.position_y), float(r.position_z))
                    if r.position_x is not None
                    and r.position_y is not None
                    and r.position_z is not None
                    else None
                )
                by_series[int(r.series_id)].append(
                    _Row(
                        id=int(r.id),
                        path=str(r.path),
                        sop=str(r.sop_instance_uid),
                        instance_number=r.instance_number,
                        ipp=ipp,
                        iop=_floats(r.image_orientation_patient),
                        pixel_spacing=_floats(r.pixel_spacing),
                        rows=int(r.rows or 0),
                        columns=int(r.columns or 0),
                        transfer_syntax_uid=str(r.transfer_syntax_uid or ""),
                    )
                )
        for s in chunk:
            results = _check_series(s, by_series[s.id], config, rng)
            excluded = any(reason in config.exclude for reason, _ in results)
            status[s.id] = "excluded" if excluded else "included"
            for reason, detail in results:
                findings.append(
                    {
                        "series_id": s.id,
                        "reason": reason,
                        "detail": detail,
                        "excludes": reason in config.exclude,
                    }
                )
                report.reasons[reason] += 1
        report.n_series += len(chunk)
        if progress is not None:
            progress(len(chunk))
    with engine.begin() as connection:
        connection.execute(delete(QCFinding))
        connection.execute(update(Series).values(qc_status=None, selected=False))
        for start in range(0, len(findings), 5000):
            connection.execute(insert(QCFinding), findings[start : start + 5000])
        for value in ("included", "excluded"):
            chosen = [i for i, st in status.items() if st == value]
            for start in range(0, len(chosen), 5000):
                connection.execute(
                    update(Series)
                    .where(Series.id.in_(chosen[start : start + 5000]))
                    .values(qc_status=value)
                )
        _select(connection, report)
    with engine.connect() as connection:
        counts = dict(
            connection.execute(
                select(Series.qc_status, func.count()).group_by(Series.qc_status)
            ).all()
        )
    report.n_included = int(counts.get("included", 0))
    report.n_excluded = int(counts.get("excluded", 0))
    logger.info("%s", report.summary())
    return report


def qc_progress(connection: Connection) -> tuple[int, int]:
    """(series QC has given a status, all series): (0, n) before any QC run."""
    checked, total = connection.execute(
        select(func.count(Series.qc_status), func.count()).select_from(Series)
    ).one()
    return int(checked), int(total)


def _select(connection: Connection, report: QCReport) -> None:
    """Select one included series per study; record ``not_selected`` for the others."""
    n_slices = (
        select(Instance.series_id, func.count().label("n")).group_by(Instance.series_id).subquery()
    )
    rows = connection.execute(
        select(
            Series.id,
            Series.study_id,
            Series.series_number,
            Series.series_description,
            Series.convolution_kernel,
            Series.contrast_bolus_agent,
            Series.slice_thickness,
            Series.series_instance_uid,
            func.coalesce(n_slices.c.n, 0),
        )
        .outerjoin(n_slices, n_slices.c.series_id == Series.id)
        .where(Series.qc_status == "included")
        .order_by(Series.study_id, Series.id)
    ).all()
    report.n_studies = int(connection.execute(select(func.count()).select_from(Study)).scalar_one())
    by_study: dict[int, list[tuple[SeriesCandidate, str]]] = {}
    for r in rows:
        by_study.setdefault(int(r[1]), []).append(
            (
                SeriesCandidate(
                    series_id=int(r[0]),
                    n_slices=int(r[8]),
                    series_number=r[2],
                    series_description=r[3],
                    convolution_kernel=r[4],
                    contrast_bolus_agent=r[5],
                    slice_thickness=r[6],
                ),
                str(r[7]),
            )
        )
    selected: list[int] = []
    not_selected: list[dict[str, Any]] = []
    for items in by_study.values():
        best = choose_series([c for c, _ in items])
        if best is None:
            continue
        uid_of = {c.series_id: uid for c, uid in items}
        selected.append(best.series_id)
        for c, _ in items:
            if c.series_id != best.series_id:
                not_selected.append(
                    {
                        "series_id": c.series_id,
                        "reason": QCReason.NOT_SELECTED.value,
                        "detail": f"series {uid_of[best.series_id]} of the study was chosen "
                        f"(non-contrast axial brain series ranking)",
                        "excludes": True,
                    }
                )
    for start in range(0, len(selected), 5000):
        connection.execute(
            update(Series)
            .where(Series.id.in_(selected[start : start + 5000]))
            .values(selected=True)
        )
    if not_selected:
        connection.execute(insert(QCFinding), not_selected)
        ids = [f["series_id"] for f in not_selected]
        for start in range(0, len(ids), 5000):
            connection.execute(
                update(Series)
                .where(Series.id.in_(ids[start : start + 5000]))
                .values(qc_status="excluded")
            )
    report.reasons[QCReason.NOT_SELECTED.value] += len(not_selected)
    report.n_selected = len(selected)


def qc_table(engine: Engine) -> pd.DataFrame:
    """One row per series: where it is, its QC status, selection and reasons.

    Columns ``site, patient, study_instance_uid, series_instance_uid, modality,
    series_description, n_instances, qc_status, selected, reasons, details``
    (reasons and details ``;``-separated, excluding reasons first).
    """
    import pandas as pd

    with engine.connect() as connection:
        n_instances = (
            select(Instance.series_id, func.count().label("n"))
            .group_by(Instance.series_id)
            .subquery()
        )
        series_rows = connection.execute(
            select(
                Series.id,
                Site.name,
                Patient.patient_key,
                Study.study_instance_uid,
                Series.series_instance_uid,
                Series.modality,
                Series.series_description,
                func.coalesce(n_instances.c.n, 0),
                Series.qc_status,
                Series.selected,
            )
            .join(Study, Series.study_id == Study.id)
            .join(Patient, Study.patient_id == Patient.id)
            .join(Site, Patient.site_id == Site.id)
            .outerjoin(n_instances, n_instances.c.series_id == Series.id)
            .order_by(Site.name, Patient.patient_key, Study.study_instance_uid, Series.id)
        ).all()
        findings: dict[int, list[tuple[bool, str, str]]] = {}
        for sid, reason, detail, excludes in connection.execute(
            select(
                QCFinding.series_id, QCFinding.reason, QCFinding.detail, QCFinding.excludes
            ).order_by(QCFinding.id)
        ):
            findings.setdefault(int(sid), []).append((bool(excludes), str(reason), str(detail)))
    records = []
    for r in series_rows:
        items = sorted(findings.get(int(r[0]), []), key=lambda f: not f[0])
        records.append(
            {
                "site": r[1],
                "patient": r[2],
                "study_instance_uid": r[3],
                "series_instance_uid": r[4],
                "modality": r[5],
                "series_description": r[6],
                "n_instances": int(r[7]),
                "qc_status": r[8] or "",
                "selected": bool(r[9]),
                "reasons": ";".join(reason for _, reason, _ in items),
                "details": "; ".join(detail for _, _, detail in items),
            }
        )
    columns = [
        "site",
        "patient",
        "study_instance_uid",
        "series_instance_uid",
        "modality",
        "series_description",
        "n_instances",
        "qc_status",
        "selected",
        "reasons",
        "details",
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def write_qc_csv(engine: Engine, path: str | os.PathLike[str]) -> Path:
    """Write :func:`qc_table` as CSV, atomically; returns the path."""
    from ichkit._atomic import atomic_write_text

    table = qc_table(engine)
    atomic_write_text(path, table.to_csv(index=False))
    return Path(path)
