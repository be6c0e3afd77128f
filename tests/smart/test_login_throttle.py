"""Sign-in throttling on the authorize page: per account and per source address, no account oracle."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from gateway.smart.throttle import ADDRESS_FAILURES, USER_FAILURES, WINDOW_SECONDS, LoginThrottle
from gateway.store.database import Database
from gateway.store.models import AuditLog, table_of
from tests.smart.support import PASSWORD, USERNAMES, Smart, form_fields


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(smart: Smart) -> Clock:
    clock = Clock()
    smart.client.app.state.smart_login_throttle = LoginThrottle(clock=clock)
    return clock


async def _try(smart: Smart, username: str, password: str) -> Any:
    smart.client.cookies.clear()
    page = await smart.client.get("/oauth/authorize", params=smart.authorize_params())
    fields = form_fields(page.text)
    fields.update(username=username, password=password, action="login")
    return await smart.client.post("/oauth/authorize", data=fields)


def _body(r: Any) -> str:
    """The page without its hidden fields (per-request state, PKCE challenge, CSRF token)."""
    return re.sub(r'<input type="hidden"[^>]*>', "", r.text)


async def test_account_locks_after_failures_and_the_lock_says_nothing_about_existence(smart: Smart) -> None:
    clock = _throttle(smart)
    for _ in range(USER_FAILURES):
        r = await _try(smart, USERNAMES["alice"], "wrong-password")
        assert r.status_code == 401 and "Wrong username or password." in r.text
    locked = await _try(smart, USERNAMES["alice"], PASSWORD)  # even the right password is not checked
    assert locked.status_code == 429
    assert "Too many sign-in attempts. Try again in 15 minutes." in locked.text
    assert 'role="alert"' in locked.text and 'name="password"' in locked.text
    assert int(locked.headers["retry-after"]) == WINDOW_SECONDS

    for _ in range(USER_FAILURES):
        assert (await _try(smart, "nobody@example.org", "wrong-password")).status_code == 401
    ghost = await _try(smart, "nobody@example.org", "wrong-password")
    assert ghost.status_code == 429 and ghost.headers["retry-after"] == locked.headers["retry-after"]
    assert _body(ghost) == _body(locked)

    # another account is free
    assert (await _try(smart, USERNAMES["bob"], PASSWORD)).status_code == 200

    clock.now += WINDOW_SECONDS + 1
    assert (await _try(smart, USERNAMES["alice"], PASSWORD)).status_code == 200


async def test_a_correct_sign_in_clears_the_account_count(smart: Smart) -> None:
    _throttle(smart)
    for _ in range(USER_FAILURES - 1):
        assert (await _try(smart, USERNAMES["alice"], "wrong")).status_code == 401
    assert (await _try(smart, USERNAMES["alice"], PASSWORD)).status_code == 200
    for _ in range(USER_FAILURES - 1):
        assert (await _try(smart, USERNAMES["alice"], "wrong")).status_code == 401
    assert (await _try(smart, USERNAMES["alice"], PASSWORD)).status_code == 200


async def test_one_address_guessing_many_accounts_is_stopped(smart: Smart) -> None:
    _throttle(smart)
    for i in range(ADDRESS_FAILURES):
        assert (await _try(smart, f"guess{i}@example.org", "wrong")).status_code == 401
    # a fresh account name, and even a correct password, from the same address: refused
    assert (await _try(smart, USERNAMES["bob"], PASSWORD)).status_code == 429
    db = Database(smart.url)
    try:
        async with db.read() as conn:
            log = table_of(AuditLog)
            refused = (
                await conn.execute(
                    select(func.count()).where(
                        log.c.action == "login-failed", log.c.summary.like("%too many failed attempts%")
                    )
                )
            ).scalar_one()
    finally:
        await db.dispose()
    assert refused == 1
