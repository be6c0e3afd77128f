"""leanwrite's asyncpg runner must store and return exactly what SQLAlchemy's ``execute`` does on
PostgreSQL (the HL7 group commit sends its statements through it; ``committer._PgConnection``).

Differential, as tests/unit/test_leanwrite.py is for SQLite: each write runs once through
``run_asyncpg`` on the transaction's own asyncpg connection and once through
``AsyncConnection.execute`` on twin rows; the stored rows (as PostgreSQL renders them to JSON,
so no decoding layer can hide a difference) must be equal, SELECTs and UPDATEs must give the
same rows and counts, and a constraint violation must come out as SQLAlchemy's IntegrityError.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import Conflict
from gateway.store import leanwrite
from gateway.store.classes import CLASSES
from gateway.store.database import Database
from gateway.store.models import Hl7Message, Version, table_of
from tests.unit.test_leanwrite import lab_row, patient_row

LABS = CLASSES["LabResult"].table
VERSIONS = table_of(Version)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[AsyncConnection]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the asyncpg runner is PostgreSQL's")
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        async with db.engine.connect() as connection, connection.begin():
            # through SQLAlchemy first: its adapter opens the transaction the driver calls then join
            await connection.execute(insert(CLASSES["PatientProfile"].table), patient_row(now))
            yield connection
    finally:
        await db.dispose()


async def _driver(conn: AsyncConnection) -> Any:
    return (await conn.get_raw_connection()).driver_connection


async def _stored(conn: AsyncConnection, table: str, key: str, value: Any) -> dict[str, Any]:
    """The row as PostgreSQL renders it to JSON, without its key column."""
    driver = await _driver(conn)
    text = await driver.fetchval(f'SELECT row_to_json(t)::text FROM "{table}" t WHERE "{key}" = $1', value)
    assert text is not None
    import json

    row = json.loads(text)
    row.pop(key)
    return dict(row)


def _lab(oid: str, when: datetime, **extra: Any) -> dict[str, Any]:
    """test_leanwrite's row, with a zone that is not UTC and text JSON must escape."""
    return lab_row(
        oid,
        when,
        effectiveAt=when.astimezone(timezone(timedelta(hours=-5))) - timedelta(hours=1),
        resultData={"units": "mg/dL", "flags": ["H"], "nested": {"n": 1.5}, "text": "é\\u0000x"},
        **extra,
    )


async def test_inserts_store_what_sqlalchemy_stores(conn: AsyncConnection) -> None:
    driver, dialect = await _driver(conn), conn.dialect
    when = datetime(2026, 3, 1, 10, 15, 0, 120000, tzinfo=UTC)
    lean = [_lab(f"lean{i:06d}", when + timedelta(seconds=i)) for i in range(3)]
    twin = [_lab(f"twin{i:06d}", when + timedelta(seconds=i)) for i in range(3)]
    result = await leanwrite.run_asyncpg(driver, insert(LABS), lean, dialect)
    assert result is not None and result.rowcount == 3
    await conn.execute(insert(LABS), twin)
    single = await leanwrite.run_asyncpg(driver, insert(LABS), _lab("leanone001", when), dialect)
    assert single is not None and single.rowcount == 1
    await conn.execute(insert(LABS), _lab("twinone001", when))
    for a, b in [*zip(lean, twin, strict=True), (_lab("leanone001", when), _lab("twinone001", when))]:
        stored = await _stored(conn, "LabResult", "objectId", a["objectId"])
        assert stored == await _stored(conn, "LabResult", "objectId", b["objectId"])
        assert (stored["status"], stored["visibility"], stored["version"]) == ("preliminary", "shared", 1)

    def version(oid: str) -> dict[str, Any]:
        return {"className": "LabResult", "objectId": oid, "version": 1, "data": {"a": [1, "b"]}, "createdAt": when}

    assert await leanwrite.run_asyncpg(driver, insert(VERSIONS), [version("v1")], dialect) is not None
    await conn.execute(insert(VERSIONS), [version("v2")])
    lean_v = await _stored(conn, "_Version", "objectId", "v1")
    twin_v = await _stored(conn, "_Version", "objectId", "v2")
    lean_v.pop("id"), twin_v.pop("id")
    assert lean_v == twin_v and lean_v["deleted"] is False


class _Calls:
    """The transaction's asyncpg connection, noting which of its methods the runner called."""

    def __init__(self, driver: Any) -> None:
        self._driver = driver
        self.called: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.called.append(name)
        return getattr(self._driver, name)


async def test_rows_of_a_multi_row_insert_go_by_copy_and_are_stored_as_execute_stores_them(
    conn: AsyncConnection,
) -> None:
    """A group's staged rows and audit entries are multi-row INSERTs: they go by binary COPY (a third
    less PostgreSQL CPU a row than executemany, measured), with the columns the rows omit given their
    defaults as SQLAlchemy gives them (``deleted``) or left to the server (``_Version.id``'s sequence),
    and bytes, JSON null and NULLs stored as ``execute`` stores them."""
    driver, dialect = await _driver(conn), conn.dialect
    when = datetime(2026, 3, 1, 10, 15, 0, 120000, tzinfo=UTC)
    calls = _Calls(driver)

    def version(oid: str, n: int) -> dict[str, Any]:
        return {"className": "LabResult", "objectId": oid, "version": n, "data": {"a": [1, "é"]}, "createdAt": when}

    lean = [version("copy-v", n) for n in (1, 2, 3)]
    result = await leanwrite.run_asyncpg(calls, insert(VERSIONS), lean, dialect)
    assert result is not None and result.rowcount == 3
    assert "copy_records_to_table" in calls.called and "executemany" not in calls.called
    await conn.execute(insert(VERSIONS), [version("twin-v", n) for n in (1, 2, 3)])
    rendered = await driver.fetch(
        "SELECT \"objectId\", row_to_json(t)::jsonb - 'id' - 'objectId' AS row, id FROM \"_Version\" t "
        "WHERE \"objectId\" IN ('copy-v', 'twin-v') ORDER BY \"objectId\", version"
    )
    copied = [r["row"] for r in rendered if r["objectId"] == "copy-v"]
    assert copied == [r["row"] for r in rendered if r["objectId"] == "twin-v"] and len(copied) == 3
    ids = [r["id"] for r in rendered if r["objectId"] == "copy-v"]
    assert ids == sorted(ids) and len(set(ids)) == 3  # the sequence numbered them, in row order

    log = table_of(Hl7Message)

    def logged(oid: str, raw: bytes) -> dict[str, Any]:
        return {
            "id": oid,
            "receivedAt": when,
            "transport": "mllp",
            "feed": None,
            "sourceAddress": None,
            "sendingApplication": "LAB",
            "sendingFacility": "FAC",
            "controlId": oid,
            "controlKey": oid,
            "messageType": "ORU^R01",
            "digest": "d" * 64,
            "size": len(raw),
            "raw": raw,
            "outcome": "AA",
            "ack": "MSA|AA",
            "reason": None,
            "effects": {"results": ["x"]},
        }

    raws = [b"MSH|^~\\&|\x00\xff\r", b""]
    await leanwrite.run_asyncpg(driver, insert(log), [logged(f"copy-m{i}", r) for i, r in enumerate(raws)], dialect)
    await conn.execute(insert(log), [logged(f"twin-m{i}", r) for i, r in enumerate(raws)])
    for i, raw in enumerate(raws):
        a = await _stored(conn, "_Hl7Message", "id", f"copy-m{i}")
        b = await _stored(conn, "_Hl7Message", "id", f"twin-m{i}")
        assert {k: v for k, v in a.items() if not k.startswith("control")} == {
            k: v for k, v in b.items() if not k.startswith("control")
        }
        assert await driver.fetchval('SELECT raw FROM "_Hl7Message" WHERE id = $1', f"copy-m{i}") == raw


async def test_a_constraint_violation_in_a_copy_is_sqlalchemys_integrity_error(conn: AsyncConnection) -> None:
    """The committer re-runs a group whose staged rows fail to go in (``staged.InsertsFailed``), and
    a unique violation must come out of the COPY as it does from an INSERT."""
    driver, dialect = await _driver(conn), conn.dialect
    when = datetime.now(UTC)
    rows = [_lab("dupcopy001", when), _lab("dupcopy002", when)]
    await leanwrite.run_asyncpg(driver, insert(LABS), rows, dialect)
    with pytest.raises(IntegrityError):
        async with conn.begin_nested():
            await leanwrite.run_asyncpg(driver, insert(LABS), [_lab("dupcopy003", when), rows[1]], dialect)
    assert await driver.fetchval('SELECT count(*) FROM "LabResult"') == 2  # nothing of the failed COPY


async def test_select_and_update_match_execute(conn: AsyncConnection) -> None:
    driver, dialect = await _driver(conn), conn.dialect
    when = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    await conn.execute(insert(LABS), [_lab(f"sel{i:07d}", when + timedelta(minutes=i)) for i in range(4)])
    by_ids = select(LABS).where(LABS.c.objectId.in_(bindparam("ids", expanding=True)))
    for ids in (["sel0000000", "sel0000002"], ["sel0000001"], ["nothing"]):
        lean = await leanwrite.run_asyncpg(driver, by_ids, {"ids": ids}, dialect)
        assert lean is not None
        expected = [dict(r) for r in (await conn.execute(by_ids, {"ids": ids})).mappings()]
        assert sorted(lean.mappings().all(), key=lambda r: r["objectId"]) == sorted(
            expected, key=lambda r: r["objectId"]
        )
    locked = await leanwrite.run_asyncpg(driver, by_ids.with_for_update(), {"ids": ["sel0000003"]}, dialect)
    assert locked is not None and locked.mappings().first()["effectiveAt"] == when + timedelta(minutes=3, hours=-1)  # type: ignore[index]
    embedded = select(LABS.c.objectId).where(LABS.c.objectId == "sel0000003")
    assert (await leanwrite.run_asyncpg(driver, embedded, None, dialect)).scalar() == "sel0000003"  # type: ignore[union-attr]

    change = update(LABS).where(LABS.c.orderId == "O-1").values(status="final", updatedAt=when + timedelta(days=1))
    result = await leanwrite.run_asyncpg(driver, change, None, dialect)
    assert result is not None and result.rowcount == 4
    stored = await _stored(conn, "LabResult", "objectId", "sel0000001")
    await conn.execute(update(LABS).where(LABS.c.objectId == "sel0000001").values(updatedAt=when + timedelta(days=1)))
    assert await _stored(conn, "LabResult", "objectId", "sel0000001") == stored
    none = update(LABS).where(LABS.c.objectId == "nothing").values(status="final")
    assert (await leanwrite.run_asyncpg(driver, none, None, dialect)).rowcount == 0  # type: ignore[union-attr]


async def test_a_constraint_violation_is_sqlalchemys_integrity_error(conn: AsyncConnection) -> None:
    """The committer retries IntegrityError and the store turns a unique violation into Conflict."""
    from gateway.store.objects import _integrity_error

    driver, dialect = await _driver(conn), conn.dialect
    when = datetime.now(UTC)
    assert await leanwrite.run_asyncpg(driver, insert(LABS), [_lab("dup0000001", when)], dialect) is not None
    with pytest.raises(IntegrityError) as raised:
        async with conn.begin_nested():  # as the store's writes do: the savepoint takes the failure back
            await leanwrite.run_asyncpg(driver, insert(LABS), [_lab("dup0000001", when)], dialect)
    assert isinstance(_integrity_error(raised.value), Conflict)
    assert await driver.fetchval('SELECT count(*) FROM "LabResult"') == 1  # the transaction goes on


async def test_shapes_it_does_not_cover_fall_back_without_running(conn: AsyncConnection) -> None:
    driver, dialect = await _driver(conn), conn.dialect
    when = datetime.now(UTC)
    returning = insert(LABS).returning(LABS.c.objectId)
    assert await leanwrite.run_asyncpg(driver, returning, [_lab("ret0000001", when)], dialect) is None
    ragged = [_lab("rag0000001", when), {**_lab("rag0000002", when), "notes": "x"}]
    assert await leanwrite.run_asyncpg(driver, insert(LABS), ragged, dialect) is None
    assert await driver.fetchval('SELECT count(*) FROM "LabResult"') == 0


async def test_a_lost_connection_is_reported_as_sqlalchemy_reports_a_disconnect(
    conn: AsyncConnection, database_url: str
) -> None:
    """The group committer runs a job again on a new connection when its connection was lost
    (``DBAPIError.connection_invalidated``), as SQLAlchemy flags a disconnect on its own path."""
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    other = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql", 1))
    await other.close()
    stmt = select(LABS.c.objectId).where(LABS.c.objectId == bindparam("key"))
    with pytest.raises(DBAPIError) as raised:
        await leanwrite.run_asyncpg(other, stmt, {"key": "x"}, conn.dialect)
    assert raised.value.connection_invalidated
    driver = await _driver(conn)
    with pytest.raises(DBAPIError) as failed:  # a statement error is not a lost connection
        async with conn.begin_nested():
            too_long = _lab("long000001", datetime.now(UTC), status="x" * 100)  # status is VARCHAR(32)
            await leanwrite.run_asyncpg(driver, insert(LABS), [too_long], conn.dialect)
    assert not failed.value.connection_invalidated
