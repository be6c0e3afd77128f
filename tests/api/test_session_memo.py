"""Remembered sessions (``gateway.store.sessionmemo``) never outlive a change to what they resolve to.

Each change here is made the way another worker would make it: through a connection of its
own, straight to the tables, without the app that remembers the session knowing. The next
request must see it. Runs on SQLite (where sessions are remembered) and PostgreSQL (where
they are not: the same answers, from a fresh lookup every time).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.database import Database
from tests.api_support import Api, app_database, run_sql


async def _own_results(demo: Api, who: str) -> int:
    r = await demo.get("/parse/classes/LabResult", who)
    assert r.status_code == 200, r.text
    return len(r.json()["results"])


async def test_logout_by_another_worker_is_seen_at_once(demo: Api, other_worker: AsyncEngine) -> None:
    assert await _own_results(demo, "alice") > 0
    assert await _own_results(demo, "alice") > 0  # now remembered (on SQLite)
    await run_sql(other_worker, 'DELETE FROM "_Session" WHERE "user" = :u', u=demo.ids["alice:user"])
    r = await demo.get("/parse/classes/LabResult", "alice")
    assert r.status_code == 400 and r.json()["code"] == 209, r.text
    fhir = await demo.client.get("/fhir/Observation", headers={"Authorization": f"Bearer {demo.tokens['alice']}"})
    assert fhir.status_code == 401, fhir.text
    assert await _own_results(demo, "bob") > 0  # another patient's session is untouched


async def test_expiry_set_by_another_worker_is_seen_at_once(demo: Api, other_worker: AsyncEngine, backend: str) -> None:
    assert await _own_results(demo, "bob") > 0
    past = datetime(2020, 1, 1, tzinfo=UTC)
    await run_sql(
        other_worker,
        'UPDATE "_Session" SET "expiresAt" = :past WHERE "user" = :u',
        past=past.strftime("%Y-%m-%d %H:%M:%S.%f") if backend == "sqlite" else past,
        u=demo.ids["bob:user"],
    )
    r = await demo.get("/parse/users/me", "bob")
    assert r.status_code == 400 and r.json()["code"] == 209, r.text


async def test_care_team_removal_by_another_worker_is_seen_at_once(demo: Api, other_worker: AsyncEngine) -> None:
    result = (await demo.get("/parse/classes/LabResult", "alice")).json()["results"][0]["objectId"]
    assert (await demo.get(f"/parse/classes/LabResult/{result}", "smith")).status_code == 200
    assert (await demo.get(f"/parse/classes/LabResult/{result}", "smith")).status_code == 200
    await run_sql(
        other_worker,
        'DELETE FROM "_Join_users_Role" WHERE "relatedId" = :u '
        'AND "owningId" IN (SELECT "objectId" FROM "_Role" WHERE "name" = :role)',
        u=demo.ids["dr.smith:user"],
        role="careTeam_" + demo.ids["alice:patient"],
    )
    r = await demo.get(f"/parse/classes/LabResult/{result}", "smith")
    assert r.status_code == 404 and r.json()["code"] == 101, r.text


async def test_role_granted_by_another_worker_is_seen_at_once(demo: Api, other_worker: AsyncEngine) -> None:
    result = (await demo.get("/parse/classes/LabResult", "bob")).json()["results"][0]["objectId"]
    assert (await demo.get(f"/parse/classes/LabResult/{result}", "smith")).status_code == 404
    await run_sql(
        other_worker,
        'INSERT INTO "_Join_users_Role" ("owningId", "relatedId") '
        'SELECT "objectId", :u FROM "_Role" WHERE "name" = :role',
        u=demo.ids["dr.smith:user"],
        role="careTeam_" + demo.ids["bob:patient"],
    )
    assert (await demo.get(f"/parse/classes/LabResult/{result}", "smith")).status_code == 200


async def test_patient_unlinked_by_another_worker_is_seen_at_once(demo: Api, other_worker: AsyncEngine) -> None:
    assert await _own_results(demo, "alice") > 0
    await run_sql(
        other_worker, 'UPDATE "PatientProfile" SET "user" = NULL WHERE "objectId" = :p', p=demo.ids["alice:patient"]
    )
    assert await _own_results(demo, "alice") == 0


async def test_a_remembered_session_skips_the_session_statement(demo: Api, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("sessions are remembered on SQLite only")
    db = app_database(demo)
    ran: list[str] = []
    driver: sqlite3.Connection = db._driver()
    driver.set_trace_callback(ran.append)
    try:
        await _own_results(demo, "jones")
        first = list(ran)
        ran.clear()
        await _own_results(demo, "jones")
        second = list(ran)
    finally:
        driver.set_trace_callback(None)
    assert any('"_token_hash"' in s for s in first), first
    assert not any('"_token_hash"' in s for s in second), second
    assert any('"_AuthEpoch"' in s for s in second), second
    assert len(db.sessions) >= 1


async def test_no_session_memo_when_turned_off(demo_database: tuple[str, dict[str, str]], backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("sessions are remembered on SQLite only")
    url, users = demo_database
    db = Database(url, session_memo_entries=0)
    try:
        from gateway.auth.sessions import token_digest
        from gateway.store import hotpath

        async with db.read() as conn:
            found = await hotpath.session_by_token(conn, token_digest(users["token:alice@example.org"]))
        assert found is not None and found[1] == users["alice@example.org"]
        assert "patient" in (found[5] or ())
        assert len(db.sessions) == 0
    finally:
        await db.dispose()


async def _epoch(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text('SELECT "value" FROM "_AuthEpoch"'))).scalar_one())


BUMPS = {
    "session revoked": 'DELETE FROM "_Session" WHERE "user" = :alice',
    "session changed": 'UPDATE "_Session" SET "restricted" = "restricted" WHERE "user" = :alice',
    "user renamed": 'UPDATE "_User" SET "username" = \'alice2@example.org\' WHERE "objectId" = :alice',
    "role renamed": 'UPDATE "_Role" SET "name" = \'renamed\' WHERE "name" = \'admin\'',
    "role deleted": 'DELETE FROM "_Role" WHERE "name" = \'admin\'',
    "member added": 'INSERT INTO "_Join_users_Role" ("owningId", "relatedId") '
    'SELECT "objectId", :alice FROM "_Role" WHERE "name" = \'admin\'',
    "member removed": 'DELETE FROM "_Join_users_Role" WHERE "relatedId" = :alice',
    "role nested": 'INSERT INTO "_Join_roles_Role" ("owningId", "relatedId") '
    'SELECT a."objectId", p."objectId" FROM "_Role" a, "_Role" p WHERE a."name" = \'admin\' AND p."name" = \'patient\'',
    "patient unlinked": 'UPDATE "PatientProfile" SET "user" = NULL WHERE "user" = :alice',
    "patient deleted": 'DELETE FROM "PatientProfile" WHERE "user" = :alice',
}

NO_BUMP = {
    "signed in": 'INSERT INTO "_Session" ("objectId", "user", "expiresAt", "restricted", "_token_hash", '
    '"createdAt", "updatedAt", "ACL", "_rperm", "_wperm") SELECT \'newsession\', "user", "expiresAt", '
    '"restricted", \'0123456789abcdef\', "createdAt", "updatedAt", "ACL", "_rperm", "_wperm" '
    'FROM "_Session" WHERE "user" = :alice',
    "profile edited": 'UPDATE "PatientProfile" SET "primaryClinic" = \'North\' WHERE "user" = :alice',
    "email changed": 'UPDATE "_User" SET "email" = \'alice3@example.org\' WHERE "objectId" = :alice',
}


@pytest.mark.parametrize("change", sorted(BUMPS) + sorted(NO_BUMP))
async def test_triggers_bump_the_epoch_on_what_sessions_resolve_to(
    demo_database: tuple[str, dict[str, str]], other_worker: AsyncEngine, backend: str, change: str
) -> None:
    if backend != "sqlite":
        pytest.skip("the epoch triggers are SQLite's (migration 0010)")
    _, users = demo_database
    before = await _epoch(other_worker)
    await run_sql(other_worker, BUMPS.get(change) or NO_BUMP[change], alice=users["alice@example.org"])
    after = await _epoch(other_worker)
    assert (after > before) == (change in BUMPS), (change, before, after)
