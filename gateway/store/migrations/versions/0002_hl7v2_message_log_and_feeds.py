"""hl7v2 message log and feeds

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 22:17:02.069907
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import gateway.store.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "_Hl7Feed",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("keyHash", sa.String(length=64), nullable=False),
        sa.Column("createdAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("isActive", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("keyHash"),
    )
    op.create_table(
        "_Hl7Message",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("receivedAt", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("feed", sa.String(length=64), nullable=True),
        sa.Column("sourceAddress", sa.String(length=64), nullable=True),
        sa.Column("sendingApplication", sa.String(length=255), nullable=True),
        sa.Column("sendingFacility", sa.String(length=255), nullable=True),
        sa.Column("controlId", sa.String(length=255), nullable=True),
        sa.Column("controlKey", sa.String(length=255), nullable=True),
        sa.Column("messageType", sa.String(length=32), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("outcome", sa.String(length=2), nullable=False),
        sa.Column("ack", sa.Text(), nullable=False),
        sa.Column(
            "reason", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column(
            "effects", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sendingFacility", "controlKey", name="uq_hl7message_control"),
    )
    with op.batch_alter_table("_Hl7Message", schema=None) as batch_op:
        batch_op.create_index("ix_hl7message_outcome", ["outcome", "receivedAt"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("_Hl7Message", schema=None) as batch_op:
        batch_op.drop_index("ix_hl7message_outcome")

    op.drop_table("_Hl7Message")
    op.drop_table("_Hl7Feed")
