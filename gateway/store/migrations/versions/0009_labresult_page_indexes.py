"""LabResult's per-patient date indexes end in objectId, the date descending

Both doors page a patient's results by a date descending with objectId as the tie-breaker
(``order=-publishedAt``; FHIR ``_sort=-date``). On ``(patient, date)`` SQLite found the
rows by index but sorted every one of the patient's results for each page ("USE TEMP
B-TREE FOR RIGHT PART OF ORDER BY"), checking each row's ACL on the way; on
``(patient, date DESC, objectId)`` it reads the page in order and stops at the limit.
Measured on the benchmark store (100 results for the patient, page of 20): 251 -> 198 µs.
Queries on ``patient`` alone use the same indexes as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {"ix_labresult_patient_published": "publishedAt", "ix_labresult_patient_effective": "effectiveAt"}


def upgrade() -> None:
    for name, column in INDEXES.items():
        op.drop_index(name, table_name="LabResult")
        op.create_index(name, "LabResult", ["patient", sa.text(f'"{column}" DESC'), "objectId"])


def downgrade() -> None:
    for name, column in INDEXES.items():
        op.drop_index(name, table_name="LabResult")
        op.create_index(name, "LabResult", ["patient", column])
