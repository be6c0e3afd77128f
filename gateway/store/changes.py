"""The store's change counters as this request has seen them, for reusing what it read before.

An authenticated GET by id ran two statements on SQLite: the auth counter (may the
remembered session be used? ``gateway.store.sessionmemo``) and the object's row. Each
statement is a read transaction of its own (WAL locks, three system calls, the
driver's bookkeeping), and together they were about a third of the request's time in
process. Migration 0011 adds a counter per class, bumped by triggers on every update
or delete of one of its objects, so one statement now reads every counter
(``read``) and an object read earlier is reused while its class's counter still
reads what it read before that object was fetched (``hotpath.row_by_id``).

Why it is safe:

- A counter moves in the same transaction as the change it counts, and the value
  kept with an object was read *before* the object was fetched. If the counter reads
  the same now, no update or delete of that class committed in between, so the object
  is as it is now.
- The counters a request reads are kept for that request only, in a ``ContextVar``,
  and used later in the same request. The answer is then the store as it was at one
  moment during the request, which is what a read running between two statements
  gives anyway. Under uvicorn each request is a task of its own; an in-process client
  may run requests one after another in one task, so each door's "who is asking" step
  (``NativeContext.principal``, ``fhir.auth.authenticate``) starts with ``forget``.
- A request that writes forgets what it has seen (``forget``, from
  ``Database.write``), so it never reuses an object from before its own write.
- Inserts do not move the counters (migration 0011 says why); a row that is not there
  is never remembered, so a new object is always fetched.

The counters are SQLite's; on PostgreSQL nothing is observed and every read fetches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from contextvars import ContextVar

from gateway.store.models import ClassEpoch, table_of

AUTH = ""
"""The key of ``_AuthEpoch`` among the counters (no class is named with the empty string)."""

Counters = Mapping[str, int]

CLASS_COUNTERS: tuple[str, ...] = tuple(str(c.name) for c in table_of(ClassEpoch).columns if c.name != "id")
"""The classes with a counter column in ``_ClassEpoch`` (migration 0011)."""

_SQL = (
    'SELECT a."value", ' + ", ".join(f'c."{name}"' for name in CLASS_COUNTERS) + ' FROM "_AuthEpoch" a, "_ClassEpoch" c'
)
_AUTH_ONLY_SQL = 'SELECT "value" FROM "_AuthEpoch"'
_NAMES = (AUTH, *CLASS_COUNTERS)

_observed: ContextVar[Counters | None] = ContextVar("observed_counters", default=None)

_last: tuple[tuple[int, ...] | None, Counters] = (None, {})
"""The previous statement's row and its mapping: most requests read the same values as the
one before, and comparing a row is cheaper than building the mapping again."""


def read(driver: sqlite3.Connection) -> Counters | None:
    """Every counter in one statement, remembered as what this request has seen.

    ``None`` on a store older than migration 0010 (nothing is reused there); on one older than
    0011 only the auth counter."""
    global _last
    try:
        rows = driver.execute(_SQL).fetchall()
    except sqlite3.OperationalError:
        try:
            rows = driver.execute(_AUTH_ONLY_SQL).fetchall()
        except sqlite3.OperationalError:
            return None
    if not rows:
        return None
    row = rows[0]
    last_row, counters = _last
    if row != last_row:
        counters = dict(zip(_NAMES, row, strict=False))
        _last = (row, counters)
    _observed.set(counters)
    return counters


def observed() -> Counters | None:
    """The counters this request read last, or ``None`` (none read, or it has written since)."""
    return _observed.get()


def forget() -> None:
    """The calling request is about to write (or has written): what it saw before is no longer
    what it may reuse."""
    _observed.set(None)
