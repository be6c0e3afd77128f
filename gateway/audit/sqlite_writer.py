"""The read-audit group commit on SQLite: one batch, one worker-thread hop, plain ``sqlite3`` statements.

A batch is BEGIN IMMEDIATE, one lookup of the patients' portal users, the chain head,
one ``executemany`` insert, the head update and COMMIT (the one fsync, ``synchronous=FULL``).
Measured on the loaded CI-sized machine, the same statements through SQLAlchemy Core cost
about 4 ms of Python per batch on top of the ~5 ms COMMIT; read auditing waits for each
batch, so that overhead came straight off read throughput. Values are bound with the
column types' own SQLAlchemy bind processors (from the writer engine's dialect), so the
rows are stored exactly as the ORM path stores them and ``audit verify`` recomputes the
same hashes. The connection comes from ``create_sync_writer`` (WAL, ``synchronous=FULL``,
busy timeout); BEGIN IMMEDIATE serializes the batch with every other writer, so the chain
stays one line.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from gateway.audit.writer import GENESIS_HASH, AuditEntry, chain_rows
from gateway.policy.rules import PatientLink
from gateway.store.engine import create_sync_writer
from gateway.store.models import AuditLog, table_of

_IN_CHUNK = 500
"""Ids per ``IN (...)`` lookup (well under SQLite's bound-parameter limit)."""


class SqliteAuditWriter:
    def __init__(self, url: str) -> None:
        self.engine = create_sync_writer(url)
        table = table_of(AuditLog)
        dialect = self.engine.dialect
        self._columns = tuple(str(c.name) for c in table.columns)
        self._processors: tuple[Callable[[Any], Any] | None, ...] = tuple(
            c.type.bind_processor(dialect) for c in table.columns
        )
        names = ", ".join(f'"{n}"' for n in self._columns)
        marks = ", ".join("?" for _ in self._columns)
        self._insert = f'INSERT INTO "AuditLog" ({names}) VALUES ({marks})'
        self._pooled: Any = None

    def _connection(self) -> sqlite3.Connection:
        if self._pooled is None:
            self._pooled = self.engine.raw_connection()
        driver = self._pooled.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        return driver

    def commit(self, entries: Sequence[AuditEntry]) -> list[str]:
        """Append ``entries`` in one durable transaction; returns their hashes."""
        if not entries:
            return []
        raw = self._connection()
        raw.execute("BEGIN IMMEDIATE")
        try:
            linked = self._with_patient_users(raw, entries)
            head = raw.execute('SELECT "seq", "hash" FROM "_AuditHead" WHERE "id" = 1').fetchone()
            if head is None:
                raw.execute('INSERT INTO "_AuditHead" ("id", "seq", "hash") VALUES (1, 0, ?)', (GENESIS_HASH,))
                seq, prev = 0, GENESIS_HASH
            else:
                seq, prev = int(head[0]), str(head[1])
            rows, seq, prev = chain_rows(seq, prev, linked)
            raw.executemany(self._insert, [self._bind(row) for row in rows])
            raw.execute('UPDATE "_AuditHead" SET "seq" = ?, "hash" = ? WHERE "id" = 1', (seq, prev))
            raw.execute("COMMIT")
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise
        return [str(r["hash"]) for r in rows]

    def _bind(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            proc(row.get(name)) if proc is not None else row.get(name)
            for name, proc in zip(self._columns, self._processors, strict=True)
        )

    @staticmethod
    def _with_patient_users(raw: sqlite3.Connection, entries: Sequence[AuditEntry]) -> list[AuditEntry]:
        """Each patient's portal user (the AuditLog ACL lets that user read the entry)."""
        wanted = sorted({e.patient.patient_id for e in entries if e.patient is not None})
        users: dict[str, str | None] = {}
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            sql = f'SELECT "objectId", "user" FROM "PatientProfile" WHERE "objectId" IN ({marks})'
            users.update({str(oid): user for oid, user in raw.execute(sql, chunk).fetchall()})
        return [
            replace(e, patient=PatientLink(e.patient.patient_id, users.get(e.patient.patient_id)))
            if e.patient is not None
            else e
            for e in entries
        ]

    def close(self) -> None:
        if self._pooled is not None:
            self._pooled.close()
            self._pooled = None
        self.engine.dispose()
