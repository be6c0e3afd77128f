"""Remembered SELECTs: a read's statement built once per query and caller, not once per request.

Building a page's SELECT from Core expressions and having SQLAlchemy compute its cache
key cost about as much as SQLite spends answering it (about 146 µs against 110 µs for a
20-row page under its ACL sub-select). Yet the statement is a pure function of the query
as sent and of who asks (ACL keys, patient bound, compartment, hidden fields): a door
that can name those inputs keeps the built statement here, and on SQLite its compiled
SQL text and bound values as well, so a repeated query (a portal reloading "my latest
results", an app polling a search) goes straight to the driver.

What may not be remembered, and the doors do not offer: statements whose compiling
consults something that can change between requests without changing the key, i.e.
other classes' permissions (Parse sub-queries, FHIR chains and includes) and the clock
(FHIR ``ap`` dates). Class-level permissions of the searched class itself are checked on
every request, outside the statement. The memo is per process and bounded; an entry
holds only SQL and bound values, never rows.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select

MEMO_SIZE = 2048


@dataclass(slots=True)
class Built:
    """One statement ready to run, with what its door needs again on a repeat."""

    stmt: Select[Any]
    cond: ColumnElement[bool] | None = None
    """The full predicate (policy AND query), for totals counted with the same rows."""
    extra: Any = None
    """Door-specific plan data (e.g. the FHIR search plan the links are made from)."""
    prepared: Any = field(default=None, repr=False)
    """``leanselect``'s compiled form, SQL text and bound values, filled on the first SQLite run."""
    ids: Any = field(default=None, repr=False)
    """The same for the statement with only ``objectId`` selected (``leanselect.fetch_built``)."""


class StatementMemo:
    """A bounded map from a door's key to its ``Built`` statement (oldest entry evicted first)."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._size = size
        self._items: dict[Hashable, Built] = {}

    def get(self, key: Hashable) -> Built | None:
        return self._items.get(key)

    def put(self, key: Hashable, built: Built) -> Built:
        if len(self._items) >= self._size:
            self._items.pop(next(iter(self._items)))
        self._items[key] = built
        return built

    def __len__(self) -> int:
        return len(self._items)
