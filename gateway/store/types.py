"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timezone
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


_SQLITE_TEXTS: dict[datetime, str] = {}
_ISO_TEXTS: dict[datetime, str] = {}
_TEXTS_MAX = 512


def sqlite_utc_text(value: datetime) -> str:
    """What ``UTCDateTime`` stores on SQLite for ``value``, in one step: its bind processor
    chains this type's conversion to naive UTC and the dialect's formatting, two Python calls
    per value, and a 12-result HL7 message binds about ninety datetimes (remembered: see
    ``_remembered``)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return _remembered(_SQLITE_TEXTS, value, _sqlite_text)


def utc_iso(value: datetime) -> str:
    """``value.astimezone(UTC).isoformat()``, as ``_Version.data`` snapshots carry dates
    (remembered: see ``_remembered``)."""
    return _remembered(_ISO_TEXTS, value, _iso_text)


def _sqlite_text(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _iso_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _remembered(memo: dict[datetime, str], value: datetime, convert: Callable[[datetime], str]) -> str:
    """``convert(value)``, remembered by value for fixed-offset datetimes.

    An HL7 message's ninety datetimes are a handful of instants (the message's time, each
    OBX's observation time, the audit stamp) converted again and again. Two fixed-offset
    datetimes are equal exactly when they are the same instant, whose UTC text is the same
    whatever their offsets. Other values are converted every time: within a ``zoneinfo`` zone
    two values an hour apart in a repeated hour compare equal (``fold`` is ignored there), and
    a naive or subclassed value must not share an aware one's entry."""
    if type(value) is not datetime or type(value.tzinfo) is not timezone:
        return convert(value)
    text = memo.get(value)
    if text is None:
        text = convert(value)
        if len(memo) >= _TEXTS_MAX:
            memo.clear()
        memo[value] = text
    return text


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite keeps no zone, so naive values read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        if dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        # PostgreSQL's timestamptz keeps the instant, whatever the offset it is sent with, and the
        # driver converts it: converting here too cost a call per date (ninety an HL7 message).
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
