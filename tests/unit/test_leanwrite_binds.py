"""The one-call SQLite bind processors of ``store.leanwrite`` store exactly what the column types' own do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import JSON

from gateway.store import leanwrite
from gateway.store.engine import create_engine, create_sync_writer
from gateway.store.models import AuditLog, LabResult, table_of
from gateway.store.types import UTCDateTime, sqlite_utc_text

_DIALECT = create_sync_writer("sqlite+aiosqlite:///:memory:").dialect
_PG_DIALECT = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none").sync_engine.dialect
"""The app's asyncpg dialect, with its JSON codecs (creating an engine connects to nothing)."""
_TABLES = (table_of(LabResult), table_of(AuditLog))

_DATETIMES = [
    datetime(2026, 1, 14, 7, 45, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2026, 1, 14, 12, 45, 0, 1, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, tzinfo=UTC),
    datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=14))),
    datetime(9999, 12, 31, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2024, 2, 29, 23, 30, 15, 500000, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
]
_JSON: list[Any] = [
    {"a": 1, "b": [1, 2.5, None], "ü": "café \u2603", "nested": {"x": True}},
    [],
    {},
    "text",
    0,
    1.5,
    False,
    ["role:care-team-1", "user:abc", "*"],
    JSON.NULL,
]


def _columns(kind: type) -> list[Any]:
    return [c for t in _TABLES for c in t.columns if isinstance(c.type, kind)]


@pytest.mark.parametrize("column", _columns(UTCDateTime), ids=lambda c: f"{c.table.name}.{c.name}")
def test_utc_datetimes_bind_as_the_type_binds_them(column: Any) -> None:
    general = column.type._cached_bind_processor(_DIALECT)  # what compiled statements use
    fast = leanwrite.bind_processor(column, _DIALECT, general)
    assert fast is sqlite_utc_text
    for value in _DATETIMES:
        assert fast(value) == general(value), value


@pytest.mark.parametrize("dialect", [_DIALECT, _PG_DIALECT], ids=lambda d: str(d.name))
@pytest.mark.parametrize("column", _columns(JSON), ids=lambda c: f"{c.table.name}.{c.name}")
def test_json_binds_as_the_type_binds_it(column: Any, dialect: Any) -> None:
    general = column.type._cached_bind_processor(dialect)  # what compiled statements use
    fast = leanwrite.bind_processor(column, dialect, general)
    assert fast is not general
    for value in _JSON:
        assert fast(value) == general(value), value


def test_a_naive_datetime_is_refused_as_the_type_refuses_it() -> None:
    naive = datetime(2026, 1, 1, 12, 0)
    with pytest.raises(ValueError, match="naive"):
        sqlite_utc_text(naive)
    column = next(iter(_columns(UTCDateTime)))
    with pytest.raises(ValueError, match="naive"):
        column.type._cached_bind_processor(_DIALECT)(naive)


def test_other_dialects_and_types_keep_their_own_processor() -> None:
    column = next(iter(_columns(UTCDateTime)))
    general = column.type._cached_bind_processor(_PG_DIALECT)
    assert leanwrite.bind_processor(column, _PG_DIALECT, general) is general, (
        "aware datetimes go to asyncpg as they are"
    )
    text_column = table_of(LabResult).c.testCode
    assert leanwrite.bind_processor(text_column, _DIALECT, None) is None
