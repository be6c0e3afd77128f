"""Read auditing: every read or search that returns health data writes AuditLog entries, by group commit.

Both doors reach this module through ``Records`` (``Records.get``, ``find_records``,
``Records.audit_read`` / ``Records.audit_search`` for the FHIR door's own search, vread and
history), so which classes are audited and what an entry holds is decided here only.

Durability (issue #6: "batching after the response is allowed only if no entry can be
lost on a crash"). We do not batch after the response. A read's entries go into a queue
and the request *awaits* the commit of the transaction that holds them; only then does
the door send the data. One drain task writes whatever has queued since its last commit
in a single write transaction (one head lock, one multi-row insert, one fsync with
SQLite's ``synchronous=FULL``): the classic group commit. A crash can therefore lose
only entries of reads whose response was never sent, i.e. nothing that was disclosed.
If the audit transaction fails the read fails too (503): data is never returned unaudited.
Why not write the entry in the read's own transaction: the native read path runs on an
inline ``query_only`` SQLite connection, and a write transaction per read would cost one
fsync per request and serialize all reads behind the SQLite writer lock. Group commit
pays one fsync per batch and lets reads run concurrently while a batch commits
(``bench/audit_read.py`` records the cost).

What counts as health data (HIPAA "PHI"): ``PatientProfile`` and the patient-scoped
classes (``LabResult``, ``TreatmentPlan``, ``Appointment``, ``Message``). Not audited: the
provider directory (``ProviderProfile``, public by design), a user's own ``_User`` row,
``_Session`` and ``_Role`` (account data, no health content). ``AuditLog`` reads *are*
audited (the trail names patients and who saw them; DICOM "Audit Log Used") but the entry
is not attributed to a patient, so a patient's "who accessed my chart" view does not fill
with echoes of looking at itself, and since writing an entry never reads, there is no
recursion: one read request writes a bounded number of entries.

Searches follow the BALP Query pattern: one entry per patient whose data the result
holds (a patient sees the searches that returned their data), each listing the ids
returned for that patient, or, above ``IDS_LISTED``, their count and a SHA-256 digest of
the sorted ids; the effective query is kept base64-encoded in ``metadata.query``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.audit.sqlite_writer import SqliteAuditWriter
from gateway.audit.writer import AuditAction, AuditEntry, append_many
from gateway.errors import Unavailable
from gateway.policy.principal import Principal
from gateway.policy.rules import PatientLink
from gateway.store.classes import PATIENT_SCOPED
from gateway.store.database import Database
from gateway.store.models import PatientProfile, table_of

AUDIT_CLASS = "AuditLog"
HEALTH_CLASSES = frozenset({"PatientProfile", *PATIENT_SCOPED})
"""Classes whose reads are audited with the patient they belong to."""
AUDITED_CLASSES = HEALTH_CLASSES | {AUDIT_CLASS}
IDS_LISTED = 50
"""A search entry lists up to this many ids; above it, a count and a digest."""
GATHER_TURNS = 6
"""Event-loop turns a batch waits before it is taken, so that reads already received join it.

A request whose bytes have arrived needs a few loop turns (uvicorn -> Litestar -> handler)
to reach its audit submit. Taking the batch at once left those for the next commit, and a
commit costs about the same for 3 entries as for 15: the fsync, the B-tree root pages, and,
on SQLite, a reset of every other connection's page cache (WAL change detection), so the
next reads fetch their index pages again (strace: 4.5 pread64 per audited read). Waiting
six turns (bench harness, 16 connections, FHIR read) took audited throughput from about
2,400 to 3,200 requests/s; 1-2 turns gave nothing, 12 no more than 6. It is bounded by
turns, not time: a lone reader waits a few idle turns (microseconds), never a timer."""

_patients = table_of(PatientProfile)
log = logging.getLogger("gateway.audit.reads")


_READ_ACTIONS = {"vread": AuditAction.VREAD, "history": AuditAction.HISTORY}
"""FHIR read interactions recorded under their own action (``AuditEvent.subtype`` vread/history-instance)."""


def is_audited(class_name: str) -> bool:
    return class_name in AUDITED_CLASSES


def patient_of(class_name: str, record: Mapping[str, Any]) -> str | None:
    """The patient a record belongs to (``None`` for AuditLog rows: see the module docstring)."""
    if class_name == "PatientProfile":
        return str(record["objectId"])
    if class_name in PATIENT_SCOPED:
        value = record.get("patient")
        if isinstance(value, str):
            return value or None
        expanded = getattr(value, "record", value)  # an ``include``d pointer (records.service.Expanded)
        if isinstance(expanded, Mapping) and expanded.get("objectId"):
            return str(expanded["objectId"])
    return None


def ids_digest(ids: Iterable[str]) -> str:
    """Order-independent SHA-256 of a set of ids (newline-joined, sorted)."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def encode_query(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


def _id_fields(ids: Sequence[str]) -> tuple[str | None, dict[str, Any]]:
    """(entityId, metadata) for a set of returned ids."""
    if len(ids) == 1:
        return ids[0], {"count": 1}
    if len(ids) <= IDS_LISTED:
        return None, {"count": len(ids), "ids": list(ids)}
    return None, {"count": len(ids), "idsDigest": ids_digest(ids)}


class ReadAuditor:
    """Builds read/search entries and group-commits them; one per ``Records`` (one per app)."""

    def __init__(self, db: Database, *, enabled: bool = True) -> None:
        self.db = db
        self.enabled = enabled
        self._pending: list[tuple[list[AuditEntry], asyncio.Future[None]]] = []
        self._drain: asyncio.Task[None] | None = None
        self._writer: SqliteAuditWriter | None = None
        """SQLite: a one-connection synchronous writer, so a batch is one thread hop."""
        self.batches = 0
        """Transactions committed (tests and the benchmark read it to see the grouping)."""

    # ------------------------------------------------------------ entries

    async def read(
        self,
        principal: Principal,
        class_name: str,
        record: Mapping[str, Any],
        *,
        interaction: str | None = None,
        included: Sequence[tuple[str, Mapping[str, Any]]] = (),
        db: Database | None = None,
    ) -> None:
        """One entry for one record returned (``interaction``: ``vread``/``history`` from the FHIR door;
        ``included``: objects a Parse ``include`` expanded, listed in the entry when they are health data)."""
        if not self.enabled or not is_audited(class_name):
            return
        patient = patient_of(class_name, record)
        action = _READ_ACTIONS.get(interaction or "", AuditAction.READ)
        metadata: dict[str, Any] = {}
        inc = sorted({f"{c}/{r['objectId']}" for c, r in included if c in HEALTH_CLASSES})
        if inc:
            metadata["included"] = inc if len(inc) <= IDS_LISTED else ids_digest(inc)
        entry = AuditEntry(
            action,
            principal,
            class_name,
            str(record["objectId"]),
            PatientLink(patient, None) if patient else None,
            metadata=metadata,
        )
        await self._submit([entry], db)

    async def search(
        self,
        principal: Principal,
        class_name: str,
        records: Sequence[Mapping[str, Any]],
        *,
        query: str | None = None,
        included: Sequence[tuple[str, Mapping[str, Any]]] = (),
        db: Database | None = None,
    ) -> None:
        """Entries for one search: one per patient in the result (one with no patient when it is empty).

        ``included`` are (class, record) pairs a Parse ``include`` added; health records among
        them are listed with their patient's entry, so including a chart is audited too.
        """
        if not self.enabled or not is_audited(class_name):
            return
        by_patient: dict[str | None, list[str]] = {}
        for rec in records:
            by_patient.setdefault(patient_of(class_name, rec), []).append(str(rec["objectId"]))
        extra: dict[str | None, list[str]] = {}
        for inc_class, rec in included:
            if inc_class in HEALTH_CLASSES:
                extra.setdefault(patient_of(inc_class, rec), []).append(f"{inc_class}/{rec['objectId']}")
        for patient in extra:
            by_patient.setdefault(patient, [])
        if not by_patient:
            by_patient[None] = []
        base: dict[str, Any] = {"query": encode_query(query)} if query is not None else {}
        entries: list[AuditEntry] = []
        for patient, ids in by_patient.items():
            entity_id, metadata = _id_fields(ids)
            metadata = {**base, **metadata}
            if patient in extra:
                inc = sorted(set(extra[patient]))
                metadata["included"] = inc if len(inc) <= IDS_LISTED else ids_digest(inc)
            link = PatientLink(patient, None) if patient else None
            entries.append(AuditEntry(AuditAction.SEARCH, principal, class_name, entity_id, link, metadata=metadata))
        await self._submit(entries, db)

    # ------------------------------------------------------------ group commit

    async def _submit(self, entries: list[AuditEntry], db: Database | None = None) -> None:
        """Queue the entries and return once the transaction holding them has committed.

        ``db``: the caller's database handle. When it is not ours, the read runs inside a
        transaction the caller already holds (a FHIR transaction Bundle, a conditional
        interaction: ``gateway.fhir.transaction.BoundDatabase``); the entries are then written
        in that transaction and commit or roll back with it. Queuing them instead would wait
        for a group commit that needs the lock the caller's transaction holds: a deadlock.
        """
        if db is not None and db is not self.db:
            async with db.write() as conn:
                await append_many(conn, await _with_patient_users(conn, entries))
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((entries, done))
        if self._drain is None or self._drain.done():
            self._drain = loop.create_task(self._run())
        await done

    async def _run(self) -> None:
        while self._pending:
            for _ in range(GATHER_TURNS):
                await asyncio.sleep(0)
            batch, self._pending = self._pending, []
            entries = [e for group, _ in batch for e in group]
            started = time.perf_counter()
            try:
                if self.db.dialect == "sqlite":
                    await asyncio.to_thread(self._commit_sqlite, entries)
                else:
                    async with self.db.write() as conn:
                        await append_many(conn, await _with_patient_users(conn, entries))
            except Exception as exc:  # the reads waiting on this batch fail closed
                log.exception("read audit: a batch of %d entries could not be committed", len(entries))
                error = Unavailable("The access could not be recorded in the audit trail; try again.")
                error.__cause__ = exc
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(error)
                continue
            self.batches += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "read audit: %d entries committed in %.1f ms", len(entries), (time.perf_counter() - started) * 1e3
                )
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    def _commit_sqlite(self, entries: list[AuditEntry]) -> None:
        """The whole batch in one thread hop: BEGIN IMMEDIATE, a few statements, COMMIT (one fsync)."""
        if self._writer is None:
            self._writer = SqliteAuditWriter(self.db.url)
        self._writer.commit(entries)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _users_of(rows: Iterable[Any]) -> dict[str, str | None]:
    return {str(r.objectId): r.user for r in rows}


def _relinked(entries: list[AuditEntry], users: Mapping[str, str | None]) -> list[AuditEntry]:
    return [
        replace(e, patient=PatientLink(e.patient.patient_id, users.get(e.patient.patient_id)))
        if e.patient is not None
        else e
        for e in entries
    ]


def _patients_query(entries: list[AuditEntry]) -> Any:
    wanted = sorted({e.patient.patient_id for e in entries if e.patient is not None})
    if not wanted:
        return None
    return select(_patients.c.objectId, _patients.c.user).where(_patients.c.objectId.in_(wanted))


async def _with_patient_users(conn: AsyncConnection, entries: list[AuditEntry]) -> list[AuditEntry]:
    """Fill in each patient's portal user (the AuditLog ACL lets that user read the entry), one query per batch."""
    query = _patients_query(entries)
    if query is None:
        return entries
    return _relinked(entries, _users_of(await conn.execute(query)))
