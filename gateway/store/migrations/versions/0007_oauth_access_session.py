"""SMART online_access: access tokens remember the sign-in session too

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 01:10:00

An online_access grant's access tokens stop working as soon as the sign-in that
approved them ends, however it ends (sign-out on the authorize page, the user or an
admin deleting the session through the Parse door, a password reset ending every
session). The token check reads the session only for tokens that carry one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("_OAuthAccessToken") as batch:
        batch.add_column(sa.Column("sessionId", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("_OAuthAccessToken") as batch:
        batch.drop_column("sessionId")
