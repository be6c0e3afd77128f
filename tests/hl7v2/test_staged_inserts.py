"""Staged inserts (``hl7v2.staged``): a group's new results, versions and message-log rows go in with
one statement per table at the end of the group, later messages of the group still see them, and
a group whose staged rows cannot go in is re-run with each message inserting its own."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select

from gateway.hl7v2 import Delivery, Ingest
from gateway.hl7v2.staged import StagedInserts
from gateway.store.database import Database
from gateway.store.models import LabResult, Version, table_of
from tests.hl7v2.support import counts, dead_letters, msa, result_ids

_results = table_of(LabResult)
_versions = table_of(Version)


def oru(control_id: str, mrn: str, order: str, status: str = "F") -> bytes:
    return (
        f"MSH|^~\\&|LABCORE|STAGE LAB|PORTAL|PORTAL GW|20260118080000-0600||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r"
        f"PID|1||{mrn}^^^STAGE^MR||Stage^Sam||19700101|F\r"
        f"ORC|RE|P-{order}|F-{order}||CM\r"
        f"OBR|1|P-{order}|F-{order}|2345-7^Glucose^LN|||20260118070000-0600\r"
        f"OBX|1|NM|2345-7^Glucose^LN||101|mg/dL^^UCUM|70-99|H|||{status}|||20260118073000-0600\r"
        f"OBX|2|NM|2951-2^Sodium^LN||139|mmol/L^^UCUM|136-145|N|||{status}|||20260118073000-0600\r"
    ).encode()


class _Flushes:
    """What each flush of staged rows inserted (rows per table) and whether it failed: a spy on the
    real ``StagedInserts.flush``, which still runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.done: list[Counter[str]] = []
        self.failed = 0
        real = StagedInserts.flush
        spy = self

        async def flush(staged: StagedInserts, conn: Any) -> None:
            tables = Counter(staged.rows_per_table())
            try:
                await real(staged, conn)
            except Exception:
                spy.failed += 1
                raise
            if tables:
                spy.done.append(tables)

        monkeypatch.setattr(StagedInserts, "flush", flush)


async def _group(ingest: Ingest, *messages: bytes) -> list[str]:
    groups = ingest.committer.groups
    replies = await asyncio.gather(*(ingest.submit(m, Delivery("mllp")) for m in messages))
    assert ingest.committer.groups == groups + 1, "the messages shared one transaction"
    return [msa(r[0].ack)[1] for r in replies]


async def test_a_group_inserts_each_table_once(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    flushes = _Flushes(monkeypatch)
    ingest = Ingest(db)
    codes = await _group(ingest, *(oru(f"ST-{i}", f"MRN-ST-{i % 2}", f"ST{i}") for i in range(4)))
    assert codes == ["AA"] * 4
    assert flushes.done == [Counter({"LabResult": 8, "_Version": 8, "_Hl7Message": 4})]
    assert flushes.failed == 0
    found = await counts(db)
    assert (found["LabResult"], found["_Hl7Message"]) == (8, 4)
    async with db.read() as conn:
        firsts = (
            await conn.execute(
                select(_versions.c.objectId).where((_versions.c.className == "LabResult") & (_versions.c.version == 1))
            )
        ).all()
    assert len(firsts) == 8


async def test_a_later_message_of_the_group_sees_the_rows_an_earlier_one_staged(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """P then F of one order in one transaction: the F message's lookup flushes the P message's rows
    first and versions them (one row each, two versions), with no re-run of the group."""
    flushes = _Flushes(monkeypatch)
    ingest = Ingest(db)
    preliminary, final = oru("ST-P", "MRN-ST-PF", "PF", "P"), oru("ST-F", "MRN-ST-PF", "PF", "F")
    assert await _group(ingest, preliminary, final) == ["AA", "AA"]
    assert flushes.failed == 0
    assert flushes.done == [
        Counter({"LabResult": 2, "_Version": 2, "_Hl7Message": 1}),  # before the F message's lookup
        Counter({"_Hl7Message": 1}),  # the end of the group
    ]
    oids = result_ids(preliminary)
    async with db.read() as conn:
        rows = (await conn.execute(select(_results.c.objectId, _results.c.status, _results.c.version))).all()
        history = (
            await conn.execute(
                select(_versions.c.objectId, _versions.c.version, _versions.c.data)
                .where(_versions.c.className == "LabResult")
                .order_by(_versions.c.objectId, _versions.c.version)
            )
        ).all()
    assert sorted((r.objectId, r.status, r.version) for r in rows) == sorted((o, "final", 2) for o in oids)
    assert [(h.objectId, h.version, h.data["status"]) for h in history] == [
        (o, v, s) for o in sorted(oids) for v, s in ((1, "preliminary"), (2, "final"))
    ]


async def test_the_same_control_id_twice_in_a_group_is_a_repeat(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    flushes = _Flushes(monkeypatch)
    ingest = Ingest(db)
    message = oru("ST-DUP", "MRN-ST-DUP", "DUP")
    altered = message.replace(b"|101|", b"|102|")
    assert await _group(ingest, message, message, altered) == ["AA", "AA", "AE"]
    assert flushes.failed == 0
    found = await counts(db)
    assert (found["LabResult"], found["_Hl7Message"]) == (2, 2), "the results once; the altered copy a dead letter"
    assert [(d["controlId"], d["outcome"]) for d in await dead_letters(db)] == [("ST-DUP", "AE")]


async def _orphan_version(db: Database, oid: str) -> None:
    """A first version with no LabResult row (a store edited by hand): inserting that result's first
    version breaks ``_Version``'s unique key, which no lookup of the ingest can foresee."""
    async with db.write() as conn:
        await conn.execute(
            insert(_versions),
            {
                "className": "LabResult",
                "objectId": oid,
                "version": 1,
                "data": {},
                "deleted": False,
                "createdAt": datetime.now(UTC),
                "actor": "test",
            },
        )


async def test_staged_rows_that_cannot_go_in_rerun_the_group_with_each_message_inserting_its_own(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes = _Flushes(monkeypatch)
    ingest = Ingest(db)
    broken = oru("ST-BROKEN", "MRN-ST-B", "BROKEN")
    await _orphan_version(db, result_ids(broken)[0])
    replies = await asyncio.gather(
        *(
            ingest.submit(m, Delivery("mllp"))
            for m in (oru("ST-A", "MRN-ST-A", "A"), broken, oru("ST-C", "MRN-ST-C", "C"))
        )
    )
    assert [msa(r[0].ack)[1] for r in replies] == ["AA", "AE", "AA"]
    assert flushes.failed == 1, "the group's flush failed once, then nothing was staged"
    async with db.read() as conn:
        orders = sorted(r.orderId for r in await conn.execute(select(_results.c.orderId)))
    assert orders == ["F-A", "F-A", "F-C", "F-C"], "nothing of the broken message"
    assert [(d["controlId"], d["outcome"]) for d in await dead_letters(db)] == [("ST-BROKEN", "AE")]


async def test_a_failing_flush_inside_a_message_reruns_the_group_unstaged(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same, when the failing flush is the one a later message's lookup asks for."""
    flushes = _Flushes(monkeypatch)
    ingest = Ingest(db)
    preliminary = oru("ST-BP", "MRN-ST-BP", "BPF", "P")
    await _orphan_version(db, result_ids(preliminary)[0])
    replies = await asyncio.gather(
        *(
            ingest.submit(m, Delivery("mllp"))
            for m in (preliminary, oru("ST-BF", "MRN-ST-BP", "BPF", "F"), oru("ST-OK", "MRN-ST-OK", "OK"))
        )
    )
    # Unstaged, each of the first two meets the orphan version itself (a conflict that does not go
    # away: given up, dead letters); the third is applied.
    assert [msa(r[0].ack)[1] for r in replies] == ["AE", "AE", "AA"]
    assert flushes.failed == 1
    async with db.read() as conn:
        orders = sorted(r.orderId for r in await conn.execute(select(_results.c.orderId)))
    assert orders == ["F-OK", "F-OK"]
    assert sorted(d["controlId"] for d in await dead_letters(db)) == ["ST-BF", "ST-BP"]


async def test_a_message_rerun_with_savepoints_sees_the_rows_staged_before_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second message names the first one's order for another patient: an AE found half-way
    (committer._Optimistic re-runs it with savepoints). Running with savepoints it inserts its own
    rows, so the rows staged before it go in first and its lookup finds them (no failed flush)."""
    flushes = _Flushes(monkeypatch)
    ingest = Ingest(db)
    owner, thief = oru("ST-OWNER", "MRN-ST-OWNER", "OWNED"), oru("ST-THIEF", "MRN-ST-THIEF", "OWNED")
    assert await _group(ingest, owner, thief, oru("ST-AFTER", "MRN-ST-AFTER", "AFTER")) == ["AA", "AE", "AA"]
    assert flushes.failed == 0
    async with db.read() as conn:
        rows = sorted(
            (r.orderId, r.patient) for r in await conn.execute(select(_results.c.orderId, _results.c.patient))
        )
    assert [o for o, _ in rows] == ["F-AFTER", "F-AFTER", "F-OWNED", "F-OWNED"]
    assert len({p for o, p in rows if o == "F-OWNED"}) == 1
    assert [(d["controlId"], d["outcome"]) for d in await dead_letters(db)] == [("ST-THIEF", "AE")]


async def test_a_read_ahead_that_fails_reruns_the_group_without_it(db: Database) -> None:
    """``hl7v2.prefetch``: the group's lookups read ahead (PostgreSQL's default; set here on either
    backend) failing mid-transaction re-runs the group with every message looking up its own."""
    ingest = Ingest(db)
    calls: list[int] = []

    async def failing(conn: Any, reads: Any, works: list[Any]) -> None:
        calls.append(len(works))
        await ingest.read_ahead(conn, reads, works)  # the real reads, then a failure after them
        raise RuntimeError("the read ahead failed")

    ingest.committer.read_ahead = failing
    assert await _group(ingest, *(oru(f"ST-RA-{i}", "MRN-ST-RA", f"RA{i}") for i in range(3))) == ["AA"] * 3
    assert calls == [3] and ingest.committer.reruns == 1
    assert (await counts(db))["LabResult"] == 6
