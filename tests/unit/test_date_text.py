"""The fast Parse date formatter (msgspec-based) against the standard library's ``isoformat``.

``iso`` slices msgspec's RFC 3339 output for speed; these properties pin it to the plain
``isoformat`` definition it replaced, across zones and fractions (including none).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from gateway.native.codec import iso

zones = st.one_of(
    st.just(UTC),
    st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)
aware = st.builds(
    lambda dt, tz: dt.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30)),
    zones,
)


def reference_iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@given(aware)
def test_parse_iso_matches_isoformat(ts: datetime) -> None:
    assert iso(ts) == reference_iso(ts)


def test_whole_seconds_and_sub_millisecond_fractions() -> None:
    assert iso(datetime(2024, 3, 1, 10, 15, tzinfo=UTC)) == "2024-03-01T10:15:00.000Z"
    assert iso(datetime(2024, 3, 1, 10, 15, 0, 999, tzinfo=UTC)) == "2024-03-01T10:15:00.000Z"
    assert iso(datetime(2024, 3, 1, 10, 15, 0, 123456, tzinfo=UTC)) == "2024-03-01T10:15:00.123Z"
