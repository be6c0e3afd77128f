"""Golden-file cases: ``fixtures/fhir/<stem>.native.json`` -> ``<stem>.fhir.json``.

A native file is ``{"class": <Parse class>, "record": {...}, "userRefs": {...}}`` with
datetimes as ISO strings; :func:`load_native` turns the datetime fields back into aware
``datetime`` values, as the store hands them over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "fhir"
DATETIME_FIELDS = frozenset(
    {
        "createdAt", "updatedAt", "effectiveAt", "publishedAt", "startDate", "endDate", "approvedAt",
        "acknowledgedAt", "sentAt", "readAt", "startAt", "endAt",
    }
)  # fmt: skip
SERVER_MANAGED = frozenset({"objectId", "createdAt", "updatedAt", "version", "ACL"})


@dataclass(frozen=True)
class Case:
    stem: str
    native_class: str
    record: dict[str, Any]
    user_refs: dict[str, str] = field(default_factory=dict)

    @property
    def expected_path(self) -> Path:
        return FIXTURES / f"{self.stem}.fhir.json"


def load_native(path: Path) -> Case:
    doc = json.loads(path.read_text())
    record = {
        key: datetime.fromisoformat(value) if key in DATETIME_FIELDS and value is not None else value
        for key, value in doc["record"].items()
    }
    stem = path.name.removesuffix(".native.json")
    return Case(stem, doc["class"], record, doc.get("userRefs", {}))


def all_cases() -> list[Case]:
    return [load_native(p) for p in sorted(FIXTURES.glob("*.native.json"))]


def dump(resource: dict[str, Any]) -> str:
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"
