"""HL7 v2 ingest over MLLP: issue #4's benchmark.

One run, same machine, same load generator, two servers side by side:
  (a) baseline: an MLLP listener that frames, decodes, parses and maps each message and
      builds its ACK (the whole pure pipeline of ``Ingest``) but stores nothing;
  (b) ``portal-gateway serve`` on a fresh database: full ingest with a durable commit
      (SQLite WAL + synchronous=FULL, or PostgreSQL synchronous_commit=on) before each ACK,
      as deployed: parsing in the serve process, storing in its writer process
      (``GATEWAY_HL7_WRITER=process``, the default; set it to ``inline`` to measure one process).
Each is driven over 1 connection and over 8, every sender waiting for its ACK before the next
message (classic MLLP); ``--pipeline K`` keeps K messages in flight per connection instead.
The servers are measured in alternating slices (``--rounds``), so a load change on a shared
machine hits baseline and store alike.
Every message is a distinct 16-segment ORU^R01 (MSH, PID, ORC, OBR, 12 OBX) for one of
``--patients`` patients (50), so (b) creates a LabResult per OBX. Before each timed run one
message per patient is sent untimed, so the figure is the steady state of a feed whose patients
exist (the first message of a new patient also creates its profile, role and care team, which
costs more: ``--patients 100000`` measures that case); on PostgreSQL the store is then ANALYZEd, as
a store running for more than a minute is by autovacuum (``_analyze`` says why it matters). Prints
messages/s and b/a (target >= 0.7).
A parse-only baseline (python-hl7 parse + ACK, no mapping) is printed too, for reference.

What bounds (b) on SQLite is printed last: the exact statements and values the store ran for
a few hundred of these messages, recorded and replayed on the bare ``sqlite3`` driver with no
Python around them (prepared, ``executemany`` as the store issues them, ``synchronous=FULL``),
committing after every message and after every 8 (then, as the committer does, the statements a
group runs once, its staged inserts and its audit append, go in once for the 8 messages: see
``_transactions``). That is SQLite's own work for the rows a message writes (12 LabResults,
their first versions, 13 AuditLog entries, the message log row, the lookups); for PostgreSQL
the same is replayed on a bare asyncpg connection (its own work plus a round trip a statement).
One sender waits for each ACK, so its messages are parsed, stored and committed one after
another: on 1 connection b/a cannot exceed a / (a + that work) however lean the Python becomes,
writer process or not. With several connections the writer process stores
one group while the serve process parses the next messages, so there the bound printed is that
of ``GATEWAY_HL7_WRITER=inline``; the writer process's own bound is its work per message
(SQLite's plus the store's Python) against the parse work, on a machine whose two cores also
run the load generator.
Where each message's CPU goes is printed too: read from ``/proc`` over exactly the timed seconds, for
(a)'s server, (b)'s serve process, its writer process, the local PostgreSQL server and the load
generator. Together they cannot use more than the machine's cores, so (b) is at most cores / their
CPU per message, whatever overlaps: the bound that decides the figures on a two-core machine.

Usage: .venv/bin/python bench/hl7_ingest.py [--seconds 10] [--connections 1,8] [--pipeline 1]
                                            [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import cpu_seconds, family, free_port, live_process, processes_named
from gateway.hl7v2.framing import END, START, Frame, Framer, frame
from mappings.hl7v2 import (
    AckCode,
    ParseOptions,
    build_ack,
    decode,
    parse_message,
    parse_oru,
    read_header,
)
from mappings.hl7v2.header import check_supported

_OBX = (
    ("2345-7", "Glucose", "104", "mg/dL", "70-99", "H"),
    ("3094-0", "Urea nitrogen", "15", "mg/dL", "7-20", "N"),
    ("2160-0", "Creatinine", "0.91", "mg/dL", "0.59-1.04", "N"),
    ("2951-2", "Sodium", "139", "mmol/L", "136-145", "N"),
    ("2823-3", "Potassium", "3.3", "mmol/L", "3.5-5.1", "L"),
    ("2075-0", "Chloride", "101", "mmol/L", "98-107", "N"),
    ("2028-9", "Carbon dioxide, total", "25", "mmol/L", "22-29", "N"),
    ("17861-6", "Calcium", "9.4", "mg/dL", "8.6-10.3", "N"),
    ("2885-2", "Protein", "7.1", "g/dL", "6.0-8.3", "N"),
    ("1751-7", "Albumin", "4.2", "g/dL", "3.5-5.2", "N"),
    ("1975-2", "Bilirubin.total", "0.6", "mg/dL", "0.1-1.2", "N"),
    ("6768-6", "Alkaline phosphatase", "88", "U/L", "44-147", "N"),
)
_PROVIDER = "1234567893^Okafor^Chidi^^^^MD^^NPI&2.16.840.1.113883.4.6&ISO^L^^^NPI"


def oru(control_id: str, patient: int) -> bytes:
    """A distinct 16-segment ORU^R01: its own control id and order number, for patient number ``patient``."""
    t = "20260114074500-0500"
    segs = [
        f"MSH|^~\\&|BEAKER|NORTHWIND LAB|PORTAL|PORTAL GW|20260114093015-0500||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        f"PID|1||NW-{patient:06d}^^^NWHOSP^MR||Tester^Alex{patient}^Q||19780402|F",
        f"ORC|RE|PL-{control_id}^PORTALEHR|FL-{control_id}^NWLAB||CM||||{t}|||{_PROVIDER}",
        f"OBR|1|PL-{control_id}^PORTALEHR|FL-{control_id}^NWLAB|24323-8^Comprehensive metabolic panel^LN|||{t}"
        f"|||||||||{_PROVIDER}||||||20260114092900-0500|||F",
    ]
    for i, (code, name, value, units, rng, flag) in enumerate(_OBX, 1):
        segs.append(f"OBX|{i}|NM|{code}^{name}^LN||{value}|{units}^^UCUM|{rng}|{flag}|||F|||{t}")
    return ("\r".join(segs) + "\r").encode()


# ---- (a) the no-storage baseline server ---------------------------------------------------------


def _pipeline(raw: bytes, *, mapping: bool) -> bytes:
    """What ``Ingest`` does before and after the store: decode, parse, (map), build the ACK."""
    decoded = decode(raw)
    msg = parse_message(decoded.text)
    header = read_header(msg, UTC)
    if mapping:
        check_supported(header)
        parse_oru(msg, ParseOptions())
    ack = build_ack(header, AckCode.AA, [], ack_control_id=header.control_id, now=datetime.now(UTC))
    return ack.encode(decoded.codec)


def serve_baseline(port: int, mapping: bool) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer(16 * 1024 * 1024)
        try:
            while chunk := await reader.read(64 * 1024):
                for event in framer.feed(chunk):
                    if isinstance(event, Frame):
                        writer.write(frame(_pipeline(event.payload, mapping=mapping)))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", port, limit=16 * 1024 * 1024 + 2)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@dataclass(frozen=True)
class Server:
    """A server under load: where it listens, and the process whose CPU (its own and its
    children's: the writer process) is counted while it is measured."""

    port: int
    pid: int


@contextlib.contextmanager
def baseline_server(mapping: bool) -> Iterator[Server]:
    port = free_port()
    args = [sys.executable, __file__, "--serve-baseline", str(port)] + ([] if mapping else ["--parse-only"])
    proc = subprocess.Popen(args, cwd=tempfile.gettempdir())
    try:
        _wait_port(port)
        yield Server(port, proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


@contextlib.contextmanager
def gateway_server(database_url: str, **env: str) -> Iterator[Server]:
    """``portal-gateway serve`` listening for MLLP; ``env`` adds to its environment (``hl7_ab.py``
    runs another revision's code through ``PYTHONPATH``)."""
    port = free_port()
    with live_process(database_url, GATEWAY_MLLP_PORT=str(port), **env) as (_base, pid):
        _wait_port(port)
        yield Server(port, pid)


# ---- where the CPU goes -------------------------------------------------------------------------

CPU_PARTS = ("serve", "writer", "database", "load")
"""What a message's CPU is split into: the listening process (framing, parsing, mapping, ACKs), its
children (the writer process), the local PostgreSQL server's processes (all of them: the bench
assumes nothing else uses that server meanwhile), and this process (the load generator)."""


def _cpu_now(server: Server, database: bool) -> dict[str, float]:
    children = family(server.pid)[1:]
    return {
        "serve": cpu_seconds(server.pid),
        "writer": sum(cpu_seconds(p) for p in children),
        "database": sum(cpu_seconds(p) for p in processes_named("postgres")) if database else 0.0,
        "load": time.process_time(),
    }


@dataclass
class Usage:
    """Messages ACKed and CPU seconds used by each part while they were (summed over slices)."""

    messages: float = 0.0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CPU_PARTS, 0.0))

    def per_message(self, part: str) -> float:
        """Milliseconds of CPU per message."""
        return self.seconds[part] / self.messages * 1000 if self.messages else 0.0

    def total(self) -> float:
        return sum(self.per_message(p) for p in CPU_PARTS)


# ---- SQLite's own share: the store's statements replayed on the bare driver ----------------------


class _Recorder:
    """Stands in for the ``sqlite3`` connection ``store.leanwrite`` runs on, noting each call."""

    def __init__(self, driver: Any, sink: list[tuple[str, str, Any]]) -> None:
        self._driver, self._sink = driver, sink

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._sink.append(("execute", sql, list(params)))
        return self._driver.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> Any:
        rows = list(rows)
        self._sink.append(("executemany", sql, rows))
        return self._driver.executemany(sql, rows)


def _snapshot(source: Path, target: Path) -> None:
    """A consistent copy, WAL content included (a file copy would miss what is not checkpointed)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


_GROUP_END = ("group-end", "", None)
"""Noted in a recording where a group's end starts (see ``_marking_group_end``)."""


@contextlib.contextmanager
def _marking_group_end(sink: list[tuple[str, str, Any]]) -> Iterator[None]:
    """Notes in ``sink`` where the committer starts a group's end: the staged inserts
    (``hl7v2.staged``) and the audit append, which it runs once per group whatever its size."""
    from gateway.hl7v2 import committer
    from gateway.hl7v2.staged import StagedInserts

    flush, append = StagedInserts.flush, getattr(committer, "append_many")  # noqa: B009 (not exported)

    async def marked_flush(self: StagedInserts, conn: Any) -> None:
        sink.append(_GROUP_END)
        await flush(self, conn)

    async def marked_append(conn: Any, entries: Any) -> Any:
        sink.append(_GROUP_END)
        return await append(conn, entries)

    StagedInserts.flush = marked_flush  # type: ignore[method-assign]
    setattr(committer, "append_many", marked_append)  # noqa: B010
    try:
        yield
    finally:
        StagedInserts.flush = flush  # type: ignore[method-assign]
        setattr(committer, "append_many", append)  # noqa: B010


def _transactions(per_message: list[list[tuple[str, str, Any]]], g: int) -> Iterator[list[tuple[str, str, Any]]]:
    """The statements of each transaction when committing every ``g`` messages, as the committer
    issues them: each message's own statements in order, then the group's end once (recorded one
    message per group): the staged rows of all ``g`` messages in one INSERT per table, the audit
    head read once, their audit entries (consecutive in the chain) in one INSERT, the head moved once.
    Each message's own lookups stay one statement each: on PostgreSQL a group reads them ahead in one
    statement per kind (``hl7v2.prefetch``), so there this replay overstates the group's work."""
    for first in range(0, len(per_message), g):
        own: list[tuple[str, str, Any]] = []
        end: dict[str, tuple[str, Any]] = {}
        for calls in per_message[first : first + g]:
            at_end = False
            for call in calls:
                if call == _GROUP_END:
                    at_end = True
                    continue
                kind, sql, params = call
                if not at_end:
                    own.append(call)
                elif kind == "copy":  # PostgreSQL's multi-row inserts: one COPY per table (sql: the table)
                    columns, schema, rows = params
                    end.setdefault(sql, (kind, (columns, schema, [])))[1][2].extend(rows)
                elif sql.startswith("INSERT"):
                    rows = params if kind == "executemany" else [params]
                    end.setdefault(sql, ("executemany", []))[1].extend(rows)
                elif sql.startswith("SELECT"):
                    end.setdefault(sql, (kind, params))
                else:  # the head's move: the last message's, after the entries
                    end.pop(sql, None)
                    end[sql] = (kind, params)
        yield own + [(kind, sql, params) for sql, (kind, params) in end.items()]


def sqlite_floor(messages: int, groups: tuple[int, ...], patients: int) -> dict[int, float]:
    """Milliseconds of SQLite work per message, committing every ``g`` messages, for each ``g``."""
    import shutil

    from sqlalchemy import event

    from gateway.hl7v2.ingest import Delivery, Ingest
    from gateway.store import leanwrite
    from gateway.store.database import Database
    from gateway.store.engine import SQLITE_PRAGMAS
    from gateway.store.migrate import upgrade

    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'floor.db'}"
    upgrade(url)
    per_message: list[list[tuple[str, str, Any]]] = []
    sink: list[tuple[str, str, Any]] = []
    original = leanwrite.run

    def recording(driver: Any, stmt: Any, parameters: Any, dialect: Any) -> Any:
        return original(cast(sqlite3.Connection, _Recorder(driver, sink)), stmt, parameters, dialect)

    async def feed() -> None:
        db = Database(url)
        ingest = Ingest(db)
        assert ingest.committer._sync is not None

        @event.listens_for(ingest.committer._sync, "before_cursor_execute")
        def through_sqlalchemy(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
            if not sql.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")):
                sink.append(("executemany" if many else "execute", sql, params))

        delivery = Delivery("mllp")
        for p in range(patients):  # as in the timed runs: the patients exist
            await ingest.handle(oru(f"floor-warm-{p}", p), delivery)
        _snapshot(tmp / "floor.db", tmp / "start.db")
        sink.clear()
        leanwrite.run = recording
        try:
            with _marking_group_end(sink):
                for i in range(messages):
                    reply = await ingest.handle(oru(f"floor-{i}", i % patients), delivery)
                    assert reply.code is AckCode.AA, reply
                    per_message.append(list(sink))
                    sink.clear()
        finally:
            leanwrite.run = original
            ingest.committer.dispose()
            await db.dispose()

    asyncio.run(feed())
    out: dict[int, float] = {}
    for g in groups:
        path = tmp / f"replay-{g}.db"
        _snapshot(tmp / "start.db", path)
        conn = sqlite3.connect(path, isolation_level=None)
        for pragma in SQLITE_PRAGMAS:
            conn.execute(pragma)
        start = time.perf_counter()
        for calls in _transactions(per_message, g):
            conn.execute("BEGIN IMMEDIATE")
            for kind, sql, params in calls:
                if kind == "executemany":
                    conn.executemany(sql, params)
                else:
                    conn.execute(sql, params).fetchall()
            conn.execute("COMMIT")
        out[g] = (time.perf_counter() - start) / len(per_message) * 1000
        conn.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return out


async def _pg_admin(dsn: str, *statements: str) -> None:
    """Run ``statements`` one by one on a fresh asyncpg connection (CREATE/DROP DATABASE)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


class _PgRecorder:
    """Stands in for the asyncpg connection ``leanwrite.run_asyncpg`` runs on, noting each call."""

    def __init__(self, driver: Any, sink: list[tuple[str, str, Any]]) -> None:
        self._driver, self._sink = driver, sink

    async def execute(self, sql: str, *args: Any) -> Any:
        self._sink.append(("fetch", sql, list(args)))
        return await self._driver.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        self._sink.append(("fetch", sql, list(args)))
        return await self._driver.fetch(sql, *args)

    async def executemany(self, sql: str, rows: Any) -> Any:
        rows = [list(r) for r in rows]
        self._sink.append(("executemany", sql, rows))
        return await self._driver.executemany(sql, rows)

    async def copy_records_to_table(self, table: str, *, records: Any, columns: Any, schema_name: Any) -> Any:
        rows = [list(r) for r in records]
        self._sink.append(("copy", table, (tuple(columns), schema_name, rows)))
        return await self._driver.copy_records_to_table(table, records=rows, columns=columns, schema_name=schema_name)


def _jsonb_binary(text: str) -> bytes:
    return b"\x01" + text.encode()


def postgres_floor(admin_url: str, messages: int, groups: tuple[int, ...], patients: int) -> dict[int, float]:
    """``sqlite_floor`` for PostgreSQL: the store's statements and values for ``messages`` messages,
    recorded, then replayed on a bare asyncpg connection (each SQL text prepared once, as the
    store's are) against a copy of the store as it was before them; milliseconds per message,
    committing every ``g``. That is PostgreSQL's own work plus one round trip per statement, with
    no Python of ours around it."""
    import asyncpg
    from sqlalchemy import event

    from gateway.hl7v2.ingest import Delivery, Ingest
    from gateway.store import leanwrite
    from gateway.store.database import Database
    from gateway.store.migrate import upgrade

    dsn = admin_url.replace("postgresql+asyncpg", "postgresql", 1)
    base = f"bench_floor_{os.getpid()}"

    def url_of(name: str) -> str:
        return dsn.rsplit("/", 1)[0] + "/" + name

    def app_url(name: str) -> str:
        return admin_url.rsplit("/", 1)[0] + "/" + name

    async def admin(*statements: str) -> None:
        await _pg_admin(dsn, *statements)

    names = [base, f"{base}_start", *(f"{base}_g{g}" for g in groups)]
    asyncio.run(admin(*(f'DROP DATABASE IF EXISTS "{n}"' for n in names), f'CREATE DATABASE "{base}"'))
    per_message: list[list[tuple[str, str, Any]]] = []
    sink: list[tuple[str, str, Any]] = []
    original = leanwrite.run_asyncpg

    async def recording(driver: Any, stmt: Any, parameters: Any, dialect: Any) -> Any:
        return await original(_PgRecorder(driver, sink), stmt, parameters, dialect)

    async def warm() -> None:
        db = Database(app_url(base))
        ingest = Ingest(db)
        for p in range(patients):
            await ingest.handle(oru(f"floor-warm-{p}", p), Delivery("mllp"))
        await ingest.committer.aclose()
        await db.dispose()

    async def record() -> None:
        db = Database(app_url(base))
        ingest = Ingest(db)

        @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
        def through_sqlalchemy(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
            if not sql.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")):
                values = [list(p) for p in params] if many else list(params)
                sink.append(("executemany" if many else "fetch", sql, values))

        leanwrite.run_asyncpg = recording
        try:
            with _marking_group_end(sink):
                for i in range(messages):
                    reply = await ingest.handle(oru(f"floor-{i}", i % patients), Delivery("mllp"))
                    assert reply.code is AckCode.AA, reply
                    per_message.append(list(sink))
                    sink.clear()
        finally:
            leanwrite.run_asyncpg = original
            await ingest.committer.aclose()
            await db.dispose()

    async def replay(name: str, g: int) -> float:
        conn = await asyncpg.connect(url_of(name))
        # JSON values are recorded as the text the store sends; binary COPY needs jsonb's binary form
        await conn.set_type_codec(
            "jsonb", schema="pg_catalog", format="binary", encoder=_jsonb_binary, decoder=lambda b: b[1:].decode()
        )
        try:
            start = time.perf_counter()
            for calls in _transactions(per_message, g):
                transaction = conn.transaction()
                await transaction.start()
                for kind, sql, params in calls:
                    if kind == "executemany":
                        await conn.executemany(sql, params)
                    elif kind == "copy":
                        columns, schema, rows = params
                        await conn.copy_records_to_table(sql, records=rows, columns=columns, schema_name=schema)
                    else:
                        await conn.fetch(sql, *params)
                await transaction.commit()
            return (time.perf_counter() - start) / len(per_message) * 1000
        finally:
            await conn.close()

    out: dict[int, float] = {}
    try:
        upgrade(app_url(base))
        asyncio.run(warm())
        _analyze(app_url(base))
        asyncio.run(admin(f'CREATE DATABASE "{base}_start" TEMPLATE "{base}"'))
        asyncio.run(record())
        for g in groups:
            asyncio.run(admin(f'CREATE DATABASE "{base}_g{g}" TEMPLATE "{base}_start"'))
            out[g] = asyncio.run(replay(f"{base}_g{g}", g))
    finally:
        asyncio.run(admin(*(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names)))
    return out


# ---- the load generator -------------------------------------------------------------------------


async def _warm(port: int, patients: int, tag: str) -> None:
    """One message per patient, untimed, over one connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=16 * 1024 * 1024)
    try:
        for p in range(patients):
            writer.write(START + oru(f"{tag}-warm-{p}", p) + END)
            await writer.drain()
            await reader.readuntil(END)
    finally:
        writer.close()


async def drive(
    port: int,
    connections: int,
    seconds: float,
    pipeline: int,
    tag: str,
    patients: int,
    *,
    warm: bool = True,
    cpu: Callable[[], dict[str, float]] | None = None,
    usage: Usage | None = None,
) -> float:
    """ACKed messages/s over ``connections`` MLLP connections during ``seconds`` (after a short warm-up).

    Every ACK must be AA; anything else aborts the run (a figure with failures does not count).
    With ``cpu`` and ``usage``, the CPU ``cpu()`` reads over exactly the measured seconds, and the
    messages counted then, are added to ``usage``."""
    counted = 0
    measuring = False
    stop = False
    if warm and patients <= 1000:
        await _warm(port, patients, tag)

    async def sender(c: int) -> None:
        nonlocal counted
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=16 * 1024 * 1024)
        seq = 0
        in_flight: list[str] = []
        try:
            while not stop or in_flight:
                while not stop and len(in_flight) < pipeline:
                    control = f"{tag}-{c}-{seq}"
                    writer.write(START + oru(control, (c * 7919 + seq) % patients) + END)
                    in_flight.append(control)
                    seq += 1
                await writer.drain()
                block = await reader.readuntil(END)
                text = block[1 : -len(END)].decode("utf-8", "replace")
                msa = next(s for s in text.split("\r") if s.startswith("MSA")).split("|")
                expected = in_flight.pop(0)
                if msa[1] != "AA" or msa[2] != expected:
                    raise RuntimeError(f"unexpected ACK for {expected}: {msa}")
                if measuring:
                    counted += 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(sender(c)) for c in range(connections)]
    await asyncio.sleep(0.5)
    before = cpu() if cpu else {}
    measuring, start = True, time.perf_counter()
    await asyncio.sleep(seconds)
    measuring, elapsed = False, time.perf_counter() - start
    if cpu and usage is not None:
        after = cpu()
        usage.messages += counted
        for part in CPU_PARTS:
            usage.seconds[part] += after[part] - before[part]
    stop = True
    await asyncio.gather(*tasks)
    return counted / elapsed


def measure(
    port: int, connections: int, seconds: float, pipeline: int, tag: str, patients: int, *, warm: bool = True
) -> float:
    return asyncio.run(drive(port, connections, seconds, pipeline, tag, patients, warm=warm))


def interleaved(
    servers: list[Server],
    connections: int,
    seconds: float,
    pipeline: int,
    tag: str,
    patients: int,
    rounds: int,
    *,
    database: bool = False,
) -> tuple[list[float], list[Usage]]:
    """Messages/s for each server, measured in ``rounds`` alternating slices (a, b, a, b, ...), and
    the CPU each part used per message meanwhile (``database``: count the local PostgreSQL's).

    The machine's load drifts (other processes); alternating short slices exposes every server
    to the same drift, so the ratios compare designs rather than moments."""
    totals = [0.0] * len(servers)
    usages = [Usage() for _ in servers]
    for r in range(rounds):
        for i, server in enumerate(servers):
            totals[i] += asyncio.run(
                drive(
                    server.port,
                    connections,
                    seconds / rounds,
                    pipeline,
                    f"{tag}{i}r{r}",
                    patients,
                    warm=r == 0,
                    cpu=partial(_cpu_now, server, database),
                    usage=usages[i],
                )
            )
    return [t / rounds for t in totals], usages


@contextlib.contextmanager
def _postgres_database(admin_url: str, suffix: str = "") -> Iterator[str]:
    """A fresh database for one run (asyncpg, the driver the app uses), dropped afterwards; yields its URL
    (``suffix`` tells apart several in one process: ``hl7_ab.py``)."""

    name = f"bench_hl7_{os.getpid()}{suffix}"
    dsn = admin_url.replace("postgresql+asyncpg", "postgresql", 1)

    async def admin(*statements: str) -> None:
        await _pg_admin(dsn, *statements)

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _analyze(url: str) -> None:
    """Planner statistics for a store that has just been created and warmed.

    A fresh PostgreSQL database has none, and the write path's prepared statements then keep
    plans made for empty tables (a sequential scan for the LabResult lookup by id) until
    autovacuum's first ANALYZE, up to a minute later; a store that has been running longer
    than that has statistics. Measured: 81 -> 119 msg/s at 8 connections once analyzed."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql", 1))
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", default="1,8")
    parser.add_argument("--pipeline", type=int, default=1, help="messages in flight per connection")
    parser.add_argument("--patients", type=int, default=50, help="distinct patients the messages are for")
    parser.add_argument("--rounds", type=int, default=5, help="alternating slices per figure (load drift)")
    parser.add_argument("--postgres", default=None, help="admin URL of a PostgreSQL server to bench too")
    parser.add_argument("--serve-baseline", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--parse-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline is not None:
        serve_baseline(args.serve_baseline, mapping=not args.parse_only)
        return
    fan = [int(c) for c in args.connections.split(",")]
    run = f"{os.getpid()}x{int(time.time())}"
    rows: list[tuple[str, int, float, float, float]] = []
    usages: dict[tuple[str, int], tuple[Usage, Usage]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        for backend in ("sqlite", "postgresql") if args.postgres else ("sqlite",):
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            else:
                # Created only now, then checkpointed: CREATE DATABASE writes the whole template, and
                # flushing that while SQLite's figures run slowed their fsyncs (8 connections measured
                # 0.64-0.67 with the database made up front, 0.76-0.78 without it, same code).
                url = stack.enter_context(_postgres_database(args.postgres))
                asyncio.run(_pg_admin(args.postgres.replace("postgresql+asyncpg", "postgresql", 1), "CHECKPOINT"))
            with gateway_server(url) as gw, baseline_server(True) as base, baseline_server(False) as parse_only:
                if backend == "postgresql":
                    asyncio.run(_warm(gw.port, args.patients, f"{run}analyze"))
                    _analyze(url)
                for n in fan:
                    (a0, a, b), (_, used_a, used_b) = interleaved(
                        [parse_only, base, gw],
                        n,
                        args.seconds,
                        args.pipeline,
                        f"{run}{backend}{n}",
                        args.patients,
                        args.rounds,
                        database=backend == "postgresql",
                    )
                    rows.append((backend, n, a0, a, b))
                    usages[backend, n] = (used_a, used_b)
    print(
        f"HL7 ingest over MLLP, {args.seconds:.0f} s per figure, pipeline {args.pipeline} per connection, "
        f"{args.patients} patients"
    )
    print(f"{'backend':<11}{'conns':>6}{'parse+ACK':>11}{'(a) +map':>10}{'(b) store':>11}{'b/a':>7}{'b/parse':>9}")
    for backend, n, a0, a, b in rows:
        print(f"{backend:<11}{n:>6}{a0:>11.1f}{a:>10.1f}{b:>11.1f}{b / a:>7.2f}{b / a0:>9.2f}")
    print("target: b/a >= 0.70")
    _print_cpu(rows, usages)
    floor = sqlite_floor(400, (1, 8), args.patients)
    print(
        "SQLite's own work per message (the store's statements and values replayed on the bare driver): "
        f"{floor[1]:.2f} ms committing each message, {floor[8]:.2f} ms committing every 8"
    )
    for backend, n, _a0, a, _b in rows:
        if backend == "sqlite":
            work = floor[1 if n == 1 else 8]
            ceiling = (1000 / a) / (1000 / a + work)
            what = "" if n == 1 else " in one process (GATEWAY_HL7_WRITER=inline)"
            print(f"  {n} connection(s): b/a could reach at most {ceiling:.2f}{what} with no Python around the store")
    if args.postgres:
        pg = postgres_floor(args.postgres, 400, (1, 8), args.patients)
        print(
            "PostgreSQL's own work per message (the same, replayed on a bare asyncpg connection, one round trip "
            f"a statement): {pg[1]:.2f} ms committing each message, {pg[8]:.2f} ms committing every 8"
        )
        for backend, n, _a0, a, _b in rows:
            if backend == "postgresql" and n == 1:
                ceiling = (1000 / a) / (1000 / a + pg[1])
                print(f"  1 connection: b/a could reach at most {ceiling:.2f} with no Python around the store")
            elif backend == "postgresql":
                # the writer process stores on one connection, one statement after another
                ceiling = min(1.0, (1000 / pg[8]) / a)
                print(
                    f"  {n} connections: b/a could reach at most {ceiling:.2f} through one writer connection "
                    "with no Python around the store"
                )


def _print_cpu(
    rows: list[tuple[str, int, float, float, float]], usages: dict[tuple[str, int], tuple[Usage, Usage]]
) -> None:
    """Where each message's CPU went, and what that allows on this machine's cores.

    Every process of a figure shares the machine's cores: (b)'s serve process, its writer, the
    database server and the load generator together cannot use more than ``cores`` seconds of CPU a
    second, so (b) cannot exceed cores / (their CPU per message) however they overlap. That is the
    bound when all of them are busy all the time; a serial chain (one connection waiting for each
    ACK, the writer waiting for each statement) sits below it."""
    cores = os.cpu_count() or 1
    print(f"CPU per message, ms (all processes, measured over the timed seconds; {cores} cores):")
    print(f"{'backend':<11}{'conns':>6}  {'fig':<4}" + "".join(f"{p:>10}" for p in CPU_PARTS) + f"{'total':>9}")
    for backend, n, _a0, a, _b in rows:
        used_a, used_b = usages[backend, n]
        for fig, used in (("(a)", used_a), ("(b)", used_b)):
            cells = "".join(f"{used.per_message(p):>10.2f}" for p in CPU_PARTS)
            print(f"{backend:<11}{n:>6}  {fig:<4}{cells}{used.total():>9.2f}")
        if used_b.total():
            ceiling = cores * 1000 / used_b.total() / a
            print(f"  b/a could reach at most {ceiling:.2f} with this CPU per message on {cores} cores")


if __name__ == "__main__":
    main()
