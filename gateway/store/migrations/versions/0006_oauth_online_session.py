"""SMART online_access: codes and refresh tokens remember the sign-in session that approved them

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 00:55:00

An ``online_access`` refresh token must stop working when the user's sign-in ends
(SMART App Launch). The authorize page's sign-in is a ``_Session`` row; codes carry
its id to the token endpoint, and an online-only refresh token keeps it, so a deleted
or expired session ends the token family. No foreign key: a deleted session must leave
the id behind (a NULL would read as "offline").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("_OAuthCode") as batch:
        batch.add_column(sa.Column("sessionId", sa.String(length=32), nullable=True))
    with op.batch_alter_table("_OAuthRefreshToken") as batch:
        batch.add_column(sa.Column("sessionId", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("_OAuthRefreshToken") as batch:
        batch.drop_column("sessionId")
    with op.batch_alter_table("_OAuthCode") as batch:
        batch.drop_column("sessionId")
