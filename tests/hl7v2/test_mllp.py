"""The HL7 v2 door over a real TCP MLLP connection (catalog D02-D05), on every backend."""

from __future__ import annotations

import asyncio

import hl7
from hl7.mllp import open_hl7_connection
from sqlalchemy import select

from gateway.hl7v2.mllp import MllpServer
from gateway.store.database import Database
from gateway.store.models import LabResult, Version, table_of
from tests.hl7v2.conftest import MAX_BYTES
from tests.hl7v2.support import CORPUS, FIXTURES, RawMllp, counts, dead_letters, msa, result_ids, wire

_results = table_of(LabResult)
_versions = table_of(Version)


async def _rows(db: Database, ids: list[str]) -> dict[str, dict[str, object]]:
    async with db.read() as conn:
        rows = (await conn.execute(select(_results).where(_results.c.objectId.in_(ids)))).mappings()
        return {str(r["objectId"]): dict(r) for r in rows}


async def _history(db: Database, oid: str) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(_versions.c.data).where(_versions.c.objectId == oid).order_by(_versions.c.version)
        )
        return [str(r.data["status"]) for r in rows]


async def test_lab_oru_1_then_2_through_python_hl7_client(listener: MllpServer, db: Database) -> None:
    reader, writer = await open_hl7_connection("127.0.0.1", listener.port, encoding="utf-8")
    try:
        codes = []
        for name in ("LAB-ORU-1", "LAB-ORU-2"):
            writer.writemessage(wire(CORPUS / f"{name}.hl7").decode("utf-8"))
            ack = await reader.readmessage()
            codes.append(str(ack.segment("MSA")[1]))
            assert isinstance(ack, hl7.Message)
    finally:
        writer.close()
        await writer.wait_closed()
    assert codes == ["AA", "AA"]
    ids = result_ids(wire(CORPUS / "LAB-ORU-1.hl7"))
    assert sorted(ids) == sorted(result_ids(wire(CORPUS / "LAB-ORU-2.hl7")))
    rows = await _rows(db, ids)
    assert len(rows) == 10 == len(set(ids)), "one LabResult per (order, OBX-3, OBX-4), no duplicates"
    assert {r["status"] for r in rows.values()} == {"final"}
    assert all(r["publishedAt"] is not None for r in rows.values())
    # Each became final as a second version of the same row; 11125-2 was already F (221) and the
    # second F at the same OBX-14 carries 220: equal rank, not older, so it is a new version too.
    assert [int(r["version"]) for r in rows.values()] == [2] * 10
    hemoglobin = next(oid for oid, r in rows.items() if r["testCode"] == "20509-6")
    assert await _history(db, hemoglobin) == ["registered", "final"]
    assert rows[hemoglobin]["resultValue"] == "13.4"


async def test_duplicate_same_bytes_returns_the_original_ack_and_stores_nothing(
    listener: MllpServer, db: Database
) -> None:
    message = wire(FIXTURES / "cbc-sunquest.hl7")
    client = await RawMllp.open(listener.port)
    first = await client.send(message)
    before = await counts(db)
    again = await client.send(message)
    await client.close()
    other = await RawMllp.open(listener.port)  # and from another connection
    third = await other.send(message.replace(b"\r", b"\n"))  # same content, LF line ends
    await other.close()
    assert msa(first)[1] == "AA"
    assert again == first and third == first, "byte-identical original ACK"
    assert await counts(db) == before


async def test_same_control_id_different_content_is_ae_and_dead_letter(listener: MllpServer, db: Database) -> None:
    message = wire(FIXTURES / "correction-1-preliminary.hl7")
    client = await RawMllp.open(listener.port)
    assert msa(await client.send(message))[1] == "AA"
    before = await counts(db)
    changed = message.replace(b"||142|", b"||143|")
    ack = await client.send(changed)
    await client.close()
    assert msa(ack)[1:3] == ["AE", "ES-GLU-0001"]
    assert "|205^Duplicate key identifier^HL70357|" in ack.decode()
    after = await counts(db)
    assert after["_Hl7Message"] == before["_Hl7Message"] + 1
    assert {k: v for k, v in after.items() if k != "_Hl7Message"} == {
        k: v for k, v in before.items() if k != "_Hl7Message"
    }, "nothing applied"
    dead = await dead_letters(db)
    assert [(d["outcome"], d["controlId"], d["controlKey"]) for d in dead] == [("AE", "ES-GLU-0001", None)]
    assert dead[0]["raw"] == changed


async def test_same_control_id_from_another_facility_is_another_message(listener: MllpServer, db: Database) -> None:
    message = wire(FIXTURES / "correction-1-preliminary.hl7")
    client = await RawMllp.open(listener.port)
    first = await client.send(message)
    second = await client.send(message.replace(b"|EASTSIDE LAB|", b"|WESTSIDE LAB|", 1))
    await client.close()
    assert msa(first)[1] == msa(second)[1] == "AA"
    assert first != second
    assert (await counts(db))["LabResult"] == 2, "results are keyed per sender"


async def test_older_preliminary_after_final_does_not_regress(listener: MllpServer, db: Database) -> None:
    client = await RawMllp.open(listener.port)
    for name in ("correction-2-final", "correction-1-preliminary"):
        assert msa(await client.send(wire(FIXTURES / f"{name}.hl7")))[1] == "AA"
    [oid] = result_ids(wire(FIXTURES / "correction-2-final.hl7"))
    row = (await _rows(db, [oid]))[oid]
    assert (row["status"], row["resultValue"], row["version"]) == ("final", "141", 1)
    # The correction then becomes a new version of the same row; a late final does not undo it.
    for name in ("correction-3-corrected", "correction-2-final"):
        assert msa(await client.send(wire(FIXTURES / f"{name}.hl7")))[1] == "AA"
    await client.close()
    row = (await _rows(db, [oid]))[oid]
    assert (row["status"], row["resultValue"], row["version"]) == ("corrected", "96", 2)
    assert await _history(db, oid) == ["final", "corrected"]
    assert (await counts(db))["LabResult"] == 1


async def test_unappliable_message_is_ae_and_applies_nothing(listener: MllpServer, db: Database) -> None:
    before = await counts(db)
    client = await RawMllp.open(listener.port)
    ack = await client.send(wire(FIXTURES / "malformed-bad-obx2.hl7"))
    await client.close()
    assert msa(ack)[1] == "AE" and "\rERR|" in ack.decode()
    after = await counts(db)
    assert after["LabResult"] == before["LabResult"] == 0 and after["PatientProfile"] == 0
    assert [d["outcome"] for d in await dead_letters(db)] == ["AE"]


async def test_malformed_input_is_ar_and_the_listener_keeps_serving(listener: MllpServer, db: Database) -> None:
    client = await RawMllp.open(listener.port)
    await client.send_raw(b"garbage before any frame\r\n")
    ack = await client.send(b"this is not HL7 at all")
    assert msa(ack)[1] == "AR"
    ack = await client.send(wire(FIXTURES / "malformed-missing-msh.hl7"))
    assert msa(ack)[1] == "AR"
    assert msa(await client.send(b"MSH\rPID|1"))[1] == "AR"  # a bare MSH line made decode raise
    # an unterminated frame followed by a new one: the partial frame is dropped, not merged
    await client.send_raw(b"\x0bMSH|^~\\&|half a message")
    ack = await client.send(wire(FIXTURES / "chem-panel-beaker.hl7"))
    assert msa(ack)[1] == "AA"
    await client.close()
    broken = await RawMllp.open(listener.port)
    await broken.send_raw(b"\x0bMSH|^~\\&|cut")
    await broken.close()  # EOF inside a frame
    fresh = await RawMllp.open(listener.port)
    assert msa(await fresh.send(wire(FIXTURES / "cbc-sunquest.hl7")))[1] == "AA"
    await fresh.close()
    assert [d["outcome"] for d in await dead_letters(db)] == ["AR", "AR", "AR"]


async def test_oversize_frame_is_rejected_cleanly(listener: MllpServer, db: Database) -> None:
    message = wire(FIXTURES / "cbc-sunquest.hl7")
    padded = message.rstrip(b"\r") + b"\rNTE|1||" + b"x" * (MAX_BYTES + 10) + b"\r"
    client = await RawMllp.open(listener.port)
    ack = await client.send(padded)
    assert msa(ack)[1] == "AR" and "104&Value too long&HL70357" in ack.decode()  # v2.3.1: ERR-1 (ELD)
    assert msa(await client.send(message))[1] == "AA", "the same connection keeps working"
    await client.close()
    [dead] = await dead_letters(db)
    assert dead["outcome"] == "AR" and dead["size"] == len(padded)
    assert (await counts(db))["LabResult"] > 0


async def test_message_at_the_limit_is_accepted(listener: MllpServer, db: Database) -> None:
    message = wire(FIXTURES / "cbc-sunquest.hl7").rstrip(b"\r") + b"\rNTE|1||"
    message += b"y" * (MAX_BYTES - len(message))
    assert len(message) == MAX_BYTES
    client = await RawMllp.open(listener.port)
    assert msa(await client.send(message))[1] == "AA"
    await client.close()


async def test_app_runs_the_listener_in_the_same_process(database_url: str) -> None:
    import socket

    from litestar.testing import AsyncTestClient

    from gateway.app import create_app
    from tests.api_support import make_settings

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(make_settings(database_url, mllp_port=port), mllp=True)
    async with AsyncTestClient(app=app, base_url="http://testserver.local"):
        client = await RawMllp.open(port)
        assert msa(await client.send(wire(FIXTURES / "cbc-sunquest.hl7")))[1] == "AA"
        await client.close()
    assert app.state.mllp._server is None, "stopped on shutdown"
    # without mllp=True (every other test app), nothing listens
    assert create_app(make_settings(database_url, mllp_port=port)).state.mllp is None


async def _closed(client: RawMllp) -> bool:
    """The server closed the connection (EOF, or a reset when it closed with our bytes unread)."""
    try:
        return await asyncio.wait_for(client.reader.read(), 10) == b""
    except ConnectionResetError:
        return True


async def test_source_restriction_and_connection_cap(db: Database) -> None:
    from gateway.hl7v2 import Ingest

    closed = MllpServer(Ingest(db), "127.0.0.1", 0, allowed_sources=("10.0.0.0/8",))
    capped = MllpServer(Ingest(db), "127.0.0.1", 0, max_connections=1)
    await closed.start()
    await capped.start()
    try:
        refused = await RawMllp.open(closed.port)
        await refused.send_raw(b"\x0b" + wire(FIXTURES / "cbc-sunquest.hl7") + b"\x1c\r")
        assert await _closed(refused), "closed without an ACK"
        await refused.close()
        first = await RawMllp.open(capped.port)
        assert msa(await first.send(wire(FIXTURES / "cbc-sunquest.hl7")))[1] == "AA"
        second = await RawMllp.open(capped.port)
        assert await _closed(second), "over the cap: closed at once"
        await second.close()
        assert msa(await first.send(wire(FIXTURES / "chem-panel-beaker.hl7")))[1] == "AA"
        await first.close()
    finally:
        await closed.stop()
        await capped.stop()


async def test_d04_idle_connection_is_closed(db: Database) -> None:
    from gateway.hl7v2 import Ingest

    server = MllpServer(Ingest(db), "127.0.0.1", 0, idle_seconds=0.3)
    await server.start()
    try:
        idle = await RawMllp.open(server.port)
        assert await _closed(idle), "closed after the idle timeout"
        await idle.close()
        fresh = await RawMllp.open(server.port)
        assert msa(await fresh.send(wire(FIXTURES / "cbc-sunquest.hl7")))[1] == "AA"
        await fresh.close()
    finally:
        await server.stop()


async def test_d05_trickling_sender_is_closed_and_others_are_unaffected(db: Database) -> None:
    """A sender dribbling a message never looks idle; the per-message deadline closes it."""
    from gateway.hl7v2 import Ingest

    server = MllpServer(Ingest(db), "127.0.0.1", 0, idle_seconds=30, frame_seconds=0.8)
    await server.start()
    try:
        slow = await RawMllp.open(server.port)
        other = await RawMllp.open(server.port)
        message = b"\x0b" + wire(FIXTURES / "cbc-sunquest.hl7")
        loop = asyncio.get_running_loop()
        started = loop.time()
        closed = False
        for i in range(40):  # 40 bytes at 0.1 s: never idle, never complete
            try:
                await slow.send_raw(message[i : i + 1])
            except ConnectionError:
                closed = True
                break
            if i == 3:
                t0 = loop.time()
                assert msa(await other.send(wire(FIXTURES / "chem-panel-beaker.hl7")))[1] == "AA"
                assert loop.time() - t0 < 5, "another connection is served meanwhile"
            if slow.reader.at_eof():
                closed = True
                break
            await asyncio.sleep(0.1)
        closed = closed or await _closed(slow)
        assert closed and loop.time() - started < 4, "closed soon after the per-message deadline"
        await slow.close()
        await other.close()
        assert [d["outcome"] for d in await dead_letters(db)] == [], "a partial frame is never acknowledged or applied"
    finally:
        await server.stop()
