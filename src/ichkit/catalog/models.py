"""SQLAlchemy 2 models of the catalog: where every image came from and what is known of it.

The hierarchy follows the DICOM information model (PS3.3 A.1.2): a *site*
sends *patients*, a patient has *studies* (StudyInstanceUID), a study has
*series* (SeriesInstanceUID), a series has *instances* (SOPInstanceUID, one
file each). Patients are keyed by (site, PatientID) because patient IDs are
local to a site; UIDs are meant to be globally unique, and collisions between
sites are reported by ingest rather than merged.

Labels are stored per *label source* (a reader, an imported file, a model):
one :class:`ImageLabel` row per (source, instance) holding the six label
values, and one derived :class:`ExamLabel` row per (source, study) holding the
maximum over the study's labelled images.

The schema is created and upgraded by the Alembic migrations shipped in
``ichkit/catalog/migrations`` (see :func:`ichkit.catalog.open_catalog`); a
change here needs a new migration there.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "LABEL_COLUMNS",
    "Base",
    "ExamLabel",
    "ImageLabel",
    "IngestIssue",
    "Instance",
    "IssueKind",
    "LabelSource",
    "LabelSourceKind",
    "Patient",
    "QCFinding",
    "Series",
    "Site",
    "Split",
    "SplitMember",
    "Study",
    "Subset",
]

#: Column names of the six label values, in :data:`ichkit.labels.LABELS` order.
LABEL_COLUMNS: tuple[str, ...] = (
    "epidural",
    "intraparenchymal",
    "intraventricular",
    "subarachnoid",
    "subdural",
    "any",
)

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _now() -> datetime:
    return datetime.now(UTC)


class LabelSourceKind(enum.StrEnum):
    """Who produced a set of labels."""

    READER = "reader"
    """A human reader (neuroradiologist), or an adjudicated consensus of readers."""
    IMPORT = "import"
    """A labels file imported as is (an RSNA CSV, a synthetic truth file)."""
    MODEL = "model"
    """A model's predicted probabilities."""


class IssueKind(enum.StrEnum):
    """What an ingest run noticed about a file."""

    UNREADABLE = "unreadable"
    """The file could not be read as a DICOM image header."""
    CHANGED = "changed"
    """The file's content differs from the catalogued checksum."""
    UID_COLLISION = "uid_collision"
    """A UID of the file is already catalogued under another site."""
    DUPLICATE_SOP = "duplicate_sop"
    """The SOPInstanceUID is already catalogued for another file of the same site."""


class Subset(enum.StrEnum):
    """The subsets of a split."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class Base(DeclarativeBase):
    """Declarative base of the catalog models."""

    metadata = MetaData(naming_convention=_NAMING)


class Site(Base):
    """A site (hospital) that contributed exams."""

    __tablename__ = "site"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    patients: Mapped[list[Patient]] = relationship(back_populates="site")


class Patient(Base):
    """A patient of one site, keyed by its PatientID (0010,0020) at that site."""

    __tablename__ = "patient"
    __table_args__ = (UniqueConstraint("site_id", "patient_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    patient_key: Mapped[str] = mapped_column(String(128))

    site: Mapped[Site] = relationship(back_populates="patients")
    studies: Mapped[list[Study]] = relationship(back_populates="patient")


class Study(Base):
    """A study (exam), StudyInstanceUID (0020,000D)."""

    __tablename__ = "study"
    __table_args__ = (UniqueConstraint("patient_id", "study_instance_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patient.id", ondelete="CASCADE"), index=True
    )
    study_instance_uid: Mapped[str] = mapped_column(String(128), index=True)

    patient: Mapped[Patient] = relationship(back_populates="studies")
    series: Mapped[list[Series]] = relationship(back_populates="study")


class Series(Base):
    """A series, SeriesInstanceUID (0020,000E), with the header values QC looks at.

    Series-level attributes are taken from the first file ingested; ``qc_status``
    is None until ``ichkit qc`` ran, then ``included`` or ``excluded``, and
    ``selected`` marks the one series per study chosen for labelling and export.
    """

    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("study_id", "series_instance_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    series_instance_uid: Mapped[str] = mapped_column(String(128), index=True)
    modality: Mapped[str | None] = mapped_column(String(16))
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str | None] = mapped_column(String(256))
    image_type: Mapped[str | None] = mapped_column(String(256))
    body_part_examined: Mapped[str | None] = mapped_column(String(64))
    contrast_bolus_agent: Mapped[str | None] = mapped_column(String(128))
    convolution_kernel: Mapped[str | None] = mapped_column(String(64))
    slice_thickness: Mapped[float | None] = mapped_column(Float)
    spacing_between_slices: Mapped[float | None] = mapped_column(Float)
    gantry_detector_tilt: Mapped[float | None] = mapped_column(Float)
    qc_status: Mapped[str | None] = mapped_column(String(16))
    selected: Mapped[bool] = mapped_column(Boolean, default=False)

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list[Instance]] = relationship(back_populates="series")


class Instance(Base):
    """One DICOM file: where it is, what it is, and how to tell it changed.

    ``position_x/y/z`` is ImagePositionPatient (0020,0032) and
    ``image_orientation_patient`` the six direction cosines of (0020,0037),
    backslash-separated as in the file. ``size_bytes`` and ``mtime_ns`` are
    the file's stat at ingest; ``checksum`` is ``<algorithm>:<hex digest>`` of
    the whole file. ``changed`` is set when a later ingest found different
    content under the same path.
    """

    __tablename__ = "instance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(128), index=True)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    position_x: Mapped[float | None] = mapped_column(Float)
    position_y: Mapped[float | None] = mapped_column(Float)
    position_z: Mapped[float | None] = mapped_column(Float)
    image_orientation_patient: Mapped[str | None] = mapped_column(String(128))
    pixel_spacing: Mapped[str | None] = mapped_column(String(64))
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    transfer_syntax_uid: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(80))
    changed: Mapped[bool] = mapped_column(Boolean, default=False)

    series: Mapped[Series] = relationship(back_populates="instances")


class IngestIssue(Base):
    """Something an ingest run noticed about a file (kind: :class:`IssueKind`)."""

    __tablename__ = "ingest_issue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LabelSource(Base):
    """A set of labels: a reader, an imported file or a model (:class:`LabelSourceKind`)."""

    __tablename__ = "label_source"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ImageLabel(Base):
    """The six label values of one image from one source (0/1, or probabilities)."""

    __tablename__ = "image_label"

    source_id: Mapped[int] = mapped_column(
        ForeignKey("label_source.id", ondelete="CASCADE"), primary_key=True
    )
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("instance.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    epidural: Mapped[float] = mapped_column(Float)
    intraparenchymal: Mapped[float] = mapped_column(Float)
    intraventricular: Mapped[float] = mapped_column(Float)
    subarachnoid: Mapped[float] = mapped_column(Float)
    subdural: Mapped[float] = mapped_column(Float)
    any: Mapped[float] = mapped_column(Float)


class ExamLabel(Base):
    """Exam-level labels of one source: the maximum over the study's labelled images."""

    __tablename__ = "exam_label"

    source_id: Mapped[int] = mapped_column(
        ForeignKey("label_source.id", ondelete="CASCADE"), primary_key=True
    )
    study_id: Mapped[int] = mapped_column(
        ForeignKey("study.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    n_images: Mapped[int] = mapped_column(Integer)
    epidural: Mapped[float] = mapped_column(Float)
    intraparenchymal: Mapped[float] = mapped_column(Float)
    intraventricular: Mapped[float] = mapped_column(Float)
    subarachnoid: Mapped[float] = mapped_column(Float)
    subdural: Mapped[float] = mapped_column(Float)
    any: Mapped[float] = mapped_column(Float)


class Split(Base):
    """A named split of the patients into train / val / test, with its settings and result."""

    __tablename__ = "split"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    config_json: Mapped[str] = mapped_column(Text)
    report_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SplitMember(Base):
    """The subset (:class:`Subset`) a patient belongs to in a split."""

    __tablename__ = "split_member"

    split_id: Mapped[int] = mapped_column(
        ForeignKey("split.id", ondelete="CASCADE"), primary_key=True
    )
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patient.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    subset: Mapped[str] = mapped_column(String(8))


class QCFinding(Base):
    """One QC result for a series: a check that failed, why, and whether it excludes it."""

    __tablename__ = "qc_finding"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    excludes: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


Index("ix_ingest_issue_path", IngestIssue.path)
