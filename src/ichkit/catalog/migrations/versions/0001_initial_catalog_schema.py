"""Initial catalog schema: sites to instances, labels, splits, QC findings, ingest issues.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "label_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_source")),
        sa.UniqueConstraint("name", name=op.f("uq_label_source_name")),
    )
    op.create_table(
        "site",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site")),
        sa.UniqueConstraint("name", name=op.f("uq_site_name")),
    )
    op.create_table(
        "split",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("report_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_split")),
        sa.UniqueConstraint("name", name=op.f("uq_split_name")),
    )
    op.create_table(
        "ingest_issue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_ingest_issue_site_id_site"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_issue")),
    )
    with op.batch_alter_table("ingest_issue", schema=None) as batch_op:
        batch_op.create_index("ix_ingest_issue_path", ["path"], unique=False)
        batch_op.create_index(batch_op.f("ix_ingest_issue_site_id"), ["site_id"], unique=False)

    op.create_table(
        "patient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("patient_key", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_patient_site_id_site"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient")),
        sa.UniqueConstraint("site_id", "patient_key", name=op.f("uq_patient_site_id")),
    )
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_site_id"), ["site_id"], unique=False)

    op.create_table(
        "split_member",
        sa.Column("split_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("subset", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_split_member_patient_id_patient"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["split_id"],
            ["split.id"],
            name=op.f("fk_split_member_split_id_split"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("split_id", "patient_id", name=op.f("pk_split_member")),
    )
    with op.batch_alter_table("split_member", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_split_member_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "study",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_study_patient_id_patient"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study")),
        sa.UniqueConstraint("patient_id", "study_instance_uid", name=op.f("uq_study_patient_id")),
    )
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_study_study_instance_uid"), ["study_instance_uid"], unique=False
        )

    op.create_table(
        "exam_label",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("epidural", sa.Float(), nullable=False),
        sa.Column("intraparenchymal", sa.Float(), nullable=False),
        sa.Column("intraventricular", sa.Float(), nullable=False),
        sa.Column("subarachnoid", sa.Float(), nullable=False),
        sa.Column("subdural", sa.Float(), nullable=False),
        sa.Column("any", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["label_source.id"],
            name=op.f("fk_exam_label_source_id_label_source"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["study.id"],
            name=op.f("fk_exam_label_study_id_study"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", "study_id", name=op.f("pk_exam_label")),
    )
    with op.batch_alter_table("exam_label", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exam_label_study_id"), ["study_id"], unique=False)

    op.create_table(
        "series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("series_instance_uid", sa.String(length=128), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", sa.String(length=256), nullable=True),
        sa.Column("image_type", sa.String(length=256), nullable=True),
        sa.Column("body_part_examined", sa.String(length=64), nullable=True),
        sa.Column("contrast_bolus_agent", sa.String(length=128), nullable=True),
        sa.Column("convolution_kernel", sa.String(length=64), nullable=True),
        sa.Column("slice_thickness", sa.Float(), nullable=True),
        sa.Column("spacing_between_slices", sa.Float(), nullable=True),
        sa.Column("gantry_detector_tilt", sa.Float(), nullable=True),
        sa.Column("qc_status", sa.String(length=16), nullable=True),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_series_study_id_study"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series")),
        sa.UniqueConstraint("study_id", "series_instance_uid", name=op.f("uq_series_study_id")),
    )
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_series_series_instance_uid"), ["series_instance_uid"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_series_study_id"), ["study_id"], unique=False)

    op.create_table(
        "instance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=128), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("position_x", sa.Float(), nullable=True),
        sa.Column("position_y", sa.Float(), nullable=True),
        sa.Column("position_z", sa.Float(), nullable=True),
        sa.Column("image_orientation_patient", sa.String(length=128), nullable=True),
        sa.Column("pixel_spacing", sa.String(length=64), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Integer(), nullable=True),
        sa.Column("transfer_syntax_uid", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=80), nullable=True),
        sa.Column("changed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
            name=op.f("fk_instance_series_id_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance")),
        sa.UniqueConstraint("path", name=op.f("uq_instance_path")),
    )
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instance_series_id"), ["series_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_instance_sop_instance_uid"), ["sop_instance_uid"], unique=False
        )

    op.create_table(
        "qc_finding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("excludes", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
            name=op.f("fk_qc_finding_series_id_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_finding")),
    )
    with op.batch_alter_table("qc_finding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qc_finding_series_id"), ["series_id"], unique=False)

    op.create_table(
        "image_label",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("epidural", sa.Float(), nullable=False),
        sa.Column("intraparenchymal", sa.Float(), nullable=False),
        sa.Column("intraventricular", sa.Float(), nullable=False),
        sa.Column("subarachnoid", sa.Float(), nullable=False),
        sa.Column("subdural", sa.Float(), nullable=False),
        sa.Column("any", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instance.id"],
            name=op.f("fk_image_label_instance_id_instance"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["label_source.id"],
            name=op.f("fk_image_label_source_id_label_source"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", "instance_id", name=op.f("pk_image_label")),
    )
    with op.batch_alter_table("image_label", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_label_instance_id"), ["instance_id"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("image_label", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_label_instance_id"))

    op.drop_table("image_label")
    with op.batch_alter_table("qc_finding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qc_finding_series_id"))

    op.drop_table("qc_finding")
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instance_sop_instance_uid"))
        batch_op.drop_index(batch_op.f("ix_instance_series_id"))

    op.drop_table("instance")
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_study_id"))
        batch_op.drop_index(batch_op.f("ix_series_series_instance_uid"))

    op.drop_table("series")
    with op.batch_alter_table("exam_label", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exam_label_study_id"))

    op.drop_table("exam_label")
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_study_instance_uid"))
        batch_op.drop_index(batch_op.f("ix_study_patient_id"))

    op.drop_table("study")
    with op.batch_alter_table("split_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_split_member_patient_id"))

    op.drop_table("split_member")
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_site_id"))

    op.drop_table("patient")
    with op.batch_alter_table("ingest_issue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_issue_site_id"))
        batch_op.drop_index("ix_ingest_issue_path")

    op.drop_table("ingest_issue")
    op.drop_table("split")
    op.drop_table("site")
    op.drop_table("label_source")
