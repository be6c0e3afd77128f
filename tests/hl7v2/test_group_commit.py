"""Group commit: concurrent and pipelined messages share write transactions, each ACK after its commit,
order kept per connection, and a message that fails inside a group does not take the others down."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.hl7v2 import Delivery, Ingest
from gateway.hl7v2 import ingest as ingest_module
from gateway.hl7v2.framing import END, START
from gateway.hl7v2.mllp import MllpServer
from gateway.store.database import Database
from gateway.store.models import LabResult, Version, table_of
from tests.hl7v2.support import FIXTURES, RawMllp, counts, dead_letters, msa, result_ids, wire

_results = table_of(LabResult)
_versions = table_of(Version)


def oru(control_id: str, mrn: str, order: str) -> bytes:
    return (
        f"MSH|^~\\&|LABCORE|EASTSIDE LAB|PORTAL|PORTAL GW|20260118080000-0600||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r"
        f"PID|1||{mrn}^^^EASTSIDE^MR||Group^Gale||19700101|F\r"
        f"ORC|RE|P-{order}|F-{order}||CM\r"
        f"OBR|1|P-{order}|F-{order}|2345-7^Glucose^LN|||20260118070000-0600\r"
        "OBX|1|NM|2345-7^Glucose^LN||101|mg/dL^^UCUM|70-99|H|||F|||20260118073000-0600\r"
        "OBX|2|NM|2951-2^Sodium^LN||139|mmol/L^^UCUM|136-145|N|||F|||20260118073000-0600\r"
    ).encode()


async def _lab_results(db: Database) -> int:
    return (await counts(db))["LabResult"]


async def test_concurrent_connections_share_transactions(listener: MllpServer, db: Database) -> None:
    committer = listener.ingest.committer
    clients = [await RawMllp.open(listener.port) for _ in range(8)]

    async def stream(i: int, client: RawMllp) -> list[str]:
        codes = []
        for n in range(6):
            ack = await client.send(oru(f"GC-{i}-{n}", f"MRN-{i}", f"{i}-{n}"))
            assert msa(ack)[2] == f"GC-{i}-{n}"
            codes.append(msa(ack)[1])
        return codes

    results = await asyncio.gather(*(stream(i, c) for i, c in enumerate(clients)))
    for c in clients:
        await c.close()
    assert all(code == "AA" for codes in results for code in codes)
    assert await _lab_results(db) == 8 * 6 * 2
    assert committer.jobs == 48
    assert committer.groups < committer.jobs, "some messages shared a transaction"


async def test_pipelined_messages_on_one_connection_apply_in_order(listener: MllpServer, db: Database) -> None:
    """P then F then C of one result, written back to back before any ACK is read: one row, three versions."""
    names = ("correction-1-preliminary", "correction-2-final", "correction-3-corrected")
    messages = [wire(FIXTURES / f"{n}.hl7") for n in names]
    client = await RawMllp.open(listener.port)
    await client.send_raw(b"".join(START + m + END for m in messages))
    acks = [await client.ack() for _ in messages]
    await client.close()
    assert [msa(a)[1:3] for a in acks] == [["AA", "ES-GLU-0001"], ["AA", "ES-GLU-0002"], ["AA", "ES-GLU-0003"]]
    [oid] = result_ids(messages[0])
    async with db.read() as conn:
        history = (
            await conn.execute(
                select(_versions.c.data).where(_versions.c.objectId == oid).order_by(_versions.c.version)
            )
        ).all()
    assert [h.data["status"] for h in history] == ["preliminary", "final", "corrected"]


async def test_duplicates_inside_one_group(db: Database) -> None:
    """The same message twice in one transaction: the second is a duplicate of the first (same ACK)."""
    ingest = Ingest(db)
    message = oru("GC-DUP-1", "MRN-D", "D1")
    first, second = await asyncio.gather(
        ingest.submit(message, Delivery("mllp")), ingest.submit(message, Delivery("mllp"))
    )
    assert ingest.committer.groups == 1 and ingest.committer.jobs == 2
    assert first[0].ack == second[0].ack and second[0].duplicate
    assert (await counts(db))["_Hl7Message"] == 1


async def test_a_failing_message_does_not_take_the_group_down(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ingest_module.apply_results
    raised: list[str] = []

    async def flaky(conn: Any, results: Any, providers: Any, link: Any, principal: Any, **kw: Any) -> None:
        order = results[0].order_id
        if "BOOM" in order:
            raised.append("boom")
            raise RuntimeError("simulated defect in one message")
        if "RACE" in order and "race" not in raised:
            raised.append("race")  # a concurrent writer took a key once: retried inside the group
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
        await real(conn, results, providers, link, principal, **kw)

    monkeypatch.setattr(ingest_module, "apply_results", flaky)
    ingest = Ingest(db)
    d = Delivery("mllp")
    replies = await asyncio.gather(
        ingest.submit(oru("GC-OK-1", "MRN-A", "A1"), d),
        ingest.submit(oru("GC-BOOM", "MRN-B", "BOOM"), d),
        ingest.submit(oru("GC-RACE", "MRN-C", "RACE"), d),
        ingest.submit(oru("GC-OK-2", "MRN-A", "A2"), d),
    )
    codes = [msa(r[0].ack)[1] for r in replies]
    assert codes == ["AA", "AE", "AA", "AA"]
    assert b"207" in replies[1][0].ack, "internal error, nothing applied"
    # A job runs first without savepoints (committer._Optimistic); failing inside one re-runs the
    # group with that job's savepoints taken, so BOOM is seen twice before it is given up, and
    # the one-shot RACE conflict is over by the re-run.
    assert raised == ["boom", "boom", "race"]
    # the three good ones committed together after the re-run; the failed one is a dead letter of its own
    assert (ingest.committer.groups, ingest.committer.jobs) == (2, 4)
    assert [(d["controlId"], d["outcome"]) for d in await dead_letters(db)] == [("GC-BOOM", "AE")]
    assert await _lab_results(db) == 6
    async with db.read() as conn:
        orders = {r.orderId for r in await conn.execute(select(_results.c.orderId))}
    assert orders == {"F-A1", "F-RACE", "F-A2"}


async def test_ack_is_written_after_the_commit(listener: MllpServer, db: Database, database_url: str) -> None:
    """When the sender holds an AA, a fresh connection of another pool already sees the rows."""
    client = await RawMllp.open(listener.port)
    other = Database(database_url)
    try:
        for n in range(5):
            message = oru(f"GC-SEEN-{n}", "MRN-S", f"S{n}")
            assert msa(await client.send(message))[1] == "AA"
            async with other.read() as conn:
                ids = result_ids(message)
                found = (await conn.execute(select(_results.c.objectId).where(_results.c.objectId.in_(ids)))).all()
            assert len(found) == 2
    finally:
        await client.close()
        await other.dispose()


async def test_a_job_that_really_suspends_runs_on_the_async_path(db: Database) -> None:
    """The sync shortcut only drives jobs whose awaits never suspend; another job still runs, correctly."""
    from sqlalchemy import text

    from gateway.hl7v2.committer import GroupCommitter

    committer = GroupCommitter(db)

    async def plain(conn: Any) -> int:
        return int((await conn.execute(text("SELECT 1"))).scalar_one())

    async def suspending(conn: Any) -> int:
        await asyncio.sleep(0)  # a real suspension: the sync path cannot drive it
        return int((await conn.execute(text("SELECT 2"))).scalar_one())

    assert await asyncio.gather(committer.run(plain), committer.run(suspending)) == [1, 2]
    assert committer.groups == 1 and committer.jobs == 2
    committer.dispose()


async def test_a_cancelled_wait_for_the_write_lock_does_not_keep_it(db: Database, database_url: str) -> None:
    """Shutdown while the group waits for another writer's lock (SQLite): once that writer lets go,
    the connection the worker thread then got is rolled back and returned, so neither the lock nor
    the one-connection writer pool is kept by a transaction nobody will finish."""
    import sqlite3

    from sqlalchemy import text

    from gateway.hl7v2.committer import GroupCommitter

    if db.dialect != "sqlite":
        pytest.skip("the SQLite group commit's worker-thread BEGIN")
    path = database_url.split("///", 1)[1]
    committer = GroupCommitter(db)

    async def plain(conn: Any) -> int:
        return int((await conn.execute(text("SELECT 1"))).scalar_one())

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    waiting = committer.submit(plain)
    await asyncio.sleep(0.3)  # the flusher is now in BEGIN IMMEDIATE, in its worker thread
    assert committer._flusher is not None and not waiting.done()
    committer._flusher.cancel()
    with pytest.raises(RuntimeError, match="cancelled"):
        await waiting
    holder.execute("ROLLBACK")

    probe = sqlite3.connect(path, isolation_level=None, timeout=0.05)
    for _ in range(100):  # the abandoned BEGIN completes, then its done-callback rolls it back
        await asyncio.sleep(0.05)
        try:
            probe.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            continue
        probe.execute("ROLLBACK")
        break
    else:
        pytest.fail("the write lock stayed taken after the cancelled group")
    probe.close()
    holder.close()
    assert await asyncio.wait_for(committer.run(plain), 10) == 1  # the pool's one connection came back
    committer.dispose()


async def test_an_unappliable_message_inside_a_group_leaves_only_its_dead_letter(db: Database) -> None:
    """AE found half-way through a message's effects (its new patient already written, then an OBX key
    owned by another patient): those effects roll back to the message's savepoint, its dead letter is
    kept, and the messages before and after it in the same transaction are applied."""
    from gateway.store.classes import CLASSES

    patients = CLASSES["PatientProfile"].table
    ingest = Ingest(db)
    d = Delivery("mllp")
    assert msa((await ingest.handle(oru("GC-OWNER", "MRN-OWNER", "SHARED"), d)).ack)[1] == "AA"
    groups = ingest.committer.groups
    replies = await asyncio.gather(
        ingest.submit(oru("GC-BEFORE", "MRN-OWNER", "B1"), d),
        ingest.submit(oru("GC-THIEF", "MRN-THIEF", "SHARED"), d),  # same order and codes, another patient
        ingest.submit(oru("GC-AFTER", "MRN-OTHER", "B2"), d),
    )
    assert [msa(r[0].ack)[1] for r in replies] == ["AA", "AE", "AA"]
    assert ingest.committer.groups == groups + 1, "one transaction for the three"
    async with db.read() as conn:
        mrns = {r.medicalRecordNumber for r in await conn.execute(select(patients.c.medicalRecordNumber))}
        orders = {r.orderId for r in await conn.execute(select(_results.c.orderId))}
    assert "MRN-THIEF" not in mrns and {"MRN-OWNER", "MRN-OTHER"} <= mrns
    assert orders == {"F-SHARED", "F-B1", "F-B2"}
    assert await _lab_results(db) == 6
    assert [(x["controlId"], x["outcome"]) for x in await dead_letters(db)] == [("GC-THIEF", "AE")]


async def test_a_group_chains_its_audit_entries_once_in_message_order(db: Database, database_url: str) -> None:
    """The entries of a group's messages are appended together at its end (one head lock, one
    INSERT, one head move: one stamp), in submission order; an AE message in the group adds none."""
    from gateway.audit.verify import verify_chain
    from gateway.store.models import AuditLog

    audit = table_of(AuditLog)
    ingest = Ingest(db)
    d = Delivery("mllp")
    assert msa((await ingest.handle(oru("GC-AU-OWNER", "MRN-AU-OWNER", "AU-SHARED"), d)).ack)[1] == "AA"
    async with db.read() as conn:
        before = (await conn.execute(select(audit.c.seq).order_by(audit.c.seq.desc()).limit(1))).scalar_one()
    groups = ingest.committer.groups
    controls = ["GC-AU-1", "GC-AU-THIEF", "GC-AU-2", "GC-AU-3"]
    replies = await asyncio.gather(
        ingest.submit(oru(controls[0], "MRN-AU-1", "AU1"), d),
        ingest.submit(oru(controls[1], "MRN-AU-THIEF", "AU-SHARED"), d),  # another patient's order: AE
        ingest.submit(oru(controls[2], "MRN-AU-2", "AU2"), d),
        ingest.submit(oru(controls[3], "MRN-AU-1", "AU3"), d),
    )
    assert [msa(r[0].ack)[1] for r in replies] == ["AA", "AE", "AA", "AA"]
    assert ingest.committer.groups == groups + 1
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(audit.c.seq, audit.c.createdAt, audit.c.entityType, audit.c.metadata)
                .where(audit.c.seq > before)
                .order_by(audit.c.seq)
            )
        ).all()
    assert len(rows) == 3 * 3, "two publishes and one Hl7Message entry for each applied message"
    assert len({r.createdAt for r in rows}) == 1, "one append for the whole group"
    assert [r.metadata["controlId"] for r in rows if r.entityType == "Hl7Message"] == [
        controls[0],
        controls[2],
        controls[3],
    ]
    messages = [r.metadata["message"] for r in rows if r.entityType == "LabResult"]
    assert len(messages) == 6 and all(m for m in messages)
    assert [r.seq for r in rows] == list(range(before + 1, before + 10))
    assert (await verify_chain(database_url)).ok


async def test_a_writer_that_waits_inline_keeps_its_connection_and_lets_a_failed_one_go(db: Database) -> None:
    """The writer process's committer (``wait_inline``) keeps its SQLite connection between groups
    instead of checking it in and out of the pool; a COMMIT that fails closes it (the pool has one
    connection: a kept broken one would block every later group) and the next group opens another."""
    if db.dialect != "sqlite":
        pytest.skip("the synchronous writer path is SQLite's")
    from gateway.hl7v2.committer import GroupCommitter

    committer = GroupCommitter(db, attempts=3, wait_inline=True)
    ingest = Ingest(db, committer=committer)
    d = Delivery("mllp")
    try:
        assert msa((await ingest.handle(oru("GC-IN-1", "MRN-IN", "IN1"), d)).ack)[1] == "AA"
        held = committer._held
        assert held is not None
        driver = held.connection.driver_connection
        assert msa((await ingest.handle(oru("GC-IN-2", "MRN-IN", "IN2"), d)).ack)[1] == "AA"
        assert committer._held is held and held.connection.driver_connection is driver

        def refused() -> None:
            raise OSError("disk gone")

        held.commit = refused  # type: ignore[method-assign]
        failed = await ingest.handle(oru("GC-IN-3", "MRN-IN", "IN3"), d)
        assert msa(failed.ack)[1] == "AE" and held.closed, "the failed connection is let go"
        assert committer._held is not held  # the dead letter for GC-IN-3 went in on a new one
        again = await asyncio.wait_for(ingest.handle(oru("GC-IN-4", "MRN-IN", "IN4"), d), 10)
        assert msa(again.ack)[1] == "AA" and committer._held is not None and committer._held is not held
        async with db.read() as conn:
            orders = {r.orderId for r in await conn.execute(select(_results.c.orderId))}
        assert orders == {"F-IN1", "F-IN2", "F-IN4"}
    finally:
        committer.dispose()
    assert committer._held is None


async def test_savepoints_are_taken_only_by_a_message_that_needs_them(db: Database) -> None:
    """A message's effects run without SAVEPOINTs (two statements each, round trips on PostgreSQL);
    when one fails inside its block, the group is re-run with that message's savepoints taken, so it
    ends as with them (its effects undone, answered AE) while the others commit. The next group,
    the same thief message again included, starts without savepoints."""
    from sqlalchemy import event

    ingest = Ingest(db)
    taken: list[str] = []
    if db.dialect == "sqlite":  # the sync writer sends its savepoints to the driver itself

        @event.listens_for(ingest.committer._sync, "connect")  # type: ignore[arg-type]
        def trace(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.set_trace_callback(lambda sql: taken.append(sql) if sql.startswith("SAVEPOINT") else None)
    else:
        event.listen(db.engine.sync_engine, "savepoint", lambda _conn, name: taken.append(str(name)))
    d = Delivery("mllp")
    first = await asyncio.gather(
        ingest.submit(oru("SP-OWNER", "MRN-SP-OWNER", "SP-SHARED"), d),  # a new patient: a nested insert
        ingest.submit(oru("SP-0", "MRN-SP-OWNER", "SP0"), d),
    )
    assert [msa(r[0].ack)[1] for r in first] == ["AA", "AA"]
    assert taken == [], "no savepoint in a group whose messages all apply"
    replies = await asyncio.gather(
        ingest.submit(oru("SP-1", "MRN-SP-1", "SP1"), d),
        ingest.submit(oru("SP-THIEF", "MRN-SP-THIEF", "SP-SHARED"), d),  # another patient's order: AE
        ingest.submit(oru("SP-2", "MRN-SP-2", "SP2"), d),
    )
    assert [msa(r[0].ack)[1] for r in replies] == ["AA", "AE", "AA"]
    assert taken, "the thief's re-run took its savepoints"
    async with db.read() as conn:
        from gateway.store.classes import CLASSES

        patients = CLASSES["PatientProfile"].table
        mrns = {r.medicalRecordNumber for r in await conn.execute(select(patients.c.medicalRecordNumber))}
    assert "MRN-SP-THIEF" not in mrns and {"MRN-SP-1", "MRN-SP-2"} <= mrns
    taken.clear()
    again = await asyncio.gather(
        ingest.submit(oru("SP-3", "MRN-SP-1", "SP3"), d), ingest.submit(oru("SP-4", "MRN-SP-2", "SP4"), d)
    )
    assert [msa(r[0].ack)[1] for r in again] == ["AA", "AA"] and taken == []
    assert await _lab_results(db) == 6 * 2, "two results for each applied message"


async def test_a_kept_postgresql_connection_that_died_is_replaced_without_failing_a_message(
    db: Database, database_url: str
) -> None:
    """The writer process keeps its PostgreSQL connection between groups (no pool checkout, whose
    ping costs three round trips). When the server ends that connection (a restart, an idle
    timeout, pg_terminate_backend), the next group finds out at its first statement: it is run
    again on a new connection, and its messages are applied as if nothing had happened."""
    if db.dialect != "postgresql":
        pytest.skip("the kept asyncpg connection is PostgreSQL's")
    import asyncpg

    from gateway.hl7v2.committer import GroupCommitter

    committer = GroupCommitter(db, attempts=3, wait_inline=True)
    ingest = Ingest(db, committer=committer)
    d = Delivery("mllp")
    try:
        assert msa((await ingest.handle(oru("GC-PGK-1", "MRN-PGK", "PGK1"), d)).ack)[1] == "AA"
        held = committer._held_async
        assert held is not None
        pid = (await held.get_raw_connection()).driver_connection.get_server_pid()
        admin = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql", 1))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.2)
        replies = await asyncio.gather(
            ingest.submit(oru("GC-PGK-2", "MRN-PGK", "PGK2"), d), ingest.submit(oru("GC-PGK-3", "MRN-PGK", "PGK3"), d)
        )
        assert [msa(r[0].ack)[1] for r in replies] == ["AA", "AA"]
        assert committer._held_async is not None and committer._held_async is not held
        assert await dead_letters(db) == []
        async with db.read() as conn:
            orders = {r.orderId for r in await conn.execute(select(_results.c.orderId))}
        assert orders == {"F-PGK1", "F-PGK2", "F-PGK3"}
    finally:
        await committer.aclose()


async def _deadlock_with_another_writer(
    db: Database, database_url: str, *, attempts: int
) -> tuple[Any, int, list[int]]:
    """A job that locks row 1 then row 2 of a scratch table, against another connection that locks
    row 2 then row 1 while the job's first run holds row 1: a real deadlock, which PostgreSQL breaks
    by aborting the job's transaction (the other side waits longer before it looks for one). With
    ``attempts`` runs allowed, returns (the job's outcome or exception, its runs, the rows' values)."""
    import asyncpg
    from sqlalchemy import text

    from gateway.hl7v2.committer import GroupCommitter

    dsn = database_url.replace("postgresql+asyncpg", "postgresql", 1)
    other = await asyncpg.connect(dsn)
    await other.execute("CREATE TABLE scratch_locks (id int PRIMARY KEY, v int NOT NULL)")
    await other.execute("INSERT INTO scratch_locks VALUES (1, 0), (2, 0)")
    committer = GroupCommitter(db, attempts=attempts, wait_inline=True)
    holds_first = asyncio.Event()
    runs = 0

    async def job(conn: Any) -> str:
        nonlocal runs
        runs += 1
        await conn.execute(text("UPDATE scratch_locks SET v = v + 1 WHERE id = 1"))
        holds_first.set()
        await asyncio.sleep(0.2)  # the other writer takes row 2 meanwhile (first run only: see below)
        await conn.execute(text("UPDATE scratch_locks SET v = v + 1 WHERE id = 2"))
        return "applied"

    async def clash(times: int) -> None:
        for _ in range(times):
            await holds_first.wait()
            holds_first.clear()
            async with other.transaction():
                await other.execute("SET LOCAL deadlock_timeout = '10s'")
                await other.execute("UPDATE scratch_locks SET v = v + 10 WHERE id = 2")
                await other.execute("UPDATE scratch_locks SET v = v + 10 WHERE id = 1")

    try:
        clashing = asyncio.create_task(clash(attempts if attempts == 1 else 1))
        try:
            outcome: Any = await committer.submit(job)
        except Exception as exc:
            outcome = exc
        await clashing
        values = [r["v"] for r in await other.fetch("SELECT v FROM scratch_locks ORDER BY id")]
        return outcome, runs, values
    finally:
        await committer.aclose()
        await other.close()


async def test_a_job_aborted_to_break_a_deadlock_is_run_again(db: Database, database_url: str) -> None:
    """Another writer on the same PostgreSQL (a second gateway process) can deadlock with a message:
    PostgreSQL aborts one transaction (SQLSTATE 40P01). The message is run again, not failed."""
    if db.dialect != "postgresql":
        pytest.skip("deadlock detection is PostgreSQL's")
    outcome, runs, values = await _deadlock_with_another_writer(db, database_url, attempts=3)
    assert outcome == "applied"
    assert runs == 2
    assert values == [11, 11], "both writers' updates are kept, each once"


async def test_a_deadlock_that_outlives_the_attempts_is_records_busy(db: Database, database_url: str) -> None:
    if db.dialect != "postgresql":
        pytest.skip("deadlock detection is PostgreSQL's")
    from gateway.errors import Conflict

    outcome, runs, values = await _deadlock_with_another_writer(db, database_url, attempts=1)
    assert isinstance(outcome, Conflict), outcome
    assert "records busy" in str(outcome)
    assert runs == 1
    assert values == [10, 10], "the aborted job left nothing"


def test_transient_errors_are_known_on_both_postgresql_paths() -> None:
    """The lean asyncpg path wraps the driver's exception itself (``leanwrite.run_asyncpg``), SQLAlchemy
    wraps it in its adapter's: both carry the SQLSTATE that makes a job worth running again."""
    import asyncpg
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
    from sqlalchemy.exc import DBAPIError

    from gateway.hl7v2.committer import _transient

    for driver_error in (asyncpg.exceptions.DeadlockDetectedError(), asyncpg.exceptions.SerializationError()):
        assert _transient(DBAPIError("UPDATE", None, driver_error))
        adapted = AsyncAdapt_asyncpg_dbapi.Error("deadlock detected", driver_error)
        assert _transient(DBAPIError("UPDATE", None, adapted))
    assert not _transient(DBAPIError("UPDATE", None, asyncpg.exceptions.UniqueViolationError()))
    assert not _transient(IntegrityError("INSERT", None, Exception("constraint")))
