"""Objects reused by a GET by id (``gateway.store.changes``) never outlive a change to them.

On SQLite a repeated GET by id reads the change counters and reuses the object it read
before, without fetching it, while its class's counter is unchanged. Each change here is
made the way another worker would make it: through a connection of its own, straight to
the table. The next request, through either door, must see it. On PostgreSQL nothing is
reused and the same answers come from a fresh fetch every time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store import changes
from gateway.store.classes import CLASSES
from gateway.store.database import Database
from gateway.store.engine import SQLITE_PRAGMAS
from tests.api_support import Api, app_database, run_sql


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    """Every statement the SQLite read path's driver connection runs meanwhile."""
    seen: list[str] = []
    driver = db._driver()
    driver.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        driver.set_trace_callback(None)


async def _alices_result(demo: Api) -> str:
    r = await demo.find("LabResult", "alice")
    assert r.status_code == 200 and r.json()["results"], r.text
    return str(r.json()["results"][0]["objectId"])


async def _read_twice(demo: Api, path: str, who: str = "alice") -> dict[str, Any]:
    """Read, then read again (the second is the one that may reuse); both must agree."""
    first = await demo.get(path, who)
    second = await demo.get(path, who)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json()
    return dict(second.json())


async def test_a_repeated_read_by_id_fetches_nothing_but_the_counters(demo: Api, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the change counters are SQLite's (migration 0011)")
    result = await _alices_result(demo)
    for path in (f"/parse/classes/LabResult/{result}", f"/fhir/Observation/{result}"):
        await demo.get(path, "alice")
        with _statements(app_database(demo)) as seen:
            r = await demo.get(path, "alice")
        assert r.status_code == 200, r.text
        assert len(seen) == 1 and "_ClassEpoch" in seen[0], seen
    # Someone else's result is still refused, though it was read (and kept) for its owner.
    await demo.get(f"/parse/classes/LabResult/{result}", "smith")
    assert (await demo.get(f"/parse/classes/LabResult/{result}", "bob")).status_code == 404
    assert (await demo.get(f"/fhir/Observation/{result}", "bob")).status_code in (403, 404)


async def test_a_value_changed_by_another_worker_is_seen_at_once(demo: Api, other_worker: AsyncEngine) -> None:
    result = await _alices_result(demo)
    native = f"/parse/classes/LabResult/{result}"
    fhir = f"/fhir/Observation/{result}"
    await _read_twice(demo, native)
    await _read_twice(demo, fhir)
    await run_sql(
        other_worker,
        'UPDATE "LabResult" SET "notes" = :n, "version" = "version" + 1 WHERE "objectId" = :id',
        n="changed elsewhere",
        id=result,
    )
    assert (await demo.get(native, "alice")).json()["notes"] == "changed elsewhere"
    observation = (await demo.get(fhir, "alice")).json()
    assert {"text": "changed elsewhere"} in observation["note"], observation


async def test_access_withdrawn_by_another_worker_is_seen_at_once(demo: Api, other_worker: AsyncEngine) -> None:
    result = await _alices_result(demo)
    await _read_twice(demo, f"/parse/classes/LabResult/{result}")
    await _read_twice(demo, f"/fhir/Observation/{result}")
    await run_sql(
        other_worker,
        'UPDATE "LabResult" SET "_rperm" = \'["role:admin"]\', "ACL" = \'{"role:admin": {"read": true}}\' '
        'WHERE "objectId" = :id',
        id=result,
    )
    assert (await demo.get(f"/parse/classes/LabResult/{result}", "alice")).status_code == 404
    assert (await demo.get(f"/fhir/Observation/{result}", "alice")).status_code in (403, 404)


async def test_a_delete_by_another_worker_is_seen_at_once(demo: Api, other_worker: AsyncEngine) -> None:
    result = await _alices_result(demo)
    await _read_twice(demo, f"/parse/classes/LabResult/{result}")
    await _read_twice(demo, f"/fhir/Observation/{result}")
    await run_sql(other_worker, 'DELETE FROM "LabResult" WHERE "objectId" = :id', id=result)
    assert (await demo.get(f"/parse/classes/LabResult/{result}", "alice")).status_code == 404
    assert (await demo.get(f"/fhir/Observation/{result}", "alice")).status_code in (404, 410)


async def test_what_one_request_saw_is_not_reused_by_the_next(
    demo: Api, other_worker: AsyncEngine, backend: str
) -> None:
    """An in-process client such as httpx's ASGI transport runs requests one after another in the
    caller's task, so they share one context; a master-key request reads no counters of its own
    and must not use the ones the previous request read."""
    if backend != "sqlite":
        pytest.skip("counters are SQLite's; and the app's asyncpg pool belongs to the test client's loop")
    result = await _alices_result(demo)
    native, fhir = f"/parse/classes/LabResult/{result}", f"/fhir/Observation/{result}"
    transport = httpx.ASGITransport(app=demo.client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as same_task:
        for note, path in (("later", native), ("later still", fhir)):
            for _ in range(2):
                assert (await same_task.get(path, headers=demo.headers("alice"))).status_code == 200
            await run_sql(other_worker, 'UPDATE "LabResult" SET "notes" = :n WHERE "objectId" = :id', n=note, id=result)
            r = await same_task.get(path, headers=demo.headers(master=True))
            assert r.status_code == 200, r.text
            assert note == (r.json()["notes"] if path == native else r.json()["note"][0]["text"]), r.text


async def test_a_write_forgets_what_the_request_saw(demo: Api, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("counters are SQLite's; and the app's asyncpg pool belongs to the test client's loop")
    result = await _alices_result(demo)
    await demo.get(f"/parse/classes/LabResult/{result}", "alice")
    db = app_database(demo)
    assert changes.observed() is None  # the test client ran that request in a context of its own
    changes.read(db._driver())
    assert changes.observed() is not None
    async with db.write():
        assert changes.observed() is None
    assert changes.observed() is None


async def test_a_write_through_the_gateway_is_seen_by_the_next_read(demo: Api) -> None:
    result = await _alices_result(demo)
    await _read_twice(demo, f"/parse/classes/LabResult/{result}", "smith")
    r = await demo.put(f"/parse/classes/LabResult/{result}", {"notes": "from the portal"}, "smith")
    assert r.status_code == 200, r.text
    assert (await demo.get(f"/parse/classes/LabResult/{result}", "smith")).json()["notes"] == "from the portal"
    assert (await demo.get(f"/parse/classes/LabResult/{result}", "alice")).json()["notes"] == "from the portal"


# ------------------------------------------------------------------ the triggers (SQLite)

CLASS_TABLES = tuple(CLASSES)


def test_every_class_has_a_counter() -> None:
    assert set(changes.CLASS_COUNTERS) == {spec.table.name for spec in CLASSES.values()}


def _counter(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f'SELECT "{table}" FROM "_ClassEpoch"').fetchone()[0])


def _any_row(conn: sqlite3.Connection, table: str) -> str:
    row = conn.execute(f'SELECT "objectId" FROM "{table}" LIMIT 1').fetchone()
    assert row is not None, f"the demo data has no {table} row"
    return str(row[0])


def _update(c: sqlite3.Connection, table: str, oid: str) -> None:
    c.execute(f'UPDATE "{table}" SET "updatedAt" = "updatedAt" WHERE "objectId" = ?', (oid,))


def _update_nothing(c: sqlite3.Connection, table: str, oid: str) -> None:
    c.execute(f'UPDATE "{table}" SET "updatedAt" = "updatedAt" WHERE "objectId" = ?', ("no-such-object",))


def _delete(c: sqlite3.Connection, table: str, oid: str) -> None:
    c.execute(f'DELETE FROM "{table}" WHERE "objectId" = ?', (oid,))


def _insert(c: sqlite3.Connection, table: str, oid: str) -> None:
    c.execute(f'CREATE TEMP TABLE "copy" AS SELECT * FROM "{table}" WHERE "objectId" = ?', (oid,))
    for index in c.execute(f'PRAGMA index_list("{table}")').fetchall():
        if index[2]:  # unique: the copy needs values of its own there
            for column in c.execute(f'PRAGMA index_info("{index[1]}")').fetchall():
                c.execute(f'UPDATE "copy" SET "{column[2]}" = "{column[2]}" || \'-copy\'')
    c.execute(f'INSERT INTO "{table}" SELECT * FROM "copy"')


def _replace(c: sqlite3.Connection, table: str, oid: str) -> None:
    c.execute(f'CREATE TEMP TABLE "copy" AS SELECT * FROM "{table}" WHERE "objectId" = ?', (oid,))
    c.execute(f'INSERT OR REPLACE INTO "{table}" SELECT * FROM "copy"')


CHANGES: dict[str, tuple[bool, Callable[[sqlite3.Connection, str, str], None]]] = {
    "update": (True, _update),
    "update of nothing": (False, _update_nothing),
    "delete": (True, _delete),
    "insert": (False, _insert),
    "replace": (True, _replace),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("table", CLASS_TABLES)
async def test_the_triggers_count_updates_and_deletes_of_every_class(
    demo_database: tuple[str, dict[str, str]], backend: str, table: str, change: str
) -> None:
    if backend != "sqlite":
        pytest.skip("the change counters are SQLite's (migration 0011)")
    url, _ = demo_database
    conn = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
    try:
        for pragma in SQLITE_PRAGMAS:  # as every gateway connection: recursive_triggers on
            conn.execute(pragma)
        conn.execute("PRAGMA foreign_keys=OFF")  # a deleted row's dependants do not matter here
        oid = _any_row(conn, table)
        before = _counter(conn, table)
        others = {t: _counter(conn, t) for t in CLASS_TABLES if t != table}
        bumps, make = CHANGES[change]
        conn.execute("BEGIN IMMEDIATE")
        make(conn, table, oid)
        conn.execute("COMMIT")
        assert (_counter(conn, table) > before) == bumps, (table, change)
        assert {t: _counter(conn, t) for t in others} == others  # only its own class moves
    finally:
        conn.close()


# ------------------------------------------------------------------ pages (remembered statements)

PAGES = {
    "native": "/parse/classes/LabResult?order=-publishedAt&limit=5",
    "fhir": "/fhir/Observation?_sort=-date&_count=5",
}


def _page_ids(door: str, body: dict[str, Any]) -> list[str]:
    if door == "native":
        return [str(r["objectId"]) for r in body["results"]]
    return [str(e["resource"]["id"]) for e in body.get("entry", []) if e["search"]["mode"] == "match"]


@pytest.mark.parametrize("door", sorted(PAGES))
async def test_a_repeated_page_selects_only_ids(demo: Api, backend: str, door: str) -> None:
    if backend != "sqlite":
        pytest.skip("the change counters are SQLite's (migration 0011)")
    first = await _read_twice(demo, PAGES[door])
    with _statements(app_database(demo)) as seen:
        again = await demo.get(PAGES[door], "alice")
    assert again.json() == first
    pages = [s for s in seen if '"LabResult"' in s and "_ClassEpoch" not in s]
    assert len(pages) == 1 and pages[0].startswith('SELECT "LabResult"."objectId" \nFROM'), seen


@pytest.mark.parametrize("door", sorted(PAGES))
async def test_a_page_sees_changes_and_new_rows_by_another_worker_at_once(
    demo: Api, other_worker: AsyncEngine, backend: str, door: str
) -> None:
    ids = _page_ids(door, await _read_twice(demo, PAGES[door]))
    assert len(ids) >= 2, ids
    await run_sql(other_worker, 'UPDATE "LabResult" SET "notes" = :n WHERE "objectId" = :id', n="edited", id=ids[0])
    body = (await demo.get(PAGES[door], "alice")).json()
    if door == "native":
        assert body["results"][0]["notes"] == "edited"
    else:
        assert {"text": "edited"} in body["entry"][0]["resource"]["note"]
    # An INSERT does not move the counter; the page still shows the new row, first (newest).
    await _read_twice(demo, PAGES[door])
    await run_sql(
        other_worker,
        'INSERT INTO "LabResult" ("objectId", "patient", "status", "visibility", "testName", "publishedAt", '
        '"effectiveAt", "createdAt", "updatedAt", "version", "ACL", "_rperm", "_wperm") '
        'SELECT \'newresult1\', "patient", "status", "visibility", \'Inserted elsewhere\', :later, :later, '
        '"createdAt", "updatedAt", 1, "ACL", "_rperm", "_wperm" FROM "LabResult" WHERE "objectId" = :id',
        id=ids[0],
        later="2999-01-01 00:00:00.000000" if backend == "sqlite" else datetime(2999, 1, 1, tzinfo=UTC),
    )
    after = _page_ids(door, (await demo.get(PAGES[door], "alice")).json())
    assert after[0] == "newresult1" and after[1:] == ids[: len(after) - 1], (after, ids)
    # A narrowed ACL drops the row from the page (the ids come from SQL under the policy).
    await run_sql(other_worker, 'UPDATE "LabResult" SET "_rperm" = \'[]\' WHERE "objectId" = :id', id=ids[1])
    assert ids[1] not in _page_ids(door, (await demo.get(PAGES[door], "alice")).json())
