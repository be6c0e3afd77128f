"""Which version of a LabResult is current: status rank first, then the result's own time.

DESIGN.md "Out-of-order results": the result's own time (OBX-14, else OBR-7; OBR-22
breaks ties) orders versions, not arrival, and a status never regresses. Ranks
(FHIR ``Observation.status``): registered < preliminary < final < amended = corrected
< cancelled = entered-in-error. A draft replaces the current row when its rank is
higher, or equal and its time is not older (unknown times count as equal). A draft
that loses is not applied; the message log records it under ``superseded``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["STATUS_RANK", "replaces"]

STATUS_RANK: Mapping[str, int] = {
    "unknown": 0,
    "registered": 0,
    "preliminary": 1,
    "final": 2,
    "amended": 3,
    "corrected": 3,
    "cancelled": 4,
    "entered-in-error": 4,
}


def _not_older(new: datetime | None, cur: datetime | None) -> bool | None:
    """True/False when both are known and differ or are equal; None when unknown."""
    if new is None or cur is None:
        return None
    return new >= cur


def replaces(current: Mapping[str, Any], status: str, effective: datetime | None, reported: datetime | None) -> bool:
    """Whether a draft (status, OBX-14/OBR-7 time, OBR-22 time) becomes the current version."""
    new_rank, cur_rank = STATUS_RANK.get(status, 0), STATUS_RANK.get(str(current.get("status")), 0)
    if new_rank != cur_rank:
        return new_rank > cur_rank
    cur_effective = current.get("effectiveAt")
    if effective is not None and cur_effective is not None and effective != cur_effective:
        return bool(effective > cur_effective)
    cur_reported = _parse((current.get("resultData") or {}).get("reportedAt"))
    return _not_older(reported, cur_reported) is not False


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
