"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 21:25:38.765818
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import gateway.store.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "_AuditHead",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "_Role",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("objectId", sa.String(length=32), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "ACL",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_rperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_wperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("objectId"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "_SCHEMA",
        sa.Column("className", sa.String(length=64), nullable=False),
        sa.Column(
            "classLevelPermissions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("className"),
    )
    op.create_table(
        "_User",
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("emailVerified", sa.Boolean(), nullable=True),
        sa.Column("_hashed_password", sa.String(length=255), nullable=True),
        sa.Column("objectId", sa.String(length=32), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "ACL",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_rperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_wperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("objectId"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "_Version",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("className", sa.String(length=64), nullable=False),
        sa.Column("objectId", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("className", "objectId", "version", name="uq_version"),
    )
    op.create_table(
        "AuditLog",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=32), nullable=True),
        sa.Column("actorName", sa.String(length=255), nullable=True),
        sa.Column("entityType", sa.String(length=64), nullable=True),
        sa.Column("entityId", sa.String(length=255), nullable=True),
        sa.Column("patient", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("clientId", sa.String(length=128), nullable=True),
        sa.Column("sourceAddress", sa.String(length=64), nullable=True),
        sa.Column("requestId", sa.String(length=64), nullable=True),
        sa.Column("prevHash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("objectId", sa.String(length=32), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "ACL",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_rperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_wperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(["actor"], ["_User.objectId"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("objectId"),
        sa.UniqueConstraint("hash"),
        sa.UniqueConstraint("seq"),
    )
    with op.batch_alter_table("AuditLog", schema=None) as batch_op:
        batch_op.create_index("ix_auditlog_entity", ["entityType", "entityId"], unique=False)
        batch_op.create_index("ix_auditlog_patient", ["patient", "createdAt"], unique=False)

    op.create_table(
        "PatientProfile",
        sa.Column("user", sa.String(length=32), nullable=True),
        sa.Column("medicalRecordNumber", sa.String(length=64), nullable=False),
        sa.Column("displayName", sa.String(length=255), nullable=True),
        sa.Column("givenName", sa.String(length=255), nullable=True),
        sa.Column("familyName", sa.String(length=255), nullable=True),
        sa.Column("dateOfBirth", sa.String(length=10), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=True),
        sa.Column("primaryClinic", sa.String(length=255), nullable=True),
        sa.Column(
            "contact",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("isActive", sa.Boolean(), nullable=False),
        sa.Column("objectId", sa.String(length=32), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "ACL",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_rperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_wperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user"], ["_User.objectId"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("objectId"),
        sa.UniqueConstraint("medicalRecordNumber"),
        sa.UniqueConstraint("user", name="uq_patient_user"),
    )
    op.create_table(
        "ProviderProfile",
        sa.Column("user", sa.String(length=32), nullable=True),
        sa.Column("displayName", sa.String(length=255), nullable=True),
        sa.Column("npi", sa.String(length=32), nullable=True),
        sa.Column("specialty", sa.String(length=255), nullable=True),
        sa.Column("clinic", sa.String(length=255), nullable=True),
        sa.Column(
            "contact",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("isActive", sa.Boolean(), nullable=False),
        sa.Column("objectId", sa.String(length=32), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "ACL",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_rperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_wperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user"], ["_User.objectId"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("objectId"),
        sa.UniqueConstraint("npi"),
        sa.UniqueConstraint("user", name="uq_provider_user"),
    )
    op.create_table(
        "_Join_roles_Role",
        sa.Column("owningId", sa.String(length=32), nullable=False),
        sa.Column("relatedId", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["owningId"], ["_Role.objectId"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["relatedId"], ["_Role.objectId"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("owningId", "relatedId"),
    )
    with op.batch_alter_table("_Join_roles_Role", schema=None) as batch_op:
        batch_op.create_index("ix_role_roles_child", ["relatedId"], unique=False)

    op.create_table(
        "_Join_users_Role",
        sa.Column("owningId", sa.String(length=32), nullable=False),
        sa.Column("relatedId", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["owningId"], ["_Role.objectId"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["relatedId"], ["_User.objectId"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("owningId", "relatedId"),
    )
    with op.batch_alter_table("_Join_users_Role", schema=None) as batch_op:
        batch_op.create_index("ix_role_users_user", ["relatedId"], unique=False)

    op.create_table(
        "_Session",
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("expiresAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "createdWith",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("installationId", sa.String(length=64), nullable=True),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("_token_hash", sa.String(length=64), nullable=False),
        sa.Column("objectId", sa.String(length=32), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "ACL",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_rperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_wperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(["user"], ["_User.objectId"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("objectId"),
        sa.UniqueConstraint("_token_hash"),
    )
    op.create_table(
        "Appointment",
        sa.Column("patient", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("startAt", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("endAt", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("objectId", sa.String(length=32), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "ACL",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_rperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_wperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["patient"], ["PatientProfile.objectId"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["provider"], ["ProviderProfile.objectId"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("objectId"),
    )
    with op.batch_alter_table("Appointment", schema=None) as batch_op:
        batch_op.create_index("ix_appointment_patient_start", ["patient", "startAt"], unique=False)

    op.create_table(
        "LabResult",
        sa.Column("patient", sa.String(length=32), nullable=False),
        sa.Column("orderedBy", sa.String(length=32), nullable=True),
        sa.Column("orderId", sa.String(length=128), nullable=True),
        sa.Column("testCode", sa.String(length=64), nullable=True),
        sa.Column("codeSystem", sa.String(length=64), nullable=True),
        sa.Column("testName", sa.String(length=255), nullable=True),
        sa.Column("resultValue", sa.Text(), nullable=True),
        sa.Column("valueType", sa.String(length=16), nullable=True),
        sa.Column("units", sa.String(length=64), nullable=True),
        sa.Column("referenceRange", sa.String(length=128), nullable=True),
        sa.Column("interpretation", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("effectiveAt", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("publishedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("visibility", sa.String(length=32), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "attachments",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "resultData",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("sourceMessageId", sa.String(length=128), nullable=True),
        sa.Column("objectId", sa.String(length=32), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "ACL",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_rperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_wperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["orderedBy"], ["ProviderProfile.objectId"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["patient"], ["PatientProfile.objectId"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("objectId"),
    )
    with op.batch_alter_table("LabResult", schema=None) as batch_op:
        batch_op.create_index("ix_labresult_order", ["orderId"], unique=False)
        batch_op.create_index("ix_labresult_ordered_by", ["orderedBy"], unique=False)
        batch_op.create_index("ix_labresult_patient_effective", ["patient", "effectiveAt"], unique=False)
        batch_op.create_index("ix_labresult_patient_published", ["patient", "publishedAt"], unique=False)

    op.create_table(
        "Message",
        sa.Column("conversationId", sa.String(length=64), nullable=True),
        sa.Column("from", sa.String(length=32), nullable=True),
        sa.Column("to", sa.String(length=32), nullable=True),
        sa.Column("patient", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column(
            "attachments",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("isRead", sa.Boolean(), nullable=False),
        sa.Column("sentAt", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("readAt", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("objectId", sa.String(length=32), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "ACL",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_rperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_wperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["from"], ["_User.objectId"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["patient"], ["PatientProfile.objectId"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["to"], ["_User.objectId"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("objectId"),
    )
    with op.batch_alter_table("Message", schema=None) as batch_op:
        batch_op.create_index("ix_message_conversation", ["conversationId", "sentAt"], unique=False)
        batch_op.create_index("ix_message_patient_sent", ["patient", "sentAt"], unique=False)

    op.create_table(
        "TreatmentPlan",
        sa.Column("patient", sa.String(length=32), nullable=False),
        sa.Column("createdBy", sa.String(length=32), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("startDate", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("endDate", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approvedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledgedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("objectId", sa.String(length=32), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updatedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "ACL",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_rperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "_wperm",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["createdBy"], ["_User.objectId"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["patient"], ["PatientProfile.objectId"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["provider"], ["ProviderProfile.objectId"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("objectId"),
    )
    with op.batch_alter_table("TreatmentPlan", schema=None) as batch_op:
        batch_op.create_index("ix_treatmentplan_patient", ["patient", "updatedAt"], unique=False)

    op.create_table(
        "_Join_careTeam_PatientProfile",
        sa.Column("owningId", sa.String(length=32), nullable=False),
        sa.Column("relatedId", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["owningId"], ["PatientProfile.objectId"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["relatedId"], ["ProviderProfile.objectId"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("owningId", "relatedId"),
    )
    with op.batch_alter_table("_Join_careTeam_PatientProfile", schema=None) as batch_op:
        batch_op.create_index("ix_careteam_provider", ["relatedId"], unique=False)

    op.create_table(
        "_PortalActivation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("codeHash", sa.String(length=64), nullable=False),
        sa.Column("patient", sa.String(length=32), nullable=False),
        sa.Column("issuedBy", sa.String(length=255), nullable=True),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expiresAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("usedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failedAttempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["patient"], ["PatientProfile.objectId"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("codeHash"),
    )


def downgrade() -> None:

    op.drop_table("_PortalActivation")
    with op.batch_alter_table("_Join_careTeam_PatientProfile", schema=None) as batch_op:
        batch_op.drop_index("ix_careteam_provider")

    op.drop_table("_Join_careTeam_PatientProfile")
    with op.batch_alter_table("TreatmentPlan", schema=None) as batch_op:
        batch_op.drop_index("ix_treatmentplan_patient")

    op.drop_table("TreatmentPlan")
    with op.batch_alter_table("Message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_patient_sent")
        batch_op.drop_index("ix_message_conversation")

    op.drop_table("Message")
    with op.batch_alter_table("LabResult", schema=None) as batch_op:
        batch_op.drop_index("ix_labresult_patient_published")
        batch_op.drop_index("ix_labresult_patient_effective")
        batch_op.drop_index("ix_labresult_ordered_by")
        batch_op.drop_index("ix_labresult_order")

    op.drop_table("LabResult")
    with op.batch_alter_table("Appointment", schema=None) as batch_op:
        batch_op.drop_index("ix_appointment_patient_start")

    op.drop_table("Appointment")
    op.drop_table("_Session")
    with op.batch_alter_table("_Join_users_Role", schema=None) as batch_op:
        batch_op.drop_index("ix_role_users_user")

    op.drop_table("_Join_users_Role")
    with op.batch_alter_table("_Join_roles_Role", schema=None) as batch_op:
        batch_op.drop_index("ix_role_roles_child")

    op.drop_table("_Join_roles_Role")
    op.drop_table("ProviderProfile")
    op.drop_table("PatientProfile")
    with op.batch_alter_table("AuditLog", schema=None) as batch_op:
        batch_op.drop_index("ix_auditlog_patient")
        batch_op.drop_index("ix_auditlog_entity")

    op.drop_table("AuditLog")
    op.drop_table("_Version")
    op.drop_table("_User")
    op.drop_table("_SCHEMA")
    op.drop_table("_Role")
    op.drop_table("_AuditHead")
