"""leanwrite must store and return exactly what SQLAlchemy's ``execute`` stores and returns.

Differential tests on a migrated SQLite file, through the writer engine the HL7 group commit
uses: each write runs once through ``leanwrite`` and once through ``Connection.execute`` on
twin rows, and the stored text (what ``audit verify`` and every reader see) must be equal
column for column; SELECTs and UPDATEs must give the same rows and row counts. Shapes the
module does not cover must come back as ``None`` (the caller then uses SQLAlchemy).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, bindparam, insert, select, update

from gateway.store import leanwrite
from gateway.store.classes import CLASSES
from gateway.store.engine import create_sync_writer
from gateway.store.migrate import upgrade
from gateway.store.models import AuditLog, Version, table_of

LABS = CLASSES["LabResult"].table
VERSIONS = table_of(Version)
AUDIT = table_of(AuditLog)


def patient_row(now: datetime) -> dict[str, Any]:
    """The patient P1 the test results point at."""
    return {
        "objectId": "P1",
        "medicalRecordNumber": "MRN-1",
        "createdAt": now,
        "updatedAt": now,
        "ACL": {},
        "_rperm": [],
        "_wperm": [],
    }


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Connection]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lean.db'}"
    upgrade(url)
    engine = create_sync_writer(url)
    now = datetime.now(UTC)
    with engine.connect() as connection, connection.begin():
        connection.execute(insert(CLASSES["PatientProfile"].table), patient_row(now))
        yield connection
    engine.dispose()


def _driver(conn: Connection) -> sqlite3.Connection:
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def _stored(conn: Connection, table: Table, key: str, value: Any) -> dict[str, Any]:
    """The row as SQLite holds it (text, not decoded), without its key column."""
    cursor = _driver(conn).execute(f'SELECT * FROM "{table.name}" WHERE "{key}" = ?', (value,))
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    assert row is not None
    return {n: v for n, v in zip(names, row, strict=True) if n != key}


def lab_row(oid: str, when: datetime, **extra: Any) -> dict[str, Any]:
    """A LabResult of patient P1 at ``when``; ``extra`` adds or replaces columns."""
    return {
        "objectId": oid,
        "createdAt": when,
        "updatedAt": when,
        "patient": "P1",
        "orderId": "O-1",
        "testCode": "2345-7",
        "resultValue": "104",
        "effectiveAt": when.astimezone(UTC) - timedelta(hours=1),
        "publishedAt": None,
        "resultData": {"units": "mg/dL", "flags": ["H"], "nested": {"n": 1.5}},
        "ACL": {"role:careTeam_P1": {"read": True}},
        "_rperm": ["role:careTeam_P1"],
        "_wperm": [],
        **extra,
    }


def test_multi_row_insert_stores_what_sqlalchemy_stores(conn: Connection) -> None:
    when = datetime(2026, 3, 1, 10, 15, 0, 120000, tzinfo=UTC)
    lean = [lab_row(f"lean{i:06d}", when + timedelta(seconds=i)) for i in range(3)]
    twin = [lab_row(f"twin{i:06d}", when + timedelta(seconds=i)) for i in range(3)]
    result = leanwrite.run(_driver(conn), insert(LABS), lean, conn.dialect)
    assert result is not None and result.rowcount == 3
    conn.execute(insert(LABS), twin)
    for a, b in zip(lean, twin, strict=True):
        stored = _stored(conn, LABS, "objectId", a["objectId"])
        assert stored == _stored(conn, LABS, "objectId", b["objectId"])
        # the omitted columns got their scalar defaults, as through SQLAlchemy
        assert (stored["status"], stored["visibility"], stored["version"]) == ("preliminary", "shared", 1)


def test_single_row_insert_with_zone_and_whole_seconds(conn: Connection) -> None:
    """A non-UTC zone and a datetime without a fraction are bound exactly as the column type binds them."""
    when = datetime(2026, 3, 1, 5, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=-5)))
    assert leanwrite.run(_driver(conn), insert(LABS), lab_row("leanzone01", when), conn.dialect) is not None
    conn.execute(insert(LABS), lab_row("twinzone01", when))
    assert _stored(conn, LABS, "objectId", "leanzone01") == _stored(conn, LABS, "objectId", "twinzone01")


def test_audit_and_version_rows_match(conn: Connection) -> None:
    when = datetime.now(UTC)

    def audit(oid: str, seq: int) -> dict[str, Any]:
        return {
            "objectId": oid,
            "seq": seq,
            "createdAt": when,
            "updatedAt": when,
            "action": "publish",
            "entityType": "LabResult",
            "entityId": "L1",
            "metadata": {"version": 2, "status": "final"},
            "hash": f"{seq:064d}",
            "prevHash": f"{seq - 1:064d}",
            "ACL": {},
            "_rperm": [],
            "_wperm": [],
        }

    assert leanwrite.run(_driver(conn), insert(AUDIT), [audit("a1", 1)], conn.dialect) is not None
    conn.execute(insert(AUDIT), [audit("a2", 2)])
    lean_row, twin_row = _stored(conn, AUDIT, "objectId", "a1"), _stored(conn, AUDIT, "objectId", "a2")
    assert lean_row["outcome"] == twin_row["outcome"] == "success"
    for name in ("createdAt", "updatedAt", "metadata", "ACL", "_rperm", "action"):
        assert lean_row[name] == twin_row[name], name

    def version(oid: str) -> dict[str, Any]:
        return {"className": "LabResult", "objectId": oid, "version": 1, "data": {"a": [1, "b"]}, "createdAt": when}

    assert leanwrite.run(_driver(conn), insert(VERSIONS), [version("v1")], conn.dialect) is not None
    conn.execute(insert(VERSIONS), [version("v2")])
    lean_v, twin_v = _stored(conn, VERSIONS, "objectId", "v1"), _stored(conn, VERSIONS, "objectId", "v2")
    lean_v.pop("id"), twin_v.pop("id")
    assert lean_v == twin_v and lean_v["deleted"] == 0


def test_select_and_update_match_execute(conn: Connection) -> None:
    when = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    conn.execute(insert(LABS), [lab_row(f"sel{i:07d}", when + timedelta(minutes=i)) for i in range(4)])
    driver, dialect = _driver(conn), conn.dialect
    by_ids = select(LABS).where(LABS.c.objectId.in_(bindparam("ids", expanding=True)))
    for ids in (["sel0000000", "sel0000002"], ["sel0000001"], ["nothing"]):
        lean = leanwrite.run(driver, by_ids, {"ids": ids}, dialect)
        assert lean is not None
        assert lean.mappings().all() == [dict(r) for r in conn.execute(by_ids, {"ids": ids}).mappings()]
    keyed = select(LABS.c.objectId, LABS.c.effectiveAt).where(LABS.c.orderId == bindparam("order"))
    first = leanwrite.run(driver, keyed, {"order": "O-1"}, dialect)
    expected = conn.execute(keyed, {"order": "O-1"}).first()
    assert first is not None and expected is not None
    row = first.first()
    assert row is not None and (row.objectId, row.effectiveAt) == (expected.objectId, expected.effectiveAt)
    assert row._mapping == dict(expected._mapping)
    with pytest.raises(AttributeError):
        _ = row.nope
    embedded = select(LABS.c.objectId).where(LABS.c.objectId == "sel0000003")
    assert leanwrite.run(driver, embedded, None, dialect).scalar() == "sel0000003"  # type: ignore[union-attr]

    change = update(LABS).where(LABS.c.orderId == "O-1").values(status="final", updatedAt=when + timedelta(days=1))
    result = leanwrite.run(driver, change, None, dialect)
    assert result is not None and result.rowcount == 4
    stored = _stored(conn, LABS, "objectId", "sel0000001")
    conn.execute(update(LABS).where(LABS.c.objectId == "sel0000001").values(updatedAt=when + timedelta(days=1)))
    assert _stored(conn, LABS, "objectId", "sel0000001") == stored


def test_shapes_it_does_not_cover_fall_back(conn: Connection) -> None:
    driver, dialect = _driver(conn), conn.dialect
    when = datetime.now(UTC)
    returning = insert(LABS).returning(LABS.c.objectId)
    assert leanwrite.run(driver, returning, [lab_row("ret0000001", when)], dialect) is None
    ragged = [lab_row("rag0000001", when), {**lab_row("rag0000002", when), "notes": "x"}]
    assert leanwrite.run(driver, insert(LABS), ragged, dialect) is None
    assert leanwrite.run(driver, insert(LABS).values(lab_row("val0000001", when)), None, dialect) is None
    counter = iter(range(1000))
    side = Table(
        "lean_side",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("n", Integer, default=lambda: next(counter)),
    )
    side.create(conn)
    assert leanwrite.run(driver, insert(side), [{"id": 1}], dialect) is None  # a callable default: SQLAlchemy's job
    assert leanwrite.run(driver, insert(side), [{"id": 2, "n": 5}], dialect) is not None
    # nothing was written by the refusals
    assert driver.execute('SELECT count(*) FROM "LabResult"').fetchone() == (0,)


def test_string_column_type_without_processor(conn: Connection) -> None:
    """A plain table (no processors at all) round-trips too."""
    plain = Table("lean_plain", MetaData(), Column("k", String, primary_key=True), Column("v", String))
    plain.create(conn)
    driver = _driver(conn)
    assert leanwrite.run(driver, insert(plain), [{"k": "a", "v": None}, {"k": "b", "v": "x"}], conn.dialect) is not None
    got = leanwrite.run(driver, select(plain).order_by(plain.c.k), None, conn.dialect)
    assert got is not None and [tuple(r) for r in got] == [("a", None), ("b", "x")]
