"""Sessions resolved earlier, used while nothing a session resolves to has changed.

Every authenticated request turns its token into a principal: the session, its user,
their own patient and their roles, five tables in one statement. On SQLite, with the
rest of the request's work around it, that statement cost about 30 µs of a 230 µs
GET by id, for an answer that changes only on logout, revocation, a role or care-team
change or a portal activation.

Those changes bump one counter, ``_AuthEpoch.value``, from triggers on the tables the
answer comes from (migration 0010), so every writer bumps it, whichever process or
code path it is, including another worker's. A resolved session is reused only while
the counter reads what it read when the session was resolved; reading the counter is a
one-row lookup (about a quarter of the session statement in the same conditions).
Parse Server caches sessions too, but for a fixed time, so a session revoked on one
instance stays usable on the others until it ages out; here a revocation is seen by
every process at its next request.

Expiry is still checked on every request by the caller. A token that resolves to no
session is not remembered, so a new session is found the first time it is used.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

Resolved = tuple[str, str, datetime, str, str | None, frozenset[str]]
"""(session id, user id, expiresAt, username, own patient id, role names)."""


class SessionMemo:
    """Least-recently-used ``token digest -> (epoch, resolved session)``, at most ``capacity`` (0: off)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[int, Resolved]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str, epoch: int) -> Resolved | None:
        found = self._entries.get(digest)
        if found is None:
            return None
        if found[0] != epoch:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return found[1]

    def put(self, digest: str, epoch: int, resolved: Resolved) -> None:
        entries = self._entries
        entries[digest] = (epoch, resolved)
        entries.move_to_end(digest)
        if len(entries) > self.capacity:
            entries.popitem(last=False)
