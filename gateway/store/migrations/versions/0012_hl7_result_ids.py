"""Whether the store holds HL7 feed results under the ids used before clustered ids

Feed results are now stored under ``ids.clustered_object_id`` (11 characters, clustered by
order); a store written before holds them under ``derived_object_id`` (10 characters), and a
later message about one of those (a correction) must find it there. ``_Hl7ResultIds`` holds
one row saying whether any such row exists, computed once here: nothing writes 10-character
feed result ids after this revision, so the answer cannot change from false to true, and the
writer reads it with one key lookup (``apply.has_legacy_result_ids``) instead of scanning the
table at every start. A store created at or after this revision says false and never looks
results up twice.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_ID_LENGTH = 10
"""``ids.OBJECT_ID_LENGTH`` as it was at this revision."""


def upgrade() -> None:
    op.create_table(
        "_Hl7ResultIds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("legacy", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    results = sa.table("LabResult", sa.column("objectId", sa.String()), sa.column("sourceMessageId", sa.String()))
    legacy = (
        sa.select(results.c.objectId)
        .where((sa.func.length(results.c.objectId) == LEGACY_ID_LENGTH) & results.c.sourceMessageId.is_not(None))
        .limit(1)
    )
    present = op.get_bind().execute(legacy).first() is not None
    op.bulk_insert(sa.table("_Hl7ResultIds", sa.column("id"), sa.column("legacy")), [{"id": 1, "legacy": present}])


def downgrade() -> None:
    op.drop_table("_Hl7ResultIds")
