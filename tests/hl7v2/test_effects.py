"""Store effects of ingest: ADT demographics, audit entries, concurrent duplicates, one transaction per message."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from gateway.audit.verify import verify_chain
from gateway.hl7v2 import Delivery, Ingest
from gateway.hl7v2.mllp import MllpServer
from gateway.store.database import Database
from gateway.store.models import AuditLog, Hl7Message, PatientProfile, table_of
from tests.hl7v2.support import FIXTURES, RawMllp, counts, dead_letters, msa, wire

_patients = table_of(PatientProfile)
_audit = table_of(AuditLog)


async def _patient(db: Database, mrn: str) -> dict[str, object] | None:
    async with db.read() as conn:
        row = (await conn.execute(select(_patients).where(_patients.c.medicalRecordNumber == mrn))).mappings().first()
        return None if row is None else dict(row)


async def test_oru_then_adt_update_changes_demographics_of_the_same_patient(db: Database) -> None:
    ingest = Ingest(db)
    d = Delivery("mllp")
    assert (await ingest.handle(wire(FIXTURES / "correction-1-preliminary.hl7"), d)).code.value == "AA"
    created = await _patient(db, "ES-20011")
    assert created is not None and created["givenName"] == "Morgan" and created["version"] == 1
    reply = await ingest.handle(wire(FIXTURES / "adt-a08-update.hl7"), d)
    assert reply.code.value == "AA"
    updated = await _patient(db, "ES-20011")
    assert updated is not None and updated["objectId"] == created["objectId"]
    assert (await counts(db))["PatientProfile"] == 1, "never a second profile for one MRN"


async def test_merge_is_ae_and_kept_as_dead_letter(db: Database) -> None:
    reply = await Ingest(db).handle(wire(FIXTURES / "adt-a40-merge.hl7"), Delivery("mllp"))
    assert msa(reply.ack)[1] == "AE" and b"merge" in reply.ack
    assert [d["outcome"] for d in await dead_letters(db)] == ["AE"]
    assert (await counts(db))["PatientProfile"] == 0


async def test_publish_writes_audit_entries_and_the_chain_verifies(db: Database, database_url: str) -> None:
    ingest = Ingest(db)
    for name in ("correction-1-preliminary", "correction-2-final", "correction-3-corrected"):
        assert (await ingest.handle(wire(FIXTURES / f"{name}.hl7"), Delivery("http", "lab"))).code.value == "AA"
    async with db.read() as conn:
        rows = (await conn.execute(select(_audit.c.action, _audit.c.entityType, _audit.c.actorName))).all()
    actions = sorted((r.action, r.entityType) for r in rows)
    assert actions.count(("create", "Hl7Message")) == 3
    assert actions.count(("publish", "LabResult")) == 2, "final, then corrected; the preliminary is not published"
    assert {r.actorName for r in rows} == {"hl7:lab"}
    result = await verify_chain(database_url)
    assert result.ok, result


async def test_concurrent_duplicates_on_two_connections_apply_once(listener: MllpServer, db: Database) -> None:
    port = listener.port
    message = wire(FIXTURES / "chem-panel-beaker.hl7")
    clients = [await RawMllp.open(port) for _ in range(4)]
    acks = await asyncio.gather(*(c.send(message) for c in clients))
    for c in clients:
        await c.close()
    assert len(set(acks)) == 1 and msa(acks[0])[1] == "AA"
    totals = await counts(db)
    assert totals["_Hl7Message"] == 1
    async with db.read() as conn:
        versions = (await conn.execute(select(_audit.c.action).where(_audit.c.entityType == "Hl7Message"))).all()
    assert len(versions) == 1


async def test_mllp_then_http_repeat_gets_the_same_ack(listener: MllpServer, db: Database) -> None:
    message = wire(FIXTURES / "micro-culture-copath.hl7")
    client = await RawMllp.open(listener.port)  # type: ignore[attr-defined]
    first = await client.send(message)
    await client.close()
    [again] = await Ingest(db).handle_payload(message.replace(b"\r", b"\r\n"), Delivery("http", "lab"))
    assert again.ack == first and again.duplicate


async def test_same_key_twice_in_one_message_is_one_row_with_two_versions(db: Database) -> None:
    message = (
        b"MSH|^~\\&|LABCORE|EASTSIDE LAB|PORTAL|PORTAL GW|20260118080000-0600||ORU^R01^ORU_R01|ES-TWICE-1|P|2.5.1\r"
        b"PID|1||ES-777^^^EASTSIDE^MR||Twice^Terry||19700101|M\r"
        b"OBR|1|PO-7|FO-7|2345-7^Glucose^LN|||20260118070000-0600\r"
        b"OBX|1|NM|2345-7^Glucose^LN||140|mg/dL^^UCUM|70-99|H|||P|||202601180730-0600\r"
        b"OBX|2|NM|2345-7^Glucose^LN||141|mg/dL^^UCUM|70-99|H|||F|||202601180730-0600\r"
    )
    reply = await Ingest(db).handle(message, Delivery("mllp"))
    assert reply.code.value == "AA", reply.ack
    async with db.read() as conn:
        from gateway.store.models import LabResult

        rows = (await conn.execute(select(table_of(LabResult)))).mappings().all()
    assert [(r["status"], r["resultValue"], r["version"]) for r in rows] == [("final", "141", 2)]


async def test_a_message_stamps_every_row_it_writes_with_one_instant(db: Database) -> None:
    """One message, one transaction, one time: its LabResults' createdAt, updatedAt and publishedAt
    and their first versions' createdAt are the same instant (the audit stamp may follow it)."""
    from gateway.store.models import LabResult, Version

    results, versions = table_of(LabResult), table_of(Version)
    reply = await Ingest(db).handle(wire(FIXTURES / "chem-panel-beaker.hl7"), Delivery("mllp"))
    assert reply.code.value == "AA"
    async with db.read() as conn:
        rows = (await conn.execute(select(results.c.createdAt, results.c.updatedAt, results.c.publishedAt))).all()
        stamps = (await conn.execute(select(versions.c.createdAt).where(versions.c.className == "LabResult"))).all()
        patient = (await conn.execute(select(_patients.c.createdAt))).scalar_one()
    assert len(rows) >= 10 and len(stamps) == len(rows)
    instants = {v for r in rows for v in r} | {s.createdAt for s in stamps} | {patient}
    assert len(instants) == 1, instants


async def test_a_nul_character_is_ae_kept_as_dead_letter_with_its_raw_bytes(db: Database) -> None:
    """No HL7 v2 text may hold NUL, and PostgreSQL cannot store it in a text column: the message is
    answered AE naming where it was, applies nothing, and its dead letter keeps the raw bytes (the
    header fields and ACK with the NUL replaced). Before, on PostgreSQL, it was not logged at all."""
    raw = wire(FIXTURES / "correction-1-preliminary.hl7")
    control = raw.split(b"|")[9]
    damaged = raw.replace(b"|" + control + b"|", b"|" + control[:2] + b"\x00" + control[2:] + b"|", 1)
    reply = await Ingest(db).handle(damaged, Delivery("mllp"))
    assert msa(reply.ack)[1] == "AE" and b"NUL character" in reply.ack and b"MSH^1^10" in reply.ack
    assert b"\x00" not in reply.ack
    [letter] = await dead_letters(db)
    assert letter["outcome"] == "AE" and "\x00" not in str(letter["controlId"])
    async with db.read() as conn:
        stored = (await conn.execute(select(table_of(Hl7Message).c.raw))).scalar_one()
    assert bytes(stored) == damaged
    found = await counts(db)
    assert (found["LabResult"], found["PatientProfile"]) == (0, 0)
