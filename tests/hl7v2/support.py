"""Shared pieces of the HL7 v2 door tests: corpus paths, a raw MLLP client, store counters."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from sqlalchemy import func, select, text

from gateway.hl7v2.apply import result_id
from gateway.hl7v2.framing import END, START
from gateway.store.database import Database
from gateway.store.models import Hl7Message, table_of
from mappings.hl7v2 import parse_oru

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "hl7v2"
FIXTURES = ROOT / "fixtures" / "hl7v2"

COUNTED = ("LabResult", "_Version", "AuditLog", "_Hl7Message", "PatientProfile", "ProviderProfile")


def wire(path: Path) -> bytes:
    """The file as a sender puts it on the wire: CR segment terminators (the BOM, if any, kept)."""
    return path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")


def result_ids(raw: bytes) -> list[str]:
    """The LabResult objectIds a message's OBX map to (what the ingest derives from the natural key)."""
    oru = parse_oru(raw)
    return [result_id(oru.header.sending_facility, r) for r in oru.results]


async def counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        return {t: int((await conn.execute(text(f'SELECT count(*) FROM "{t}"'))).scalar_one()) for t in COUNTED}


async def dead_letters(db: Database) -> list[dict[str, object]]:
    log = table_of(Hl7Message)
    async with db.read() as conn:
        rows = await conn.execute(
            select(log.c.outcome, log.c.controlId, log.c.controlKey, log.c.reason, log.c.size, log.c.raw)
            .where(log.c.outcome != "AA")
            .order_by(log.c.receivedAt)
        )
        return [dict(r) for r in rows.mappings()]


async def log_size(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table_of(Hl7Message)))).scalar_one())


def msa(ack: bytes) -> list[str]:
    """MSA fields of one ACK: [MSA, code, control id]."""
    text = ack.decode("utf-8", "replace")
    sep = text[3] if text.startswith("MSH") and len(text) > 3 else "|"  # the ACK uses the sender's delimiters
    for seg in text.split("\r"):
        if seg.startswith("MSA"):
            return seg.split(sep)
    raise AssertionError(f"no MSA in {ack!r}")


class RawMllp:
    """A bare MLLP client: write any bytes, read framed ACKs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawMllp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=16 * 1024 * 1024)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, message: bytes) -> bytes:
        await self.send_raw(START + message + END)
        return await self.ack()

    async def ack(self) -> bytes:
        block = await asyncio.wait_for(self.reader.readuntil(END), 20.0)
        assert block.startswith(START), block[:20]
        return block[1 : -len(END)]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
