"""Reading the Parse credentials a request carries in its headers, the same way on every door.

The master key is compared in constant time together with the application id: a key
without the right application id is no key (Parse Server behaves the same).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from gateway.settings import Settings


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality; an unset secret (empty) never matches."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def master_key_presented(settings: Settings, headers: Mapping[str, str]) -> bool | None:
    """None when the request names no master key; else whether the key and application id are right."""
    key = headers.get("x-parse-master-key")
    if key is None:
        return None
    app_id = headers.get("x-parse-application-id") or ""
    return same_secret(app_id, settings.app_id) and same_secret(key, settings.master_key)
