"""PatientProfile identity is (MRN, assigning authority): mrnAuthority column, unique pair

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 00:30:00

The same MRN from two assigning authorities (HL7 PID-3.4) is two patients. Existing rows
get '' (a locally assigned MRN), so every current MRN stays unique under the new pair.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0001 created the MRN unique constraint without a name; this convention names it (on SQLite the
# table is rebuilt; on PostgreSQL the generated name is PatientProfile_medicalRecordNumber_key).
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique_name() -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "PatientProfile_medicalRecordNumber_key"
    return "uq_PatientProfile_medicalRecordNumber"


def upgrade() -> None:
    with op.batch_alter_table("PatientProfile", naming_convention=_NAMING) as batch:
        batch.add_column(sa.Column("mrnAuthority", sa.String(length=64), server_default="", nullable=False))
        batch.drop_constraint(_old_unique_name(), type_="unique")
        batch.create_unique_constraint("uq_patient_mrn", ["medicalRecordNumber", "mrnAuthority"])


def downgrade() -> None:
    with op.batch_alter_table("PatientProfile", naming_convention=_NAMING) as batch:
        batch.drop_constraint("uq_patient_mrn", type_="unique")
        batch.create_unique_constraint(_old_unique_name(), ["medicalRecordNumber"])
        batch.drop_column("mrnAuthority")
