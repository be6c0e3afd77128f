"""Date texts remembered by value (``store.types``) are exactly the texts converted afresh.

The memo is keyed by the datetime itself, so it is right only where equal keys are the same
instant. These cases pin where that holds (fixed offsets) and where it does not and the
memo must stay out of the way: a repeated local hour in a ``zoneinfo`` zone (two instants an
hour apart compare equal there) and a naive value (never to borrow an aware one's text).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.store import types
from gateway.store.types import sqlite_utc_text, utc_iso


def _sqlite(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


zones = st.one_of(
    st.just(UTC),
    st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
    st.sampled_from([ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin"), ZoneInfo("Australia/Lord_Howe")]),
)
aware = st.builds(
    lambda dt, tz, fold: dt.replace(tzinfo=tz, fold=fold),
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30)),
    zones,
    st.integers(0, 1),
)


@given(st.lists(aware, min_size=1, max_size=30))
def test_every_text_is_the_fresh_conversion(values: list[datetime]) -> None:
    for value in values + values:  # the second pass reads what the first remembered
        assert sqlite_utc_text(value) == _sqlite(value), value
        assert utc_iso(value) == _iso(value), value


def test_a_repeated_hour_is_two_instants() -> None:
    """01:30 on 2026-11-01 happens twice in New York; fold tells which. Within a zone the two
    compare equal, so a value-keyed memo would hand the second the first one's text."""
    zone = ZoneInfo("America/New_York")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=zone)
    second = first.replace(fold=1)
    assert first == second  # the hazard: equal within the zone, an hour apart in UTC
    assert sqlite_utc_text(first) == "2026-11-01 05:30:00.000000"
    assert sqlite_utc_text(second) == "2026-11-01 06:30:00.000000"
    assert utc_iso(first) == "2026-11-01T05:30:00+00:00"
    assert utc_iso(second) == "2026-11-01T06:30:00+00:00"


def test_the_same_instant_in_two_offsets_shares_one_text() -> None:
    utc = datetime(2026, 1, 14, 12, 45, tzinfo=UTC)
    est = datetime(2026, 1, 14, 7, 45, tzinfo=timezone(timedelta(hours=-5)))
    assert sqlite_utc_text(utc) == sqlite_utc_text(est) == "2026-01-14 12:45:00.000000"


def test_a_naive_value_is_refused_even_after_its_aware_twin() -> None:
    aware_value = datetime(2026, 1, 14, 12, 45, tzinfo=UTC)
    sqlite_utc_text(aware_value)
    with pytest.raises(ValueError, match="naive"):
        sqlite_utc_text(aware_value.replace(tzinfo=None))


def test_the_memo_stays_bounded() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(types._TEXTS_MAX * 3):
        value = start + timedelta(seconds=i)
        assert sqlite_utc_text(value) == _sqlite(value)
        assert utc_iso(value) == _iso(value)
    assert len(types._SQLITE_TEXTS) <= types._TEXTS_MAX
    assert len(types._ISO_TEXTS) <= types._TEXTS_MAX
