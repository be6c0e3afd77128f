"""The rows a group's messages will look up, read with one statement per kind before the first runs.

Each ORU looks up five things before it writes: its control id (a repeat?), its patient by MRN,
its ordering providers, the patient's care team and its results by id. On PostgreSQL each is a
round trip and a statement start, one after another on the writer's one connection. For a group
of several messages (``hl7v2.committer``) the committer reads all of them up front instead, one
statement per kind whatever the group's size, and the lookups answer from here. A group of one
reads nothing ahead: the statements would be as many and the round trips no fewer. Nor does
SQLite, whose lookups are no round trip: there reading ahead cost more Python than it saved.
In-process writer on PostgreSQL, groups of 4: 2.40 -> 2.2-2.3 ms CPU and 4.13 -> 3.7-3.8 ms
wall a message.

What keeps this exact (a group must end as its messages would one at a time, which
tests/hl7v2/test_group_equivalence.py checks):

* Every write a job makes to what is read here names the keys it changed (``changed``); a later
  lookup of a changed key goes to the store, which holds the job's write. Marks are kept even
  for writes a savepoint later undoes: a needless read is harmless.
* A lookup of a key another job staged (``hl7v2.staged``) flushes the staged rows and reads the
  store, as before.
* A job that takes real savepoints (re-run after a failure) reads the store itself, like the
  rest of that path; a re-run of the group reads everything again in its new transaction.
* The read takes the same row locks as the lookups it replaces (the results ``FOR UPDATE``
  on PostgreSQL), in the same transaction, so what a job finds is what it would have found.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["GroupReads", "changed", "current", "lookup", "reading"]

_MISSING = object()


class GroupReads:
    """Rows read ahead for a group, by key, and the keys its jobs have changed since."""

    def __init__(self) -> None:
        self._found: dict[Hashable, Any] = {}
        self._changed: set[Hashable] = set()
        self.active = True
        """False while a job that takes real savepoints runs: its lookups read the store."""

    def put(self, key: Hashable, value: Any) -> None:
        self._found[key] = value

    def lookup(self, key: Hashable) -> tuple[bool, Any]:
        """(True, value) when ``key`` was read ahead and nothing in the group has changed it since."""
        if not self.active or key in self._changed:
            return False, None
        value = self._found.get(key, _MISSING)
        return (False, None) if value is _MISSING else (True, value)

    def changed(self, keys: Iterable[Hashable]) -> None:
        """A job wrote what ``keys`` name: later lookups of them read the store."""
        self._changed.update(keys)

    def is_changed(self, key: Hashable) -> bool:
        return key in self._changed


_reads: ContextVar[GroupReads | None] = ContextVar("hl7_group_reads", default=None)


@contextmanager
def reading(into: GroupReads | None) -> Iterator[None]:
    """Within this block ``current`` returns ``into``."""
    token = _reads.set(into)
    try:
        yield
    finally:
        _reads.reset(token)


def current() -> GroupReads | None:
    """The running group's reads (for lookups, ``lookup``; for writes, ``changed``), if any."""
    return _reads.get()


def lookup(key: Hashable) -> tuple[bool, Any]:
    """``GroupReads.lookup`` on the running group's reads; a miss outside a group."""
    reads = _reads.get()
    return reads.lookup(key) if reads is not None else (False, None)


def changed(*keys: Hashable) -> None:
    """``GroupReads.changed`` on the running group's reads, if any."""
    reads = _reads.get()
    if reads is not None:
        reads.changed(keys)
