"""Canonical hashing (catalog G04) and the remaining tamper case of G03 (two entries swapped).

An entry's hash is computed from the values as written and recomputed by ``audit verify``
from the values as the database hands them back, so anything a backend normalizes
(JSONB key order and number forms, text encodings) must not change the canonical form.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from sqlalchemy import select, text

from gateway.audit.verify import _hashed_values, verify_chain
from gateway.audit.writer import AuditAction, AuditEntry, append, canonical, entry_hash
from gateway.policy.principal import RequestInfo, system
from gateway.store.database import Database
from gateway.store.engine import create_engine
from gateway.store.migrate import upgrade_async
from gateway.store.models import AuditHead, AuditLog, User, table_of
from tests.conftest import PG_URL, _nothing, clone_database

_log = table_of(AuditLog)

NFC = unicodedata.normalize("NFC", "Zoë Ångström 東京")
NFD = unicodedata.normalize("NFD", NFC)
TRICKY: dict[str, Any] = {
    "z": {"b": 1, "a": [1.5, 0.1, -0.0, 1e20, 2.5e-7, 12345678901234567890]},
    "nfc": NFC,
    "nfd": NFD,
    "emoji": '🩺 \u2028 "quoted" \\ back',
    "flags": [True, False, None],
    "a": 3,
}


async def _append_tricky(url: str) -> None:
    db = Database(url)
    try:
        async with db.write() as conn:
            principal = system(f"hl7:{NFD}", RequestInfo(source_address="::1", request_id=NFC))
            await append(conn, AuditEntry(AuditAction.EXECUTE, principal, summary=NFD, metadata=TRICKY))
    finally:
        await db.dispose()


async def test_tricky_values_hash_the_same_after_the_round_trip(demo_database: Any) -> None:
    url, _ = demo_database
    await _append_tricky(url)
    result = await verify_chain(url)
    assert result.ok, result.reason
    engine = create_engine(url)
    async with engine.connect() as conn:
        row = (await conn.execute(select(_log).order_by(_log.c.seq.desc()).limit(1))).one()
    await engine.dispose()
    assert row.summary == NFD and row.summary != NFC  # stored as given, not normalized
    assert entry_hash(_hashed_values(row)) == row.hash


def test_canonical_form_ignores_key_order_and_number_spelling() -> None:
    base = {"objectId": "x", "seq": 1, "metadata": {"b": 1, "a": {"y": 2.0, "x": 1e20}}}
    other = {"seq": 1, "metadata": {"a": {"x": 100000000000000000000.0, "y": 2.0}, "b": 1}, "objectId": "x"}
    assert canonical(base) == canonical(other)
    assert canonical({"summary": NFC}) != canonical({"summary": NFD})  # different text, different hash


async def test_swapped_entries_are_named(demo_database: Any) -> None:
    """G03: swap entries k and k+1 (their seq numbers): the first break is named."""
    url, _ = demo_database
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text('UPDATE "AuditLog" SET "seq" = -1 WHERE "seq" = 6'))
        await conn.execute(text('UPDATE "AuditLog" SET "seq" = 6 WHERE "seq" = 7'))
        await conn.execute(text('UPDATE "AuditLog" SET "seq" = 7 WHERE "seq" = -1'))
    await engine.dispose()
    result = await verify_chain(url)
    assert not result.ok and result.bad_seq == 6


async def test_chain_verifies_after_moving_between_backends(backend: str, demo_database: Any, tmp_path: Any) -> None:
    """G04 dump/restore: the chain written on PostgreSQL verifies on SQLite, and the reverse."""
    if not PG_URL:
        pytest.skip("needs GATEWAY_TEST_DATABASE_URL (the other backend)")
    url, _ = demo_database
    await _append_tricky(url)
    cleanup = None
    if backend == "postgresql":
        target = f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"
        await upgrade_async(target)
    else:
        target, _, cleanup = await clone_database("postgresql", "empty", tmp_path, _nothing)
    head, users = table_of(AuditHead), table_of(User)
    source, sink = create_engine(url), create_engine(target)
    try:
        async with source.connect() as conn:
            copied = {
                table: [dict(r) for r in (await conn.execute(select(table))).mappings()]
                for table in (users, _log, head)
            }
        async with sink.begin() as conn:
            for table in (head, _log, users):
                await conn.execute(table.delete())
            for table in (users, _log, head):
                await conn.execute(table.insert(), copied[table])
        result = await verify_chain(target)
    finally:
        await source.dispose()
        await sink.dispose()
        if cleanup is not None:
            await cleanup()
    assert result.ok, result.reason
    assert result.checked == len(copied[_log]) > 20


async def test_deleting_a_user_does_not_rewrite_the_trail(demo: Any, demo_database: Any) -> None:
    """The trail keeps who acted after the account is gone (no ON DELETE SET NULL on a hashed field)."""
    url, _ = demo_database
    r = await demo.post("/parse/users", {"username": "leaver", "password": "pw"})
    assert r.status_code == 201
    user_id, token = r.json()["objectId"], r.json()["sessionToken"]
    headers = {**demo.headers(), "X-Parse-Session-Token": token}
    assert (await demo.client.delete(f"/parse/users/{user_id}", headers=headers)).status_code == 200
    engine = create_engine(url)
    async with engine.connect() as conn:
        actors = (await conn.execute(select(_log.c.actor).where(_log.c.entityId == user_id))).scalars().all()
    await engine.dispose()
    assert actors and all(a == user_id for a in actors)
    assert (await verify_chain(url)).ok
