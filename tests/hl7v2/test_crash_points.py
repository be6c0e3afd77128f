"""Catalog D01 at every crash point: many restarts, each dying at a chosen step of ingest.

``test_crash`` kills the server from outside, where it happens to be. Here the server
dies *at* a step (``gateway.faults``): after parsing a message, inside the write
transaction, after COMMIT but before the ACK, or with half an ACK frame on the wire;
the point and the arrival it fires on are drawn at random each round. Each round the
sender resends everything it holds no ACK for, plus new messages, over two pipelined
connections. After each round, every message acknowledged in it is stored exactly once;
at the end (after a last round with no crash point) nothing is lost, duplicated or
half-applied and the audit chain verifies.

Rounds: ``GATEWAY_D01_ROUNDS`` (default 120 per backend, which keeps the suite fast and
still hits every point many times; the catalog's 1,000 is the same test with
``GATEWAY_D01_ROUNDS=1000``; the issue notes record such a run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from hl7.mllp import open_hl7_connection
from sqlalchemy import func, select

from gateway.audit.verify import verify_chain
from gateway.faults import CRASH_STATUS, FaultPoint
from gateway.store.database import Database
from gateway.store.models import Hl7Message, LabResult, table_of
from tests.hl7v2.support import result_ids
from tests.hl7v2.test_crash import Ledger, _check_store, _free_port, oru, server_env, stream

ROUNDS = int(os.environ.get("GATEWAY_D01_ROUNDS", "120"))
FRESH = 6
CONNECTIONS = 2
REPO = Path(__file__).resolve().parents[2]
_log = table_of(Hl7Message)
_results = table_of(LabResult)


class ForkServer:
    """Client of ``tests/hl7v2/forkserver.py``: cheap restarts of a real ``serve``."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def _ask(self, request: dict[str, object]) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, int] = json.loads(self.proc.stdout.readline())
        return answer

    def spawn(self, env: dict[str, str]) -> int:
        return self._ask({"spawn": env})["pid"]

    def wait(self, pid: int) -> int:
        return self._ask({"wait": pid})["status"]


@contextlib.contextmanager
def fork_server() -> Iterator[ForkServer]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.hl7v2.forkserver"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield ForkServer(proc)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)


async def _listening(port: int, pid: int) -> None:
    for _ in range(1500):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"server {pid} did not listen within 15 s")


async def _send(port: int, controls: list[str], ledger: Ledger, may_crash: bool) -> None:
    """Stream ``controls`` on one connection, IN_FLIGHT at most unacknowledged; a crash ends it."""
    try:
        reader, writer = await open_hl7_connection("127.0.0.1", port, encoding="utf-8")
    except ConnectionError:
        assert may_crash, "the server refused a connection without a crash point"
        return
    try:
        await stream(reader, writer, controls, ledger)
    except (ConnectionError, asyncio.IncompleteReadError):
        assert may_crash, "the connection broke without a crash point"
    finally:
        writer.close()


async def _stored_once(db: Database, controls: list[str]) -> None:
    """The messages acknowledged in a round: one AA log row each, with all their results."""
    if not controls:
        return
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(_log.c.controlId, _log.c.id, _log.c.outcome).where(_log.c.controlId.in_(controls))
            )
        ).all()
        ids = [i for c in controls for i in result_ids(oru(c))]
        results = dict(
            (
                await conn.execute(
                    select(_results.c.objectId, _results.c.sourceMessageId).where(_results.c.objectId.in_(ids))
                )
            ).all()
        )
    per_control = Counter(str(r.controlId) for r in rows)
    assert all(per_control[c] == 1 for c in controls), f"acknowledged but not stored exactly once: {per_control}"
    assert all(str(r.outcome) == "AA" for r in rows)
    by_control = {str(r.controlId): str(r.id) for r in rows}
    for control in controls:
        assert all(results.get(i) == by_control[control] for i in result_ids(oru(control))), control


async def test_crash_at_every_point_loses_and_doubles_nothing(database_url: str, tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("GATEWAY_D01_SEED", "20261202")))
    ledger = Ledger()
    mllp = _free_port()
    env = server_env(database_url, tmp_path, mllp)
    crashed: Counter[FaultPoint] = Counter()
    db = Database(database_url)
    try:
        with fork_server() as servers:
            for n in range(ROUNDS + 1):
                last = n == ROUNDS
                point = rng.choice(list(FaultPoint))
                fault = {} if last else {"GATEWAY_FAULT": f"{point}:{rng.randint(1, 4)}"}
                fresh = [] if last else [f"CP-{n * FRESH + k}" for k in range(FRESH)]
                controls = ledger.unacked() + fresh
                acked_before = set(ledger.acked)
                pid = servers.spawn(env | fault)
                try:
                    await _listening(mllp, pid)
                    await asyncio.gather(
                        *(_send(mllp, controls[i::CONNECTIONS], ledger, not last) for i in range(CONNECTIONS))
                    )
                finally:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    status = servers.wait(pid)
                if status == CRASH_STATUS:
                    crashed[point] += 1
                else:
                    assert status == -signal.SIGKILL, f"round {n}: the server exited with {status}"
                await _stored_once(db, [c for c in ledger.acked if c not in acked_before])
        assert not ledger.unacked(), "the last round (no crash point) acknowledged everything"
        assert set(crashed) == set(FaultPoint), f"every crash point fired: {dict(crashed)}"
        assert sum(crashed.values()) >= ROUNDS // 2, f"most rounds crashed at their point: {dict(crashed)}"
        await _check_store(db, ledger)
        async with db.read() as conn:
            stored = (await conn.execute(select(func.count()).select_from(_results))).scalar_one()
            logged = (await conn.execute(select(func.count()).select_from(_log))).scalar_one()
        assert logged == len(set(ledger.sent)) and stored == 2 * logged, (logged, stored)
        chain = await verify_chain(database_url)
        assert chain.ok, chain
        by_point = {str(k): v for k, v in crashed.items()}
        print(f"D01 {ROUNDS} rounds: crashes by point {by_point}, {logged} messages stored once")
    finally:
        await db.dispose()
