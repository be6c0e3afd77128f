"""HL7 DTM/TS/DT values (HL7 v2.5.1 section 2.A.22 DTM, 2.A.21 DT) -> aware datetimes.

Format: ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``. The precision is kept
(``"day"``, ``"minute"`` ...) because a date-only value is not midnight. A value
without an offset is in the feed's local zone, which the caller passes in
(``ParseOptions.default_tz``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

__all__ = ["Dtm", "parse_dtm"]

_DTM = re.compile(
    r"^(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:\.(?P<f>\d{1,4}))?(?P<tz>[+-]\d{4})?$"
)
_PRECISIONS = ("year", "month", "day", "hour", "minute", "second")


@dataclass(frozen=True)
class Dtm:
    """A parsed HL7 time: the aware instant, its precision, and whether the zone was assumed."""

    value: datetime
    precision: str
    zone_assumed: bool

    def iso(self) -> str:
        """ISO 8601 at the value's precision (date-only values stay dates)."""
        if self.precision == "year":
            return f"{self.value.year:04d}"
        if self.precision == "month":
            return f"{self.value.year:04d}-{self.value.month:02d}"
        if self.precision == "day":
            return self.value.date().isoformat()
        return self.value.isoformat()

    @property
    def date(self) -> date:
        """The calendar date as written (in the value's own zone)."""
        return self.value.date()


@lru_cache(maxsize=2048)
def parse_dtm(text: str, default_tz: tzinfo) -> Dtm:
    """Parse an HL7 DTM; raises ``ValueError`` on anything that is not one.

    Remembered (a ``Dtm`` is immutable): a message states the same few times again and again (each
    OBX-14 of a panel, OBR-7, OBR-22), and parsing them was a tenth of what parsing a message cost."""
    match = _DTM.match(text.strip())
    if not match:
        raise ValueError("not an HL7 date/time (YYYY[MM[DD[HHMM[SS[.SSSS]]]]][+/-ZZZZ])")
    parts = match.groupdict()
    filled = [k for k in ("y", "mo", "d", "h", "mi", "s") if parts[k] is not None]
    fraction = parts["f"] or ""
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    zone: tzinfo = _zone(parts["tz"]) if parts["tz"] else default_tz
    value = datetime(
        int(parts["y"]),
        int(parts["mo"] or 1),
        int(parts["d"] or 1),
        int(parts["h"] or 0),
        int(parts["mi"] or 0),
        int(parts["s"] or 0),
        micro,
        tzinfo=zone,
    )
    return Dtm(value, _PRECISIONS[len(filled) - 1], zone_assumed=not parts["tz"])


@lru_cache(maxsize=128)
def _zone(offset: str) -> timezone:
    """One ``timezone`` per offset (``+HHMM``/``-HHMM``), shared by every value that states it. A
    zone of its own per value cost more than the value when drafts are pickled for the writer
    process: pickle shares an object only by identity, and writes each distinct zone in full."""
    sign = 1 if offset[0] == "+" else -1
    hours, minutes = int(offset[1:3]), int(offset[3:5])
    if hours > 14 or minutes > 59:
        raise ValueError("time zone offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))
