"""AuditLog.hash loses its UNIQUE index

Every audited read inserts an AuditLog row, and each index on the table is one more
B-tree page to dirty and write to the WAL per entry. The UNIQUE index on ``hash`` kept
random 64-character keys that nothing looks up: the chain is walked by ``seq`` (unique),
and ``audit verify`` recomputes each hash and checks it links to the next entry, which
detects a copied or inserted entry whether or not two rows share a hash. Measured on
the read-audit batch (8 entries, SQLite WAL, ``synchronous=FULL``): the commit's CPU
fell by about a quarter without it. Audit entry ids are now sequential (written in
order at the right edge of the primary-key index) for the same reason.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UQ_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
SQLITE_UQ = "uq_AuditLog_hash"
POSTGRES_UQ = "AuditLog_hash_key"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Created unnamed in 0001: the naming convention names it for the batch copy.
        with op.batch_alter_table("AuditLog", naming_convention=UQ_NAMES) as batch_op:
            batch_op.drop_constraint(SQLITE_UQ, type_="unique")
    else:
        op.drop_constraint(POSTGRES_UQ, "AuditLog", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("AuditLog") as batch_op:
        batch_op.create_unique_constraint(
            POSTGRES_UQ if op.get_bind().dialect.name != "sqlite" else SQLITE_UQ, ["hash"]
        )
