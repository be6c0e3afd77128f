"""Security catalog D03, D06-D11 through the real doors (D01: test_crash.py; D02: test_mllp.py and
test_effects.py; D04/D05: test_framing.py and test_mllp.py), on every backend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event, select

from gateway.hl7v2.mllp import MllpServer
from gateway.hl7v2.routes import ER7
from gateway.store.database import Database
from gateway.store.models import AuditLog, LabResult, Version, table_of
from tests.api_support import APP_ID, MASTER_KEY
from tests.hl7v2.support import FIXTURES, RawMllp, counts, dead_letters, msa, result_ids, wire

Client = AsyncTestClient[Any]
_results = table_of(LabResult)
_versions = table_of(Version)
_audit = table_of(AuditLog)


def result(control: str, order: str, status: str, value: str, when: str, *, version: str = "2.5.1") -> bytes:
    return (
        f"MSH|^~\\&|LABCORE|CATALOG LAB|PORTAL|PORTAL GW|20260118080000-0600||ORU^R01^ORU_R01|{control}|P|{version}\r"
        "PID|1||CAT-1^^^CATALOG^MR||Catalog^Cass||19700101|F\r"
        f"OBR|1|P-{order}|F-{order}|2345-7^Glucose^LN|||20260118070000-0600\r"
        f"OBX|1|NM|2345-7^Glucose^LN||{value}|mg/dL^^UCUM|70-99||||{status}|||{when}\r"
    ).encode()


async def _row(db: Database, oid: str) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(_results).where(_results.c.objectId == oid))).mappings().one()
        history = (
            await conn.execute(
                select(_versions.c.data).where(_versions.c.objectId == oid).order_by(_versions.c.version)
            )
        ).all()
        publishes = (
            await conn.execute(select(_audit.c.seq).where((_audit.c.entityId == oid) & (_audit.c.action == "publish")))
        ).all()
    return {**dict(row), "history": [h.data["status"] for h in history], "publishes": len(publishes)}


EARLY, LATE, LATER = "202601180700-0600", "202601180800-0600", "202601180900-0600"

SEQUENCES = {
    # name: ([(OBX-11, value, OBX-14)], final status, versions (statuses), publish audit entries)
    "F then C": ([("F", "100", EARLY), ("C", "96", LATE)], "corrected", ["final", "corrected"], 2),
    "C then late F": ([("C", "96", LATE), ("F", "100", EARLY)], "corrected", ["corrected"], 1),
    "P after F": ([("F", "100", LATE), ("P", "90", EARLY)], "final", ["final"], 1),
    "X after F": ([("F", "100", EARLY), ("X", "100", LATE)], "cancelled", ["final", "cancelled"], 1),
    "W after F": ([("F", "100", EARLY), ("W", "100", LATE)], "entered-in-error", ["final", "entered-in-error"], 1),
    "D after F": ([("F", "100", EARLY), ("D", "100", LATE)], "entered-in-error", ["final", "entered-in-error"], 1),
    "two Cs": (
        [("F", "100", EARLY), ("C", "96", LATE), ("C", "97", LATER)],
        "corrected",
        ["final", "corrected", "corrected"],
        3,
    ),
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
async def test_d03_corrections_and_out_of_order(listener: MllpServer, db: Database, name: str) -> None:
    steps, status, history, publishes = SEQUENCES[name]
    client = await RawMllp.open(listener.port)
    for i, (code, value, when) in enumerate(steps):
        assert msa(await client.send(result(f"D03-{i}", "D03", code, value, when)))[1] == "AA"
    await client.close()
    [oid] = result_ids(result("x", "D03", "F", "1", EARLY))
    row = await _row(db, oid)
    assert (row["status"], row["history"], row["publishes"]) == (status, history, publishes)
    assert (await counts(db))["LabResult"] == 1, "one LabResult per key"


@pytest.mark.parametrize(("code", "why"), [("", "is empty"), ("Q", "not in HL7 Table 0085")])
async def test_d03_empty_or_unknown_status_is_ae(listener: MllpServer, db: Database, code: str, why: str) -> None:
    client = await RawMllp.open(listener.port)
    ack = (await client.send(result("D03-BAD", "D03B", code, "100", EARLY))).decode()
    await client.close()
    assert msa(ack.encode())[1] == "AE"
    err = next(s for s in ack.split("\r") if s.startswith("ERR"))
    assert "OBX^1^11" in err and why in err
    assert (await counts(db))["LabResult"] == 0
    assert [d["outcome"] for d in await dead_letters(db)] == ["AE"]


async def _fhir_observation(client: Client, oid: str) -> dict[str, Any]:
    r = await client.get(
        f"/fhir/Observation/{oid}", headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_d06_escapes_round_trip_to_the_store_and_fhir(http: tuple[Client, str]) -> None:
    client, key = http
    message = wire(FIXTURES / "escapes-utf8.hl7")
    r = await client.post("/hl7v2", content=message, headers={"Content-Type": ER7, "X-Feed-Key": key})
    assert msa(r.content)[1] == "AA", r.content
    plain, formatted = result_ids(message)
    observation = await _fhir_observation(client, plain)
    assert observation["valueString"] == "Ratio A|B ^ sub&comp ~ rep \\ esc"
    text = (await _fhir_observation(client, formatted))["valueString"]
    assert text.startswith("Line one\nLine two\r\nLine three urgent unknown")
    assert "\\Zabc\\" in text, "an unknown escape is kept literally"


async def test_d06_other_delimiters_and_malformed_escapes(listener: MllpServer, db: Database) -> None:
    odd = (
        b"MSH$@#!%$LAB$ODD FAC$GW$GWF$20260101120000+0000$$ORU@R01@ORU_R01$ODD-1$P$2.5.1\r"
        b"PID$1$$ODD-1@@@ODD@MR$$Odd@Ola\r"
        b"OBR$1$P1$F1$2345-7@Glucose@LN\r"
        b"OBX$1$ST$2345-7@Glucose@LN$$a!F!b and x@y literal$$$$$$F$$$20260101110000+0000\r"
    )
    client = await RawMllp.open(listener.port)
    ack = await client.send(odd)
    assert ack.startswith(b"MSH$@#!%$GW$GWF$LAB$ODD FAC$"), "ACK built with the sender's delimiters"
    assert ack.split(b"\r")[1].split(b"$")[1] == b"AA"
    async with db.read() as conn:
        value = (await conn.execute(select(_results.c.resultValue))).scalar_one()
    assert value == "a$b and x@y literal"  # the escape decoded; a literal component separator in ST kept
    bad = result("D06-BAD", "D06", "F", "1", EARLY).replace(b"||1|mg", b"||\\XZZ\\ 1|mg").replace(b"|NM|", b"|ST|")
    ack = await client.send(bad)
    await client.close()
    assert msa(ack)[1] in {"AA", "AE"}, "a malformed escape is answered, never a crash"
    assert b"\rERR|" in ack, "and reported in ERR"


async def test_d07_character_sets(listener: MllpServer, db: Database) -> None:
    base = "MSH|^~\\&|LAB|CHARSET LAB|GW|GWF|20260101||ORU^R01^ORU_R01|{c}|P|2.5.1||||||{cs}\r"
    body = (
        "PID|1||{m}^^^CS^MR||{n}\rOBR|1|P{m}|F{m}|2345-7^Glu^LN\rOBX|1|ST|2345-7^Glu^LN||x||||||F|||202601011100+0000\r"
    )
    cases = [
        ("CS-1", "UNICODE UTF-8", "utf-8", "Müller^José", "Müller"),
        ("CS-2", "UNICODE UTF-8", "utf-8", "李^小龍", "李"),
        ("CS-3", "8859/1", "latin-1", "Peña^Inés", "Peña"),
        ("CS-4", "", "latin-1", "Ærø^Åse", "Ærø"),  # undeclared Latin-1: read as 8859/1 with a warning
    ]
    client = await RawMllp.open(listener.port)
    for control, charset, codec, name, family in cases:
        raw = (base.format(c=control, cs=charset) + body.format(m=control, n=name)).encode(codec)
        ack = await client.send(raw)
        assert msa(ack)[1] == "AA", ack
        if not charset:
            assert b"MSH^1^18" in ack, "the fallback is reported, not silent"
        async with db.read() as conn:
            from gateway.store.models import PatientProfile

            patients = table_of(PatientProfile)
            stored = (
                await conn.execute(select(patients.c.familyName).where(patients.c.medicalRecordNumber == control))
            ).scalar_one()
        assert stored == family
    # UTF-8 declared, bytes that are not UTF-8: AE, nothing stored, raw bytes kept as a dead letter
    lying = (base.format(c="CS-5", cs="UNICODE UTF-8") + body.format(m="CS-5", n="Peña^Inés")).encode("latin-1")
    ack = await client.send(lying)
    await client.close()
    assert msa(ack)[1] == "AE" and b"MSH^1^18" in ack
    [dead] = await dead_letters(db)
    assert dead["raw"] == lying
    assert (await counts(db))["PatientProfile"] == 4


async def test_d08_malformed_and_unsupported(listener: MllpServer, db: Database) -> None:
    ok = result("D08-OK", "D08", "F", "100", EARLY)
    cases = {
        "missing MSH-10": (ok.replace(b"|D08-OK|", b"||"), "AR"),
        "missing PID-3": (ok.replace(b"PID|1||CAT-1^^^CATALOG^MR|", b"PID|1|||").replace(b"D08-OK", b"D08-P"), "AE"),
        "NM with abc": (ok.replace(b"||100|", b"||abc|").replace(b"D08-OK", b"D08-NM"), "AE"),
        "unknown OBX-2": (ok.replace(b"|NM|", b"|QQ|").replace(b"D08-OK", b"D08-QQ"), "AE"),
        "version 2.1": (result("D08-21", "D08", "F", "1", EARLY, version="2.1"), "AR"),
        "version 2.9": (result("D08-29", "D08", "F", "1", EARLY, version="2.9"), "AR"),
        "unsupported type": (ok.replace(b"ORU^R01^ORU_R01|D08-OK", b"MDM^T02^MDM_T02|D08-MDM"), "AR"),
    }
    client = await RawMllp.open(listener.port)
    for name, (raw, code) in cases.items():
        ack = await client.send(raw)
        assert msa(ack)[1] == code, (name, ack)
        assert b"\rERR|" in ack, name
    assert (await counts(db))["LabResult"] == 0, "atomic: nothing partial"
    assert len(await dead_letters(db)) == len(cases)
    # LF and CRLF segment ends, a Z-segment, a NTE without a parent, 1,000 OBX: all applied
    big = ok.replace(b"\r", b"\n").replace(b"PID|", b"ZXX|custom|data\nNTE|1||orphan note\nPID|", 1)
    assert msa(await client.send(big))[1] == "AA"
    many = result("D08-MANY", "D08M", "F", "1", EARLY).rstrip(b"\r").rsplit(b"\r", 1)[0] + b"\r"
    many += b"".join(
        f"OBX|{i}|NM|2345-7^Glu^LN|{i}|{i}||||||F\r".encode()
        for i in range(1, 1001)  # short OBX: the listener's test size limit is 64 KiB
    )
    assert msa(await client.send(many))[1] == "AA"
    groups = result("D08-GROUPS", "G1", "F", "5", EARLY) + (
        b"ORC|RE|P-G2|F-G2||CM\r"
        b"OBR|2|P-G2|F-G2|2951-2^Sodium^LN|||20260118070000-0600\r"
        b"OBX|1|NM|2951-2^Sodium^LN||139|mmol/L^^UCUM|136-145||||F|||202601180700-0600\r"
    )
    assert msa(await client.send(groups))[1] == "AA", "repeated ORC/OBR groups"
    await client.close()
    assert (await counts(db))["LabResult"] == 1 + 1000 + 2
    async with db.read() as conn:
        orders = {
            r.orderId for r in await conn.execute(select(_results.c.orderId).where(_results.c.orderId.like("F-G%")))
        }
    assert orders == {"F-G1", "F-G2"}, "each OBX keyed by its own group's order number"


@pytest.mark.parametrize("accept", ["", "AL", "NE", "ER", "SU"])
async def test_d09_acknowledgment_modes(listener: MllpServer, db: Database, accept: str) -> None:
    """Original mode only (documented in gateway.hl7v2.ingest): whatever MSH-15/MSH-16 ask for, one
    application ACK (AA/AE/AR) per message on the same connection, after the commit; no CA/CE/CR."""
    client = await RawMllp.open(listener.port)
    for application in ("", "AL", "NE", "ER", "SU"):
        control = f"D09-{accept or 'x'}-{application or 'x'}"
        raw = result(control, control, "F", "1", EARLY).replace(
            b"|P|2.5.1\r", f"|P|2.5.1|||{accept}|{application}\r".encode(), 1
        )
        ack = await client.send(raw)
        assert msa(ack)[1:3] == ["AA", control]
    await client.close()
    assert (await counts(db))["LabResult"] == 5


async def test_d10_batch_with_a_bad_message_and_wrong_count(http: tuple[Client, str]) -> None:
    client, key = http
    batch = (FIXTURES / "batch-fhs-bhs.hl7").read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    bad = batch.replace(b"|2571-8^Triglyceride^LN||150|", b"|2571-8^Triglyceride^LN||high|", 1)
    bad = bad.replace(b"BTS|3", b"BTS|7")
    assert bad != batch
    r = await client.post("/hl7v2", content=bad, headers={"Content-Type": ER7, "X-Feed-Key": key})
    acks = [b"MSH" + a for a in r.content.split(b"MSH")[1:]]
    assert r.status_code == 207, "mixed outcomes"
    assert [msa(a)[1:3] for a in acks] == [["AA", "ES-B-0001"], ["AE", "ES-B-0002"], ["AA", "ES-B-0003"]]
    # the good messages stay applied; the bad one applied nothing. A wrong BTS count is not
    # checked (documented): each message is acknowledged on its own, which is what a sender retries by.


async def test_d11_http_and_mllp_parity_and_unavailable_store(
    listener: MllpServer, db: Database, http: tuple[Client, str]
) -> None:
    client, key = http
    message = wire(FIXTURES / "micro-culture-copath.hl7")
    over_http = await client.post("/hl7v2", content=message, headers={"Content-Type": ER7, "X-Feed-Key": key})
    mllp = await RawMllp.open(listener.port)
    assert await mllp.send(message) == over_http.content, "same ACK through either door"
    assert (
        await client.post("/hl7v2", content=message, headers={"Content-Type": "application/json"})
    ).status_code == 401
    wrong_type = await client.post(
        "/hl7v2", content=message, headers={"Content-Type": "application/json", "X-Feed-Key": key}
    )
    assert wrong_type.status_code == 415
    if db.dialect != "sqlite":
        await mllp.close()
        return
    # The store is locked by another writer for longer than the busy timeout allows: no AA, the
    # message is not lost (the sender still has it un-ACKed and resends), and after the lock the
    # resend applies exactly once.
    fresh = wire(FIXTURES / "cbc-sunquest.hl7")
    import sqlite3

    path = db.url.split(":///", 1)[1]
    blocker = sqlite3.connect(path, isolation_level=None, timeout=1)
    blocker.execute("PRAGMA busy_timeout=1")
    blocker.execute("BEGIN IMMEDIATE")
    engine = listener.ingest.committer._sync
    assert engine is not None
    event.listen(engine, "connect", lambda dbapi, _rec: dbapi.execute("PRAGMA busy_timeout=200"))
    engine.dispose()  # new connections give up on the lock after 200 ms instead of 10 s
    try:
        ack = await asyncio.wait_for(mllp.send(fresh), 60)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert msa(ack)[1] == "AE" and b"207" in ack, "no AA while the store is unavailable"
    before = (await counts(db))["LabResult"]
    again = await mllp.send(fresh)
    await mllp.close()
    assert msa(again)[1] == "AA"
    assert (await counts(db))["LabResult"] == before + len(set(result_ids(fresh)))
