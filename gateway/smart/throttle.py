"""Sign-in throttling for the authorize page: per username and per source address.

Password guessing against the SMART sign-in form is slowed by counting *failed*
sign-ins in a sliding window: after ``USER_FAILURES`` failures for one username
(whether or not it exists) or ``ADDRESS_FAILURES`` from one source address, further
attempts are refused without checking the password until the oldest failure leaves
the window. The refusal is the same page for every username, so it tells nothing
about which accounts exist. A correct sign-in clears its username's failures (not
its address's: an attacker must not reset the address count with an account of
their own).

The counts live in the process (each worker counts on its own); that bounds a
guesser to ``workers x USER_FAILURES`` tries per window per account, which is the
purpose, without a database write per failed attempt beyond the audit entry.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_SECONDS = 900
USER_FAILURES = 5
ADDRESS_FAILURES = 20
MAX_KEYS = 100_000
"""Bound on remembered usernames and addresses (oldest forgotten first), so guessing cannot exhaust memory."""


@dataclass
class LoginThrottle:
    window: float = WINDOW_SECONDS
    user_limit: int = USER_FAILURES
    address_limit: int = ADDRESS_FAILURES
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    @staticmethod
    def _keys(account: str, address: str | None) -> tuple[str, str]:
        """``account`` is the caller's stable name for the account tried (a user id, or a normalized name)."""
        return "user:" + account, "addr:" + (address or "?")

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, account: str, address: str | None) -> int:
        """Seconds until a sign-in may be tried again; 0 when it may be tried now."""
        now = self.clock()
        wait = 0.0
        for key, limit in zip(self._keys(account, address), (self.user_limit, self.address_limit), strict=True):
            times = self._recent(key, now)
            if len(times) >= limit:
                wait = max(wait, times[len(times) - limit] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, account: str, address: str | None) -> None:
        now = self.clock()
        for key in self._keys(account, address):
            times = self._recent(key, now)
            if key not in self._failures:
                if len(self._failures) >= MAX_KEYS:
                    self._failures.pop(next(iter(self._failures)))
                self._failures[key] = times
            times.append(now)
            while len(times) > max(self.user_limit, self.address_limit):
                times.popleft()

    def succeeded(self, account: str) -> None:
        self._failures.pop(self._keys(account, None)[0], None)
