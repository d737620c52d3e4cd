"""The catalog: every site, patient, study, series and image file of a project, with labels.

SQLAlchemy 2 models (:mod:`ichkit.catalog.models`) migrated by Alembic when a
catalog is opened; an SQLite file by default, PostgreSQL by URL::

    from ichkit.catalog import open_catalog, ingest
    engine = open_catalog("sqlite:///ichkit.db")
    report = ingest(engine, "site-a/dicom", site="site-a")
"""

from __future__ import annotations

from ichkit.catalog.database import DEFAULT_URL, catalog_session, open_catalog, schema_revision
from ichkit.catalog.errors import CatalogError
from ichkit.catalog.ingest import (
    IngestConfig,
    IngestReport,
    UidCollision,
    find_uid_collisions,
    ingest,
    walk_files,
)
from ichkit.catalog.label_store import (
    LabelImportReport,
    derive_exam_labels,
    get_label_source,
    import_labels,
    import_labels_csv,
    label_sources,
    read_exam_labels,
    read_image_labels,
)
from ichkit.catalog.models import (
    LABEL_COLUMNS,
    Base,
    ExamLabel,
    ImageLabel,
    IngestIssue,
    Instance,
    IssueKind,
    LabelSource,
    LabelSourceKind,
    Patient,
    QCFinding,
    Series,
    Site,
    Split,
    SplitMember,
    Study,
    Subset,
)
from ichkit.catalog.synthetic import SyntheticCatalogConfig, populate_synthetic

__all__ = [
    "DEFAULT_URL",
    "LABEL_COLUMNS",
    "Base",
    "CatalogError",
    "ExamLabel",
    "ImageLabel",
    "IngestConfig",
    "IngestIssue",
    "IngestReport",
    "Instance",
    "IssueKind",
    "LabelImportReport",
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
    "SyntheticCatalogConfig",
    "UidCollision",
    "catalog_session",
    "derive_exam_labels",
    "find_uid_collisions",
    "get_label_source",
    "import_labels",
    "import_labels_csv",
    "ingest",
    "label_sources",
    "open_catalog",
    "populate_synthetic",
    "read_exam_labels",
    "read_image_labels",
    "schema_revision",
    "walk_files",
]
