"""A change counter for what session tokens resolve to, bumped by triggers

``_AuthEpoch`` holds one row. On SQLite, triggers bump it whenever a change could alter
what a session token resolves to: a session updated or deleted (logout, revocation), a
user renamed or deleted, a role renamed or deleted, a role membership (user in role,
role in role) added, changed or removed, a patient profile linked to or unlinked from a
user. The SQLite read path remembers resolved sessions only while the counter is
unchanged (``gateway.store.sessionmemo``); triggers make every writer bump it, another
process or a hand-written UPDATE included, without any call site having to remember.

PostgreSQL gets the table but no triggers: it does not remember sessions (reading the
counter would cost a round trip, as the session statement does), and a counter row
updated by every logout would serialize them for nothing.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUMP = 'UPDATE "_AuthEpoch" SET "value" = "value" + 1'

TRIGGERS: dict[str, str] = {  # name -> event (SQLite triggers are row-level either way)
    "auth_epoch_session_update": 'AFTER UPDATE ON "_Session"',
    "auth_epoch_session_delete": 'AFTER DELETE ON "_Session"',
    "auth_epoch_user_update": 'AFTER UPDATE OF "username" ON "_User"',
    "auth_epoch_user_delete": 'AFTER DELETE ON "_User"',
    "auth_epoch_role_update": 'AFTER UPDATE OF "name", "objectId" ON "_Role"',
    "auth_epoch_role_delete": 'AFTER DELETE ON "_Role"',
    "auth_epoch_role_users_insert": 'AFTER INSERT ON "_Join_users_Role"',
    "auth_epoch_role_users_update": 'AFTER UPDATE ON "_Join_users_Role"',
    "auth_epoch_role_users_delete": 'AFTER DELETE ON "_Join_users_Role"',
    "auth_epoch_role_roles_insert": 'AFTER INSERT ON "_Join_roles_Role"',
    "auth_epoch_role_roles_update": 'AFTER UPDATE ON "_Join_roles_Role"',
    "auth_epoch_role_roles_delete": 'AFTER DELETE ON "_Join_roles_Role"',
    "auth_epoch_patient_insert": 'AFTER INSERT ON "PatientProfile" FOR EACH ROW WHEN NEW."user" IS NOT NULL',
    "auth_epoch_patient_update": 'AFTER UPDATE OF "user", "objectId" ON "PatientProfile"',
    "auth_epoch_patient_delete": 'AFTER DELETE ON "PatientProfile" FOR EACH ROW WHEN OLD."user" IS NOT NULL',
}


def upgrade() -> None:
    epoch = op.create_table(
        "_AuthEpoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(epoch, [{"id": 1, "value": 0}])
    if op.get_bind().dialect.name == "sqlite":
        for name, when in TRIGGERS.items():
            op.execute(f'CREATE TRIGGER "{name}" {when} BEGIN {BUMP}; END')


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS "{name}"')
    op.drop_table("_AuthEpoch")
