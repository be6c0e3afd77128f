"""Writes AuditLog entries in the caller's transaction, chained by SHA-256.

Each entry's ``hash`` covers a canonical JSON of its own fields and ``prevHash``, so
altering, inserting or removing a row breaks the chain at that row. The single
``_AuditHead`` row is read and moved in the same transaction: on PostgreSQL its row
lock (``FOR UPDATE``) serializes concurrent writers into one line; on SQLite the
write transaction (BEGIN IMMEDIATE) already does.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.policy.acl import flatten
from gateway.policy.principal import Principal
from gateway.policy.rules import PatientLink, record_acl
from gateway.store.ids import sequential_object_id
from gateway.store.models import AuditHead, AuditLog, table_of

GENESIS_HASH = "0" * 64

HASHED_FIELDS = (
    "objectId",
    "seq",
    "createdAt",
    "actor",
    "actorName",
    "entityType",
    "entityId",
    "patient",
    "action",
    "summary",
    "metadata",
    "outcome",
    "clientId",
    "sourceAddress",
    "requestId",
    "prevHash",
)
"""The fields covered by ``hash``, in order; changing this list is a chain format change."""


class AuditAction(StrEnum):
    CREATE = "create"
    READ = "read"
    VREAD = "vread"
    HISTORY = "history"
    UPDATE = "update"
    DELETE = "delete"
    SEARCH = "search"
    EXECUTE = "execute"
    LOGIN = "login"
    LOGIN_FAILED = "login-failed"
    LOGOUT = "logout"
    SIGNUP = "signup"
    ACTIVATE = "activate"
    PUBLISH = "publish"
    OAUTH_AUTHORIZE = "oauth-authorize"
    """An authorization code issued after the user's consent (SMART)."""
    OAUTH_TOKEN = "oauth-token"
    OAUTH_REFUSED = "oauth-refused"
    """A refused authorization or token request (bad client, code, verifier, assertion, scope ...)."""
    OAUTH_REVOKE = "oauth-revoke"
    """Tokens revoked: by their client, or because a code or refresh token was replayed."""
    SMART_LAUNCH = "smart-launch"


@dataclass(slots=True)
class AuditEntry:
    action: AuditAction
    principal: Principal
    entity_type: str | None = None
    entity_id: str | None = None
    patient: PatientLink | None = None
    summary: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    outcome: str = "success"


def _numbers(value: Any) -> Any:
    """Integral floats as integers, at any depth: PostgreSQL's JSONB hands ``1e20`` or ``2.0`` back
    as the integer it equals, so only this form survives the round trip the verifier sees."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


_SORTED_PREFIXES = tuple((k, json.dumps(k) + ":") for k in sorted(HASHED_FIELDS))
_escape = json.encoder.encode_basestring_ascii


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
"""What ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` builds on every
call (it makes an encoder per call for non-default options), built once."""


def _dumps(value: Any) -> str:
    return _CANONICAL.encode(value)


def canonical(values: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, ASCII escapes, integral floats as integers (catalog G04).

    Written as ``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` writes
    it, byte for byte (``tests/unit/test_audit_canonical.py`` holds the two side by side), but field
    by field in the fixed sorted order: strings through the same C escaper, other values through
    ``json.dumps`` itself. Every audited write hashes its entries, and this took half the time."""
    parts = []
    for key, prefix in _SORTED_PREFIXES:
        v = values.get(key)
        kind = type(v)
        if kind is str:
            parts.append(prefix + _escape(cast(str, v)))
        elif v is None:
            parts.append(prefix + "null")
        elif kind is int:
            parts.append(prefix + int.__repr__(v))
        else:
            parts.append(prefix + _dumps(v if kind is bool else _numbers(v)))
    return ("{" + ",".join(parts) + "}").encode()


def entry_hash(values: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(values)).hexdigest()


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


_HEAD = table_of(AuditHead)
_LOG = table_of(AuditLog)
# Built once: every audited write runs these, and building them cost more than running them.
_READ_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
_LOCK_HEAD = _READ_HEAD.with_for_update()
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
_INSERT_ENTRIES = insert(_LOG)


async def _lock_head(conn: AsyncConnection) -> tuple[int, str]:
    stmt = _LOCK_HEAD if conn.dialect.name == "postgresql" else _READ_HEAD
    row = (await conn.execute(stmt)).first()
    if row is None:
        await conn.execute(insert(_HEAD), {"id": 1, "seq": 0, "hash": GENESIS_HASH})
        if conn.dialect.name == "postgresql":
            row = (await conn.execute(stmt)).first()
            assert row is not None
            return int(row.seq), str(row.hash)
        return 0, GENESIS_HASH
    return int(row.seq), str(row.hash)


async def append(conn: AsyncConnection, entry: AuditEntry) -> str:
    """Append one entry; returns its hash. Must run inside the transaction it audits."""
    return (await append_many(conn, [entry]))[-1]


async def append_many(conn: AsyncConnection, entries: Sequence[AuditEntry]) -> list[str]:
    """Append entries in order under one head lock, with one multi-row insert; returns their hashes."""
    if not entries:
        return []
    seq, prev = await _lock_head(conn)
    rows, seq, prev = chain_rows(seq, prev, entries)
    await conn.execute(_INSERT_ENTRIES, rows)
    await conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
    return [r["hash"] for r in rows]


_collector: ContextVar[list[AuditEntry] | None] = ContextVar("audit_collector", default=None)


@contextmanager
def collected(into: list[AuditEntry]) -> Iterator[None]:
    """Within this block ``append_later`` puts entries into ``into`` instead of appending them.

    For a group commit (``hl7v2.committer``): the jobs of a group run in one transaction, so
    their entries can be chained under one head lock with one INSERT and one head move at the
    end of the group instead of once per job (on PostgreSQL each of those is a round trip).
    Whoever collects must append them, in order, before that transaction commits."""
    token = _collector.set(into)
    try:
        yield
    finally:
        _collector.reset(token)


async def append_later(conn: AsyncConnection, entries: Sequence[AuditEntry]) -> None:
    """``append_many`` now, or inside ``collected`` by its collector before the same commit."""
    sink = _collector.get()
    if sink is None:
        await append_many(conn, entries)
    else:
        sink.extend(entries)


def _clip(value: str | None, size: int) -> str | None:
    """Client-supplied values (X-Request-Id, a username) are cut to the column size: an over-long
    header must not make the audit write, and with it the request, fail on PostgreSQL."""
    return value if value is None or len(value) <= size else value[:size]


def chain_rows(seq: int, prev: str, entries: Sequence[AuditEntry]) -> tuple[list[dict[str, Any]], int, str]:
    """The AuditLog rows for ``entries`` following head (``seq``, ``prev``); returns (rows, new seq, new head hash)."""
    created = datetime.now(UTC)
    stamp = iso(created)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        seq += 1
        principal = entry.principal
        values: dict[str, Any] = {
            "objectId": sequential_object_id(seq),
            "seq": seq,
            "createdAt": stamp,
            "actor": principal.user_id,
            "actorName": _clip(principal.actor_name, 255),
            "entityType": _clip(entry.entity_type, 64),
            "entityId": _clip(entry.entity_id, 255),
            "patient": entry.patient.patient_id if entry.patient else None,
            "action": entry.action.value,
            "summary": entry.summary,
            "metadata": entry.metadata or None,
            "outcome": entry.outcome,
            "clientId": _clip(principal.info.client_id, 128),
            "sourceAddress": _clip(principal.info.source_address, 64),
            "requestId": _clip(principal.info.request_id, 64),
            "prevHash": prev,
        }
        prev = entry_hash(values)
        acl = record_acl("AuditLog", values, entry.patient)
        rperm, wperm = flatten(acl)
        rows.append(dict(values, createdAt=created, updatedAt=created, hash=prev, ACL=acl, _rperm=rperm, _wperm=wperm))
    return rows, seq, prev
