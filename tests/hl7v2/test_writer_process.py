"""``serve``'s HL7 writer process (``gateway.hl7v2.writer_process``), against real ``serve`` processes.

What is promised: ``serve`` stores HL7 messages in a child process of its own (a message that
finds nothing in flight in ``serve`` itself, with commit order still send order); that child dies
with ``serve`` (SIGKILL included), so no orphan keeps a connection to the store; if the child
dies on its own, the messages it held are answered AE (never AA), later messages are stored
in-process, and a resend of everything leaves each message stored exactly once.
``GATEWAY_HL7_WRITER=inline`` keeps everything in one process; any other value refuses to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import hl7
from hl7.mllp import open_hl7_connection
from sqlalchemy import func, select

from gateway.audit.verify import verify_chain
from gateway.store.database import Database
from gateway.store.models import AuditLog, table_of
from tests.hl7v2.test_crash import (
    PORTAL_GATEWAY,
    Ledger,
    _check_store,
    _free_port,
    _results,
    _wait_listening,
    oru,
    server,
    server_env,
)

WINDOW = 4
_audit = table_of(AuditLog)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie is dead; reaping it is its new parent's business


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _gone(pid)


def _start(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(PORTAL_GATEWAY), "serve"], env=env, cwd=cwd, stdout=subprocess.DEVNULL)


def _refused(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PORTAL_GATEWAY), "serve"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@contextlib.asynccontextmanager
async def _serving(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[int, subprocess.Popen[bytes], int]]:
    """A live ``serve`` on a free MLLP port, once it listens: (port, the process, its writer's pid)."""
    port = _free_port()
    with server(database_url, tmp_path, port) as proc:
        await _wait_listening(port, proc)
        [writer] = _children(proc.pid)
        yield port, proc, writer


async def _send_all(port: int, controls: list[str], codes: dict[str, str], on_ack: object = None) -> None:
    """Send ``controls`` on one connection, up to WINDOW in flight; records each MSA-1."""
    reader, writer = await open_hl7_connection("127.0.0.1", port, encoding="utf-8")
    queue, waiting = list(controls), []
    try:
        while queue or waiting:
            while queue and len(waiting) < WINDOW:
                control = queue.pop(0)
                writer.writemessage(oru(control).decode())
                waiting.append(control)
            await writer.drain()
            ack: hl7.Message = await reader.readmessage()
            msa = ack.segment("MSA")
            assert str(msa[2]) == waiting[0], "ACKs come back in the order sent"
            codes[waiting.pop(0)] = str(msa[1])
            if callable(on_ack):
                on_ack()
    finally:
        writer.close()


async def test_serve_writes_in_a_child_that_dies_with_it(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    try:
        async with _serving(database_url, tmp_path) as (port, proc, writer):
            before = _cpu_seconds(writer)
            codes: dict[str, str] = {}
            controls = [f"WP-{n}" for n in range(150)]
            await asyncio.gather(*(_send_all(port, controls[i::3], codes) for i in range(3)))
            assert set(codes.values()) == {"AA"} and len(codes) == 150
            # about half a millisecond of the writer's CPU a message here; the clock ticks every 10 ms
            assert _cpu_seconds(writer) - before >= 0.03, "the writer process did the storing"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            assert _wait_gone(writer, 10), "the writer died with serve"
        ledger = Ledger(sent=controls, acked=dict.fromkeys(controls, ""))
        await _check_store(db, ledger)
    finally:
        await db.dispose()


async def test_a_lost_writer_costs_no_aa_and_storing_goes_on(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    try:
        controls = [f"WL-{n}" for n in range(120)]
        codes: dict[str, str] = {}
        async with _serving(database_url, tmp_path) as (port, proc, writer):

            def kill_writer_once() -> None:
                if len(codes) == 15 and not _gone(writer):
                    os.kill(writer, signal.SIGKILL)

            await asyncio.gather(*(_send_all(port, controls[i::3], codes, kill_writer_once) for i in range(3)))
            assert _gone(writer)
            assert proc.poll() is None, "serve outlives its writer"
            assert _children(proc.pid) == [], "no second writer: storing went on in-process"
            assert set(codes.values()) <= {"AA", "AE"}
            late = [c for c in controls[-30:] if codes[c] == "AA"]
            assert len(late) == 30, "messages after the loss are stored in-process"
            # Resend everything: whatever was committed answers as before, the rest is applied now.
            again: dict[str, str] = {}
            await asyncio.gather(*(_send_all(port, controls[i::3], again) for i in range(3)))
            assert set(again.values()) == {"AA"}
        ledger = Ledger(sent=controls, acked=dict.fromkeys(controls, ""))
        await _check_store(db, ledger)
        async with db.read() as conn:
            stored = (await conn.execute(select(func.count()).select_from(_results))).scalar_one()
        assert stored == 2 * len(controls), "each message's results exactly once"
        chain = await verify_chain(database_url)
        assert chain.ok, chain
    finally:
        await db.dispose()


async def test_a_lone_sender_is_stored_in_process(database_url: str, tmp_path: Path) -> None:
    """One sender waiting for each ACK leaves nothing in flight when its next message comes: that
    message is stored in the serve process (the hand-over to the writer would only add latency)."""
    db = Database(database_url)
    try:
        controls = [f"LS-{n}" for n in range(80)]
        codes: dict[str, str] = {}
        async with _serving(database_url, tmp_path) as (port, proc, writer):
            before = _cpu_seconds(writer)
            reader, stream = await open_hl7_connection("127.0.0.1", port, encoding="utf-8")
            try:
                for control in controls:
                    stream.writemessage(oru(control).decode())
                    await stream.drain()
                    msa = (await reader.readmessage()).segment("MSA")
                    assert str(msa[2]) == control
                    codes[control] = str(msa[1])
            finally:
                stream.close()
            # stored by the writer, 80 messages cost it tens of milliseconds (see the test above)
            assert _cpu_seconds(writer) - before <= 0.02, "the lone sender's messages were stored in-process"
            assert _children(proc.pid) == [writer], "the writer is still there for concurrent senders"
        assert set(codes.values()) == {"AA"}
        await _check_store(db, Ledger(sent=controls, acked=dict.fromkeys(controls, "")))
    finally:
        await db.dispose()


async def test_commit_order_is_send_order_across_both_paths(database_url: str, tmp_path: Path) -> None:
    """Messages are stored in the serve process when nothing is in flight and in the writer process
    otherwise; pipelined senders must still see each connection's messages committed in the order
    sent. The audit chain records the order of commits: each applied message's Hl7Message entry."""
    port = _free_port()
    db = Database(database_url)
    try:
        senders = [[f"CO{c}-{n}" for n in range(40)] for c in range(3)]
        codes: dict[str, str] = {}
        with server(database_url, tmp_path, port) as proc:
            await _wait_listening(port, proc)
            for burst in range(2):  # a quiet spell between bursts: both paths are taken
                part = slice(20 * burst, 20 * burst + 20)
                await asyncio.gather(*(_send_all(port, controls[part], codes) for controls in senders))
                await asyncio.sleep(0.2)
        assert set(codes.values()) == {"AA"} and len(codes) == 120
        async with db.read() as conn:
            rows = await conn.execute(
                select(_audit.c.metadata).where(_audit.c.entityType == "Hl7Message").order_by(_audit.c.seq)
            )
            committed = [row.metadata["controlId"] for row in rows]
        for controls in senders:
            assert [c for c in committed if c in set(controls)] == controls
    finally:
        await db.dispose()


async def test_inline_keeps_one_process_and_a_bad_value_refuses_to_start(database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = server_env(database_url, tmp_path, port) | {"GATEWAY_HL7_WRITER": "inline"}
    proc = _start(env, tmp_path)
    try:
        await _wait_listening(port, proc)
        assert _children(proc.pid) == []
        codes: dict[str, str] = {}
        await _send_all(port, ["IN-1", "IN-2"], codes)
        assert codes == {"IN-1": "AA", "IN-2": "AA"}
    finally:
        proc.kill()
        proc.wait(10)
    env["GATEWAY_HL7_WRITER"] = "threads"
    refused = _refused(env, tmp_path)
    assert refused.returncode != 0
    assert "GATEWAY_HL7_WRITER must be one of process, inline" in refused.stderr
