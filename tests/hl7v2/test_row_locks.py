"""Row locks between the HL7 feed and other writers of the same patient (PostgreSQL).

A transaction that reads a patient to update it (``store.objects.get_record(for_update=True)``: a
portal edit, an ADT update, a care-team change) must not hold up a lab feed that is only adding
results for that patient. Each new LabResult row points at its patient, and PostgreSQL's foreign-key
check takes KEY SHARE on the patient row, which FOR UPDATE blocks and FOR NO KEY UPDATE (what an
UPDATE of non-key columns takes itself) does not.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from gateway.hl7v2.ingest import Delivery, Ingest
from gateway.store.classes import CLASSES
from gateway.store.database import Database
from gateway.store.models import LabResult, table_of
from gateway.store.objects import get_record, update_record
from mappings.hl7v2 import AckCode
from tests.hl7v2.test_crash import oru

_results = table_of(LabResult)
_PATIENT = CLASSES["PatientProfile"]


async def test_a_patient_locked_for_an_update_does_not_hold_up_new_results(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: there are no row locks to share")
    db = Database(database_url)
    ingest = Ingest(db)
    try:
        first = await ingest.handle(oru("LK-0"), Delivery("mllp"))
        assert first.code is AckCode.AA
        async with db.read() as conn:
            patient = (await conn.execute(select(_results.c.patient))).scalars().first()
        assert patient is not None
        async with db.write() as conn:
            current = await get_record(conn, _PATIENT, patient, keep_internal=True, for_update=True)
            assert current is not None
            # While this transaction holds the patient for its update, the feed adds that patient's
            # next results (LK-7 is the same patient: see ``test_crash.oru``) and commits.
            second = await asyncio.wait_for(ingest.handle(oru("LK-7"), Delivery("mllp")), timeout=10)
            assert second.code is AckCode.AA
            await update_record(conn, _PATIENT, current, {"givenName": "Edited"}, actor="test")
        async with db.read() as conn:
            stored = (await conn.execute(select(func.count()).select_from(_results))).scalar_one()
            edited = await get_record(conn, _PATIENT, patient)
        assert stored == 4, "both messages' results are stored"
        assert edited is not None and edited["givenName"] == "Edited", "and the update went through after them"
    finally:
        await ingest.committer.aclose()
        await db.dispose()
