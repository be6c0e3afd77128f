"""Catalog D01: ACK after commit under SIGKILL, against a real ``portal-gateway serve`` process.

A sender (python-hl7's MLLP client, several connections, messages pipelined so that
groups are in flight) keeps a ledger; the server is killed with SIGKILL at a different
point each round and restarted on the same database. After every restart: each message
the sender holds an AA for is stored with its results and audit entries, nothing is
half-applied (no result without its AA log row, no AA log row without its results and
audit entry). At the end the sender resends everything it never got an ACK for, plus some
it did: every message is then stored exactly once and the audit chain verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import hl7
from hl7.mllp import open_hl7_connection
from sqlalchemy import func, select

from gateway.audit.verify import verify_chain
from gateway.store.database import Database
from gateway.store.models import AuditLog, Hl7Message, LabResult, table_of
from tests.api_support import APP_ID, MASTER_KEY
from tests.hl7v2.support import result_ids

PORTAL_GATEWAY = Path(sys.executable).parent / "portal-gateway"
CONNECTIONS = 4
IN_FLIGHT = 4
_log = table_of(Hl7Message)
_results = table_of(LabResult)
_audit = table_of(AuditLog)


def oru(control_id: str) -> bytes:
    n = int(control_id.rsplit("-", 1)[1])
    return (
        f"MSH|^~\\&|LABCORE|CRASH LAB|PORTAL|PORTAL GW|20260118080000-0600||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r"
        f"PID|1||CR-{n % 7:04d}^^^CRASH^MR||Crash^Casey||19700101|F\r"
        f"ORC|RE|P-{control_id}|F-{control_id}||CM\r"
        f"OBR|1|P-{control_id}|F-{control_id}|2345-7^Glucose^LN|||20260118070000-0600\r"
        "OBX|1|NM|2345-7^Glucose^LN||101|mg/dL^^UCUM|70-99|H|||F|||20260118073000-0600\r"
        "OBX|2|NM|2951-2^Sodium^LN||139|mmol/L^^UCUM|136-145|N|||F|||20260118073000-0600\r"
    ).encode()


@dataclass
class Ledger:
    sent: list[str] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # control id -> the whole ACK text
    kill_at: int = -1
    """Set ``reached`` once this many ACKs are in the ledger."""
    reached: asyncio.Event = field(default_factory=asyncio.Event)

    def ack(self, control: str, text: str) -> None:
        self.acked[control] = text
        if len(self.acked) == self.kill_at:
            self.reached.set()

    def unacked(self) -> list[str]:
        return [c for c in self.sent if c not in self.acked]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, workdir: Path, mllp_port: int) -> dict[str, str]:
    """The environment of a ``portal-gateway serve`` with its MLLP listener on ``mllp_port``."""
    return dict(
        os.environ,
        GATEWAY_DATABASE_URL=database_url,
        GATEWAY_APP_ID=APP_ID,
        GATEWAY_MASTER_KEY=MASTER_KEY,
        GATEWAY_HTTP_PORT=str(_free_port()),
        GATEWAY_MLLP_PORT=str(mllp_port),
        GATEWAY_SIGNING_KEY_FILE=str(workdir / "signing.key"),
        GATEWAY_FILES_DIR=str(workdir / "files"),
        GATEWAY_LOG_LEVEL="WARNING",
    )


@contextlib.contextmanager
def server(database_url: str, workdir: Path, mllp_port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = server_env(database_url, workdir, mllp_port)
    proc = subprocess.Popen(
        [str(PORTAL_GATEWAY), "serve"], env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert proc.poll() is None, "the server exited during start-up"
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise AssertionError("MLLP listener did not come up")


async def stream(
    reader: hl7.mllp.HL7StreamReader,
    writer: hl7.mllp.HL7StreamWriter,
    controls: list[str],
    ledger: Ledger,
    kill: asyncio.Event | None = None,
) -> None:
    """Send ``controls`` with up to IN_FLIGHT unacknowledged, each ACK checked (in order, AA) into
    the ledger; once ``kill`` is set no new message goes out. A broken connection raises."""
    queue = list(controls)
    waiting: list[str] = []
    while queue or waiting:
        while queue and len(waiting) < IN_FLIGHT and not (kill and kill.is_set()):
            control = queue.pop(0)
            ledger.sent.append(control)
            writer.writemessage(oru(control).decode())
            waiting.append(control)
        await writer.drain()
        if not waiting:
            return
        ack: hl7.Message = await reader.readmessage()
        msa = ack.segment("MSA")
        assert str(msa[2]) == waiting[0], "ACKs come back in the order sent"
        assert str(msa[1]) == "AA", str(ack)
        ledger.ack(waiting.pop(0), str(ack))


async def _send(port: int, controls: list[str], ledger: Ledger, kill: asyncio.Event | None) -> None:
    """Stream ``controls`` over one python-hl7 connection."""
    reader, writer = await open_hl7_connection("127.0.0.1", port, encoding="utf-8")
    try:
        await stream(reader, writer, controls, ledger, kill)
    except (ConnectionError, asyncio.IncompleteReadError):
        assert kill is not None and kill.is_set(), "the connection broke without a kill"
    finally:
        writer.close()


async def _round(port: int, proc: subprocess.Popen[bytes], controls: list[str], ledger: Ledger, kill_at: int) -> None:
    """Send until ``kill_at`` more ACKs arrived, then SIGKILL the server mid-stream."""
    kill = asyncio.Event()
    ledger.kill_at, ledger.reached = len(ledger.acked) + kill_at, asyncio.Event()
    shares = [controls[i::CONNECTIONS] for i in range(CONNECTIONS)]
    senders = [asyncio.create_task(_send(port, share, ledger, kill)) for share in shares]
    reached = asyncio.create_task(ledger.reached.wait())
    await asyncio.wait([reached, *senders], return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    kill.set()
    os.kill(proc.pid, signal.SIGKILL)
    await asyncio.gather(*senders)
    proc.wait(10)


async def _check_store(db: Database, ledger: Ledger) -> None:
    """Every AA'd message is stored with results and audit; nothing is half-applied."""
    async with db.read() as conn:
        logged = {
            str(r.controlId): str(r.id)
            for r in await conn.execute(select(_log.c.controlId, _log.c.id).where(_log.c.outcome == "AA"))
        }
        per_control = dict(
            (await conn.execute(select(_log.c.controlId, func.count()).group_by(_log.c.controlId))).all()
        )
        results = {str(r.objectId): str(r.sourceMessageId) for r in await conn.execute(select(_results))}
        audited = {
            str(r.entityId)
            for r in await conn.execute(select(_audit.c.entityId).where(_audit.c.entityType == "Hl7Message"))
        }
        published = {
            str(r.entityId) for r in await conn.execute(select(_audit.c.entityId).where(_audit.c.action == "publish"))
        }
    missing = [c for c in ledger.acked if c not in logged]
    assert not missing, f"acknowledged but not stored: {missing}"
    assert all(n == 1 for n in per_control.values()), "a control id logged twice"
    for control, message_id in logged.items():
        ids = result_ids(oru(control))
        assert all(results.get(i) == message_id for i in ids), f"{control}: results missing or from another message"
        assert message_id in audited, f"{control}: no audit entry"
        assert set(ids) <= published
    assert set(results.values()) <= set(logged.values()), "a result without its AA message-log row"


async def test_sigkill_mid_stream_loses_nothing_acknowledged(database_url: str, tmp_path: Path) -> None:
    rng = random.Random(20260118)
    ledger = Ledger()
    port = _free_port()
    next_id = 0
    db = Database(database_url)
    try:
        for _ in range(3):
            controls = [f"CR-{n}" for n in range(next_id, next_id + 60)]
            next_id += 60
            with server(database_url, tmp_path, port) as proc:
                await _wait_listening(port, proc)
                await _round(port, proc, controls, ledger, kill_at=rng.randint(5, 40))
            assert ledger.unacked(), "the kill happened mid-stream"
            await _check_store(db, ledger)
        resend = ledger.unacked() + rng.sample(sorted(ledger.acked), 10)
        before = dict(ledger.acked)
        with server(database_url, tmp_path, port) as proc:
            await _wait_listening(port, proc)
            again = Ledger()
            await asyncio.gather(*(_send(port, resend[i::CONNECTIONS], again, None) for i in range(CONNECTIONS)))
        for control, ack in again.acked.items():
            if control in before:
                assert ack == before[control], "a resent acknowledged message gets its original ACK"
        ledger.acked.update(again.acked)
        assert not ledger.unacked(), "every resend was acknowledged"
        await _check_store(db, ledger)
        async with db.read() as conn:
            stored = (await conn.execute(select(func.count()).select_from(_results))).scalar_one()
            log_rows = (await conn.execute(select(func.count()).select_from(_log))).scalar_one()
        assert stored == 2 * len(set(ledger.sent)), "each message's results exactly once"
        assert log_rows == len(set(ledger.sent)), "one log row per message, duplicates added none"
        chain = await verify_chain(database_url)
        assert chain.ok, chain
    finally:
        await db.dispose()
