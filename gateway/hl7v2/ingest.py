"""The ingest service both transports call: bytes in, ACK bytes out, after the commit.

One message, one transaction: the dedupe check on (sending facility, MSH-10), the
effects, the AuditLog entries and the message-log row commit together, and the ACK
(built in the transaction so the log keeps the original, byte for byte) is returned
only after the commit. Outcomes (HL7 Table 0008):

* AR: the MSH cannot be read, or the type/version is not supported; nothing applied.
* AE: understood but not applicable (an E issue from the mapping, a store rule such
  as a result key owned by another patient, the same MSH-10 with different content);
  nothing applied, the message kept as a dead letter.
* AA: applied; warnings travel as ERR segments with severity W.

Nothing here raises: an unexpected failure is logged and answered AE (207).

Acknowledgment mode (catalog D09): original mode only. Whatever MSH-15/MSH-16 ask for,
each message gets exactly one application ACK (AA/AE/AR) on the connection (or HTTP
response) it came in on, after the commit; no accept ACKs (CA/CE/CR) are sent and
NE/ER/SU do not suppress the ACK (a sender that asked for none simply ignores it).

Batches (catalog D10): each message of an FHS/BHS batch is applied, logged and
acknowledged on its own, in order; a bad one does not roll back the good ones. The
BTS/FTS counts are not checked: a wrong count does not reject the batch, since every
message already carries its own outcome and that is what a sender retries by.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import faults
from gateway.audit.writer import AuditAction, AuditEntry, append_later
from gateway.faults import FaultPoint
from gateway.hl7v2 import apply, messagelog
from gateway.hl7v2.apply import Effects, Unappliable, apply_patient, apply_results, has_legacy_result_ids
from gateway.hl7v2.committer import GroupCommitter, Job, RetryableFailure
from gateway.hl7v2.prefetch import GroupReads
from gateway.hl7v2.writer_process import WriterLost, WriterProcess
from gateway.policy.principal import RequestInfo, system
from gateway.store.database import Database
from gateway.store.ids import new_object_id
from mappings.hl7v2 import (
    AckCode,
    ErrorCode,
    Hl7Error,
    MessageHeader,
    MessageKind,
    ParseOptions,
    Severity,
    build_ack,
    build_ack_for_unparseable,
    decode,
    normalize,
    parse_adt,
    parse_message,
    parse_oru,
    read_header,
    split_batch,
)
from mappings.hl7v2.header import check_supported

__all__ = ["ApplyWork", "Delivery", "FinishWork", "Ingest", "RecordWork", "Reply", "Work"]

log = logging.getLogger("gateway.hl7v2")

ATTEMPTS = 3
"""Concurrent writers on the same rows (PostgreSQL) retry the whole message this many times."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a message came from: ``mllp`` or ``http``, the feed name, the peer address."""

    transport: str
    feed: str | None = None
    source_address: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """The ACK for one message, encoded in the message's character set."""

    code: AckCode
    ack: bytes
    message_id: str | None
    duplicate: bool = False


@dataclass(slots=True)
class _Inbound:
    raw: bytes
    codec: str
    header: MessageHeader
    digest: str


@dataclass(frozen=True, slots=True)
class ApplyWork:
    """Store a mapped message's effects, audit entries and log row (AA, or AE if a store rule refuses)."""

    inbound: _Inbound
    delivery: Delivery
    mapped: Any
    warnings: list[Hl7Error]


@dataclass(frozen=True, slots=True)
class FinishWork:
    """Log a message that applies nothing (AE/AR); with ``owns``, a repeat answers as before."""

    inbound: _Inbound
    delivery: Delivery
    code: AckCode
    reasons: list[Hl7Error]
    owns: bool


@dataclass(frozen=True, slots=True)
class RecordWork:
    """Log a message that could not be read, with the reply already built."""

    entry: messagelog.LogEntry
    reply: Reply


Work = ApplyWork | FinishWork | RecordWork
"""What one message asks of the store: plain data, so it can be handed to the writer process
(``gateway.hl7v2.writer_process``) as well as turned into a job here (``Ingest.job``)."""


_BLANK = MessageHeader("", "", "", "", None, "", "", "", "", "P", "2.5.1")
"""Header for a last-resort ACK when not even the MSH salvage of the mapping layer copes."""


def _unparseable_ack(raw: bytes, err: Hl7Error, control_id: str, now: datetime) -> str:
    try:
        return build_ack_for_unparseable(raw, err, ack_control_id=control_id, now=now)
    except Exception:  # e.g. a bare "MSH" line: the salvage indexes past its end
        return build_ack(_BLANK, AckCode.AR, [err], ack_control_id=control_id, now=now)


def _now() -> datetime:
    return datetime.now(UTC)


def is_batch(text: str) -> bool:
    """An FHS/BHS batch, or more than one MSH in one payload."""
    body = normalize(text)
    return body.startswith(("FHS", "BHS")) or body.count("\rMSH") > 0


class Ingest:
    """Turns received payloads into stored effects and ACKs.

    Parsing and mapping run at once in the caller (``submit``); the writes of each message
    are a job for the group committer (``committer.GroupCommitter``), which runs the jobs
    of every message waiting at that moment in one transaction and resolves each reply
    after that transaction's COMMIT.
    """

    def __init__(
        self,
        db: Database,
        options: ParseOptions | None = None,
        *,
        clock: Callable[[], datetime] = _now,
        committer: GroupCommitter | None = None,
        writer: WriterProcess | None = None,
    ) -> None:
        self.db = db
        self.options = options or ParseOptions()
        self.clock = clock
        self.committer = committer or GroupCommitter(db, attempts=ATTEMPTS)
        self.writer = writer
        """Where the writes go when it is running (``serve`` forks a writer process); else ``committer``."""
        self._local = 0
        """Messages being stored in this process while the writer process runs (see ``store``)."""
        self._waiting = 0
        """Messages waiting for those to commit before they go to the writer process."""
        self._drained: asyncio.Future[None] | None = None
        self._legacy_ids: bool | None = None
        """Whether results may be stored under their pre-clustering ids (``apply.has_legacy_result_ids``),
        asked once, in the first message's transaction."""
        if db.dialect == "postgresql":
            # Only where each lookup is a round trip: on SQLite reading ahead cost more Python than
            # it saved (in-process writer, groups of 4: 1.92-2.07 -> 2.09-2.34 ms CPU a message).
            self.committer.read_ahead = self.read_ahead

    def store(self, work: Work) -> asyncio.Future[Reply]:
        """Queue ``work`` (call order is commit order); resolves after the commit that holds it.

        With a writer process running, a message that finds nothing in flight anywhere is stored
        here instead: a lone sender waits for each ACK, so nothing runs beside its message, and
        handing it to the other process only added the hand-over (pickling both ways, a wake-up,
        caches gone cold). Measured side by side on 1 connection, in-process storing was 1.13x
        (SQLite) and 1.12x (PostgreSQL) the writer process's throughput. Messages that arrive
        while one is stored here wait for its commit before they go to the writer process, and
        the writer process is only passed by once it has answered everything, so across both
        paths call order stays commit order."""
        writer = self.writer
        if writer is None or not writer.running:
            return self.committer.submit(self.job(work), work)
        if self._local or self._waiting:
            self._waiting += 1
            return asyncio.ensure_future(self._store_after_local(work))
        if writer.idle:
            self._local += 1
            future = self.committer.submit(self.job(work), work)
            future.add_done_callback(self._stored_locally)
            return future
        return writer.submit(work)

    def _stored_locally(self, _future: asyncio.Future[Any]) -> None:
        self._local -= 1
        if not self._local and self._drained is not None:
            drained, self._drained = self._drained, None
            drained.set_result(None)

    async def _store_after_local(self, work: Work) -> Reply:
        """``store`` for a message that came while others were stored in this process: it goes to
        the writer process after their commit (waiters resume in arrival order)."""
        try:
            if self._local:
                if self._drained is None:
                    self._drained = asyncio.get_running_loop().create_future()
                await asyncio.shield(self._drained)
        finally:
            self._waiting -= 1
        writer = self.writer
        if writer is not None and writer.running:
            return await writer.submit(work)
        reply: Reply = await self.committer.submit(self.job(work), work)
        return reply

    def job(self, work: Work) -> Job:
        """The write job for ``work``, for a committer in this process."""
        if isinstance(work, ApplyWork):
            return self._apply(work.inbound, work.delivery, work.mapped, work.warnings)
        if isinstance(work, FinishWork):
            return self._finish(work.inbound, work.delivery, work.code, work.reasons, owns=work.owns)
        return _record(work.entry, work.reply)

    async def read_ahead(self, conn: AsyncConnection, reads: GroupReads, works: list[Any]) -> None:
        """What the jobs of a group will look up, read with one statement per kind (``hl7v2.prefetch``):
        the control ids that may be repeats, then the patients, providers and results."""
        controls = [
            (w.inbound.header.sending_facility[:255], w.inbound.header.control_id[:255])
            for w in works
            if isinstance(w, ApplyWork) or (isinstance(w, FinishWork) and w.owns)
        ]
        await messagelog.read_ahead(conn, reads, controls)
        mapped = [w.mapped for w in works if isinstance(w, ApplyWork)]
        if mapped:
            await apply.read_ahead(conn, reads, mapped, legacy_ids=await self._legacy(conn))

    async def _legacy(self, conn: AsyncConnection) -> bool:
        if self._legacy_ids is None:
            self._legacy_ids = await has_legacy_result_ids(conn)
        return self._legacy_ids

    def submit(self, raw: bytes, delivery: Delivery) -> asyncio.Future[list[Reply]]:
        """Parse now and queue the writes now (so callers' order is commit order); the replies
        (one per message of an FHS/BHS batch, each applied on its own) resolve after the commit."""
        try:
            decoded = decode(raw)
            batch = is_batch(decoded.text)
        except Exception:  # mappings' decode can raise ValueError on a bare "MSH" line: answered AR
            batch = False
        parts = [part.encode(decoded.codec, "replace") for part in split_batch(decoded.text)] if batch else [raw]
        waits = [self._submit_one(part, delivery) for part in parts]
        return asyncio.ensure_future(_all(waits))

    async def handle_payload(self, raw: bytes, delivery: Delivery) -> list[Reply]:
        """One message, or each message of an FHS/BHS batch applied and acknowledged on its own."""
        return await self.submit(raw, delivery)

    async def handle(self, raw: bytes, delivery: Delivery) -> Reply:
        """Apply one message; never raises."""
        return await self._submit_one(raw, delivery)

    def submit_oversize(self, head: bytes, size: int, limit: int, delivery: Delivery) -> asyncio.Future[list[Reply]]:
        """AR for a frame over the size limit; a dead letter records its size and first bytes."""
        err = Hl7Error(ErrorCode.VALUE_TOO_LONG, None, None, None, f"message of {size} bytes exceeds {limit} bytes")
        work, reply = self._reject_unreadable(head, err, delivery, size=size)
        return asyncio.ensure_future(_all([self._settle(self.store(work), head, reply)]))

    async def reject_oversize(self, head: bytes, size: int, limit: int, delivery: Delivery) -> Reply:
        [reply] = await self.submit_oversize(head, size, limit, delivery)
        return reply

    async def reprocess(self, message_id: str) -> Reply | None:
        """Run a dead letter through ingest again (after a fix); None when there is no such AE/AR row.

        The old row gives up its control id first (and names the new row), so a message that
        was AE for a fixable reason can now be applied; the old row stays in the log. Releasing
        and re-running are two transactions: a crash in between leaves the control id free,
        which only means a resend from the sender would be applied.
        """
        async with self.db.write() as conn:
            row = await messagelog.load(conn, message_id)
            if row is None or row["outcome"] == AckCode.AA.value:
                return None
            raw, feed = bytes(row["raw"]), row.get("feed")
            await messagelog.release(conn, message_id, {"reprocessedAt": self.clock().isoformat()})
        reply = await self.handle(raw, Delivery("replay", feed))
        async with self.db.write() as conn:
            await messagelog.release(conn, message_id, {"reprocessedAs": reply.message_id})
        return reply

    def _submit_one(self, raw: bytes, delivery: Delivery) -> Awaitable[Reply]:
        try:
            work, known = self._prepare(raw, delivery)
        except Exception:
            log.exception("hl7v2: unexpected failure reading a %d-byte message", len(raw))
            return _done(self._internal_error(raw))
        return self._settle(self.store(work), raw, known, delivery)

    async def _settle(
        self, future: Awaitable[Reply], raw: bytes, known: Reply | None, delivery: Delivery | None = None
    ) -> Reply:
        """The committed reply; nothing raises. A job that failed (it kept conflicting with another
        writer, a bug, or the database is unavailable) applied nothing: the message is logged as a
        dead letter in a transaction of its own when the store allows, and answered AE (no AA)."""
        try:
            return await future
        except WriterLost:
            # The writer process died with this message in hand: whether its transaction committed
            # is unknown, so nothing is logged here. AE makes the sender resend; a resend of a
            # committed message gets its original ACK (control-id dedupe), any other is applied.
            log.error("hl7v2: the writer process was lost with a %d-byte message in flight", len(raw))
            return known or self._internal_error(raw)
        except RetryableFailure:
            log.info("hl7v2: gave up after %d conflicting attempts", ATTEMPTS)
            reason = Hl7Error(ErrorCode.APPLICATION_RECORD_LOCKED, None, None, None, "records busy; retry later")
        except Exception:
            log.exception("hl7v2: unexpected failure storing a %d-byte message", len(raw))
            reason = Hl7Error(ErrorCode.APPLICATION_INTERNAL_ERROR, None, None, None, "internal error; nothing applied")
        if delivery is None:
            return known or self._internal_error(raw, reason)
        try:
            inbound = self._inbound(raw)
            logged: Reply = await self.store(FinishWork(inbound, delivery, AckCode.AE, [reason], owns=False))
            return logged
        except Exception:
            log.warning("hl7v2: could not log the failed %d-byte message as a dead letter", len(raw))
            return self._internal_error(raw, reason)

    def _internal_error(self, raw: bytes, reason: Hl7Error | None = None) -> Reply:
        """AE (207 unless told otherwise) when the store failed: nothing applied, nothing logged."""
        err = reason or Hl7Error(
            ErrorCode.APPLICATION_INTERNAL_ERROR, None, None, None, "internal error; nothing applied"
        )
        message_id = new_object_id()
        try:
            inbound = self._inbound(raw)
            ack = build_ack(inbound.header, AckCode.AE, [err], ack_control_id=message_id, now=self.clock())
            return Reply(AckCode.AE, ack.encode(inbound.codec, "replace"), None)
        except Exception:  # not even the MSH reads: the salvage ACK
            ack = _unparseable_ack(raw, err, message_id, self.clock())
            return Reply(AckCode.AE, ack.encode("utf-8", "replace"), None)

    def _inbound(self, raw: bytes) -> _Inbound:
        decoded = decode(raw)
        msg = parse_message(decoded.text)
        header = read_header(msg, self.options.default_tz)
        return _Inbound(raw, decoded.codec, header, messagelog.content_digest(normalize(decoded.text)))

    def _prepare(self, raw: bytes, delivery: Delivery) -> tuple[Work, Reply | None]:
        """Decode, parse and map (CPU only); returns the message's writes (and its reply when
        that is already known, i.e. for a message that cannot be read)."""
        try:
            decoded = decode(raw)
            msg = parse_message(decoded.text)
            msg.issues[:0] = decoded.issues
            header = read_header(msg, self.options.default_tz)
        except Hl7Error as err:
            return self._reject_unreadable(raw, err, delivery)
        except Exception as exc:  # python-hl7 / decode bugs surface as bare errors: still an AR
            log.warning("hl7v2: unreadable %d-byte message (%s)", len(raw), type(exc).__name__)
            unreadable = Hl7Error(
                ErrorCode.SEGMENT_SEQUENCE_ERROR, None, None, None, f"unreadable message ({type(exc).__name__})"
            )
            return self._reject_unreadable(raw, unreadable, delivery)
        inbound = _Inbound(raw, decoded.codec, header, messagelog.content_digest(normalize(decoded.text)))
        try:
            kind = check_supported(header)
            mapped = parse_oru(msg, self.options) if kind is MessageKind.ORU_R01 else parse_adt(msg, self.options)
        except Hl7Error as err:
            return FinishWork(inbound, delivery, AckCode.AR, [err], owns=False), None
        except Exception as exc:  # a mapping bug must still answer
            log.exception("hl7v2: mapping failed for control id %r", header.control_id)
            bug = Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR, None, None, None, f"unmappable ({type(exc).__name__})")
            return FinishWork(inbound, delivery, AckCode.AR, [bug], owns=False), None
        errors = [i for i in mapped.issues if i.severity is Severity.ERROR]
        warnings = [i for i in mapped.issues if i.severity is not Severity.ERROR]
        if errors:
            return FinishWork(inbound, delivery, AckCode.AE, errors + warnings, owns=True), None
        faults.reached(FaultPoint.PARSED)
        return ApplyWork(inbound, delivery, mapped, warnings), None

    def _reject_unreadable(
        self, raw: bytes, err: Hl7Error, delivery: Delivery, *, size: int = 0
    ) -> tuple[RecordWork, Reply]:
        message_id = new_object_id()
        ack = _unparseable_ack(raw, err, message_id, self.clock())
        entry = messagelog.LogEntry(
            message_id,
            self.clock(),
            delivery.transport,
            delivery.feed,
            delivery.source_address,
            None,
            raw,
            messagelog.content_digest(raw.decode("latin-1")),
            AckCode.AR,
            ack,
            [err],
            owns_control_id=False,
            effects={"truncated": True} if size else None,
            size=size,
        )
        reply = Reply(AckCode.AR, ack.encode("utf-8", "replace"), message_id)
        return RecordWork(entry, reply), reply

    def _entry(
        self, inbound: _Inbound, delivery: Delivery, code: AckCode, reasons: list[Hl7Error], *, owns: bool
    ) -> messagelog.LogEntry:
        message_id = new_object_id()
        ack = build_ack(inbound.header, code, reasons, ack_control_id=message_id, now=self.clock())
        return messagelog.LogEntry(
            message_id,
            self.clock(),
            delivery.transport,
            delivery.feed,
            delivery.source_address,
            inbound.header,
            inbound.raw,
            inbound.digest,
            code,
            ack,
            reasons,
            owns_control_id=owns,
        )

    def _reply(self, inbound: _Inbound, code: AckCode, ack: str, message_id: str, duplicate: bool = False) -> Reply:
        return Reply(code, ack.encode(inbound.codec, "replace"), message_id, duplicate)

    async def _repeat(self, conn: Any, inbound: _Inbound, delivery: Delivery) -> Reply | None:
        """The original ACK for a byte-identical repeat; a dead letter for a reused control id."""
        h = inbound.header
        existing = await messagelog.find_control(conn, h.sending_facility[:255], h.control_id[:255])
        if existing is None:
            return None
        if existing.digest == inbound.digest:
            return self._reply(inbound, existing.outcome, existing.ack, existing.id, duplicate=True)
        err = Hl7Error(
            ErrorCode.DUPLICATE_KEY_IDENTIFIER,
            "MSH",
            1,
            10,
            "control id already used by this sender for a different message; nothing applied",
        )
        entry = self._entry(inbound, delivery, AckCode.AE, [err], owns=False)
        await messagelog.record(conn, entry)
        return self._reply(inbound, AckCode.AE, entry.ack, entry.id)

    def _finish(
        self, inbound: _Inbound, delivery: Delivery, code: AckCode, reasons: list[Hl7Error], *, owns: bool
    ) -> Job:
        """Log a message that applies nothing (AE/AR); a repeat of an owned control id answers as before."""

        async def job(conn: AsyncConnection) -> Reply:
            if owns:
                repeat = await self._repeat(conn, inbound, delivery)
                if repeat is not None:
                    return repeat
            entry = self._entry(inbound, delivery, code, reasons, owns=owns)
            await messagelog.record(conn, entry)
            return self._reply(inbound, code, entry.ack, entry.id)

        return job

    def _apply(self, inbound: _Inbound, delivery: Delivery, mapped: Any, warnings: list[Hl7Error]) -> Job:
        h = inbound.header
        principal = system(
            f"hl7:{delivery.feed or delivery.transport}", RequestInfo(source_address=delivery.source_address)
        )

        async def job(conn: AsyncConnection) -> Reply:
            repeat = await self._repeat(conn, inbound, delivery)
            if repeat is not None:
                return repeat
            message_id = new_object_id()
            effects = Effects()
            code, reasons = AckCode.AA, warnings
            try:
                async with conn.begin_nested():
                    await self._effects(conn, mapped, principal, message_id, effects)
                    effects.audit.append(
                        AuditEntry(
                            AuditAction.CREATE,
                            principal,
                            "Hl7Message",
                            message_id,
                            None,
                            summary=f"{h.message_type}^{h.trigger_event} applied",
                            metadata={"controlId": h.control_id, "effects": effects.as_dict()},
                        )
                    )
                    await append_later(conn, effects.audit)  # the group appends all its entries at once
            except Unappliable as exc:
                code, reasons, effects = AckCode.AE, exc.errors + warnings, Effects()
            entry = self._entry(inbound, delivery, code, reasons, owns=True)
            entry.id, entry.effects = message_id, effects.as_dict() or None
            entry.ack = build_ack(h, code, reasons, ack_control_id=message_id, now=entry.received_at)
            await messagelog.record(conn, entry)
            return self._reply(inbound, code, entry.ack, message_id)

        return job

    async def _effects(self, conn: Any, mapped: Any, principal: Any, message_id: str, effects: Effects) -> None:
        if mapped.patient is None:
            raise Unappliable([Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING, "PID", 1, 3, "no patient identifier")])
        link = await apply_patient(conn, mapped.patient, principal, effects)
        if hasattr(mapped, "results"):
            legacy_ids = await self._legacy(conn)
            await apply_results(
                conn,
                mapped.results,
                mapped.providers,
                link,
                principal,
                sender=mapped.header.sending_facility,
                message_id=message_id,
                effects=effects,
                legacy_ids=legacy_ids,
            )


def _record(entry: messagelog.LogEntry, reply: Reply) -> Job:
    async def job(conn: AsyncConnection) -> Reply:
        await messagelog.record(conn, entry)
        return reply

    return job


async def _all(waits: list[Awaitable[Reply]]) -> list[Reply]:
    return [await w for w in waits]


def _done(reply: Reply) -> asyncio.Future[Reply]:
    future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
    future.set_result(reply)
    return future
