"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

JSONType = JSON().with_variant(JSONB(), "postgresql")
"""JSONB on PostgreSQL (indexable, ``?|`` for ACL checks), JSON text on SQLite."""


def parse_sqlite_utc(value: Any) -> datetime | None:
    """Stored UTC text (no zone) to an aware datetime. Appending the zone before parsing is
    several times faster than ``replace(tzinfo=UTC)`` afterwards and yields the same value;
    text that already carries a zone falls back to converting it."""
    if value is None:
        return None
    if not isinstance(value, str):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
    try:
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:
        ts = datetime.fromisoformat(value)
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def sqlite_utc_text(value: datetime) -> str:
    """What ``UTCDateTime`` stores on SQLite for ``value``, in one step: its bind processor
    chains this type's conversion to naive UTC and the dialect's formatting, two Python calls
    per value, and a 12-result HL7 message binds about ninety datetimes."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite keeps no zone, so naive values read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """On SQLite parse the stored ISO text in one C call instead of the dialect's regex."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return parse_sqlite_utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        ts: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        if ts.tzinfo is None:
            return ts.replace(tzinfo=UTC)
        return ts.astimezone(UTC)
