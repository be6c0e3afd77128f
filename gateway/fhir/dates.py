"""FHIR date search values (FHIR R4 §3.1.1.4.2 "date"): prefixes and partial dates as ranges.

A value such as ``ge2024-03`` names the half-open range [2024-03-01, 2024-04-01); the
prefix then says how a stored point in time must relate to that range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.fhir.outcome import bad_request

PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb", "ap")
_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?(?P<z>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@dataclass(frozen=True, slots=True)
class DateRange:
    """``prefix`` applied to [``low``, ``high``): aware UTC datetimes."""

    prefix: str
    low: datetime
    high: datetime


def _add_month(value: datetime, months: int) -> datetime:
    index = value.month - 1 + months
    return value.replace(year=value.year + index // 12, month=index % 12 + 1)


def parse_date(raw: str, expression: str) -> DateRange:
    prefix = raw[:2] if raw[:2] in PREFIXES else "eq"
    text = raw[2:] if raw[:2] in PREFIXES else raw
    match = _DATE.match(text)
    if match is None:
        raise bad_request(f"Invalid date search value {raw!r}", expression)
    g = match.groupdict()
    try:
        if g["H"] is None:
            low = datetime(int(g["y"]), int(g["m"] or 1), int(g["d"] or 1), tzinfo=UTC)
            if g["d"]:
                high = low + timedelta(days=1)
            elif g["m"]:
                high = _add_month(low, 1)
            else:
                high = low.replace(year=low.year + 1)
        else:
            stamp = f"{g['y']}-{g['m']}-{g['d']}T{g['H']}:{g['M']}:{g['S'] or '00'}{g['f'] or ''}"
            zone = g["z"] or "Z"
            low = datetime.fromisoformat(stamp + ("+00:00" if zone == "Z" else zone)).astimezone(UTC)
            step = timedelta(seconds=1) if g["S"] else timedelta(minutes=1)
            if g["f"]:
                step = timedelta(milliseconds=1)
            high = low + step
    except ValueError as exc:
        raise bad_request(f"Invalid date search value {raw!r}", expression) from exc
    if prefix == "ap":
        # "approximately": 10% of the distance to now, at least a day (FHIR leaves the width to the server).
        slack = max(timedelta(days=1), abs(datetime.now(UTC) - low) / 10)
        low, high = low - slack, high + slack
    return DateRange(prefix, low, high)
