"""The chain under load and under a crash (catalog G05).

* Many writers in several "workers" (separate pools, as separate processes would have)
  append audited writes and group-committed read entries at once: one line, no gaps,
  no two entries with the same ``prevHash``, and ``audit verify`` passes.
* A real ``portal-gateway serve`` process is killed with SIGKILL while clients create
  records and read them: afterwards every acknowledged create and every acknowledged
  read has its entry, no stored record lacks its entry, and the chain verifies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from gateway.audit.verify import verify_chain
from gateway.audit.writer import AuditAction, AuditEntry, append
from gateway.auth.passwords import Passwords
from gateway.policy.principal import RequestInfo, master, system
from gateway.records.service import Records
from gateway.store.database import Database
from gateway.store.engine import create_engine
from gateway.store.models import AuditLog, LabResult, table_of
from tests.api_support import APP_ID, MASTER_KEY, make_settings

EXE = str(Path(sys.executable).parent / "portal-gateway")
_log = table_of(AuditLog)
_labs = table_of(LabResult)


async def _chain_rows(url: str) -> list[Any]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = list((await conn.execute(select(_log.c.seq, _log.c.prevHash, _log.c.hash).order_by(_log.c.seq))).all())
    await engine.dispose()
    return rows


async def test_many_concurrent_writers_keep_one_chain(demo_database: Any) -> None:
    url, users = demo_database
    lab_reader = master(RequestInfo(request_id="concurrency"))
    before = len(await _chain_rows(url))
    workers = [Database(url) for _ in range(3)]
    records = [Records(db, make_settings(url), Passwords(1, 1024)) for db in workers]
    patient = users["patient:DEMO-0001"]

    async def write(db: Database, n: int) -> None:
        async with db.write() as conn:
            await append(conn, AuditEntry(AuditAction.EXECUTE, system(f"writer-{n}"), summary=f"write {n}"))

    async def read(rec: Records) -> None:
        await rec.get(lab_reader, "PatientProfile", patient)

    try:
        tasks = []
        for i in range(40):
            db, rec = workers[i % 3], records[i % 3]
            tasks += [write(db, i), read(rec), read(rec)]
        await asyncio.gather(*tasks)
    finally:
        for db in workers:
            await db.dispose()
    rows = await _chain_rows(url)
    assert len(rows) == before + 120
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert len({r.prevHash for r in rows}) == len(rows)
    assert all(rows[i].prevHash == rows[i - 1].hash for i in range(1, len(rows)))
    result = await verify_chain(url)
    assert result.ok and result.checked == len(rows)


async def test_an_over_long_request_id_does_not_break_the_audit(demo_database: Any) -> None:
    """X-Request-Id is client input: it is cut to the column, never a failed (and so refused) read."""
    url, users = demo_database
    db = Database(url)
    try:
        rec = Records(db, make_settings(url), Passwords(1, 1024))
        await rec.get(master(RequestInfo(request_id="r" * 500)), "PatientProfile", users["patient:DEMO-0001"])
    finally:
        await db.dispose()
    assert (await verify_chain(url)).ok


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_sigkill_during_a_stream_of_writes_and_reads(demo_database: Any, tmp_path: Path) -> None:
    url, users = demo_database
    port = _free_port()
    env = dict(
        os.environ,
        GATEWAY_DATABASE_URL=url,
        GATEWAY_MASTER_KEY=MASTER_KEY,
        GATEWAY_APP_ID=APP_ID,
        GATEWAY_HTTP_PORT=str(port),
        GATEWAY_MLLP_PORT="0",
        GATEWAY_LOG_LEVEL="WARNING",
        GATEWAY_SIGNING_KEY_FILE=str(tmp_path / "key.pem"),
        GATEWAY_AUDIT_CHECKPOINT_DIR=str(tmp_path / "cp"),
        GATEWAY_FILES_DIR=str(tmp_path / "files"),
    )
    log_path = tmp_path / "serve.log"
    log_file = await asyncio.to_thread(open, log_path, "wb")
    proc = await asyncio.create_subprocess_exec(
        EXE, "serve", env=env, cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=log_file
    )
    base = f"http://127.0.0.1:{port}"
    smith = {"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": users["token:dr.smith@example.org"]}
    alice = {"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": users["token:alice@example.org"]}
    body = {
        "patient": {"__type": "Pointer", "className": "PatientProfile", "objectId": users["patient:DEMO-0001"]},
        "testCode": "2345-7",
        "testName": "Glucose",
        "resultValue": "101",
        "status": "final",
    }
    created: list[str] = []
    reads: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await client.get("/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and proc.returncode is None, log_path.read_text()
                await asyncio.sleep(0.2)
            first = await client.post("/parse/classes/LabResult", json=body, headers=smith)
            assert first.status_code == 201, first.text
            known = first.json()["objectId"]
            created.append(known)
            stop = asyncio.Event()

            async def writer() -> None:
                while not stop.is_set():
                    try:
                        r = await client.post("/parse/classes/LabResult", json=body, headers=smith)
                    except httpx.TransportError:
                        return
                    if r.status_code == 201:
                        created.append(r.json()["objectId"])

            async def reader() -> None:
                while not stop.is_set():
                    rid = uuid.uuid4().hex
                    try:
                        r = await client.get(
                            f"/parse/classes/LabResult/{known}", headers={**alice, "X-Request-Id": rid}
                        )
                    except httpx.TransportError:
                        return
                    if r.status_code == 200:
                        reads.append(rid)

            tasks = [asyncio.create_task(writer()) for _ in range(6)] + [
                asyncio.create_task(reader()) for _ in range(6)
            ]
            await asyncio.sleep(2.0)
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
            stop.set()
            await asyncio.gather(*tasks)
    finally:
        if proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 10)
        log_file.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(created) > 5 and len(reads) > 5, (len(created), len(reads))

    engine = create_engine(url)
    async with engine.connect() as conn:
        stored = {r.objectId for r in await conn.execute(select(_labs.c.objectId).where(_labs.c.testName == "Glucose"))}
        audited_creates = {
            r.entityId
            for r in await conn.execute(
                select(_log.c.entityId).where(_log.c.action == "create", _log.c.entityType == "LabResult")
            )
        }
        read_ids = {
            r.requestId
            for r in await conn.execute(
                select(_log.c.requestId).where(_log.c.action == "read", _log.c.entityId == known)
            )
        }
        total = int((await conn.execute(select(func.count()).select_from(_log))).scalar_one())
    await engine.dispose()
    assert set(created) <= stored, "an acknowledged create was lost"
    assert stored <= audited_creates, "a stored record lacks its audit entry"
    assert set(reads) <= read_ids, "an acknowledged read lacks its audit entry"
    result = await verify_chain(url)
    assert result.ok and result.checked == total
