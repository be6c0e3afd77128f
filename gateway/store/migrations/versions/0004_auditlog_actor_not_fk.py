"""AuditLog.actor is no longer a foreign key to _User

Deleting a user ran ON DELETE SET NULL on every AuditLog row naming them, rewriting a
field the hash chain covers: ``audit verify`` then reported the trail as altered, and
the trail lost who acted. The column keeps the user id as plain text.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 00:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
SQLITE_FK = "fk_AuditLog_actor__User"
POSTGRES_FK = "AuditLog_actor_fkey"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # The constraint was created unnamed: the naming convention names it for the batch copy.
        with op.batch_alter_table("AuditLog", naming_convention=FK_NAMES) as batch_op:
            batch_op.drop_constraint(SQLITE_FK, type_="foreignkey")
    else:
        op.drop_constraint(POSTGRES_FK, "AuditLog", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("AuditLog") as batch_op:
        batch_op.create_foreign_key(
            POSTGRES_FK if op.get_bind().dialect.name != "sqlite" else SQLITE_FK,
            "_User",
            ["actor"],
            ["objectId"],
            ondelete="SET NULL",
        )
