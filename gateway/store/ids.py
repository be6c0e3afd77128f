"""Object ids in Parse's shape: 10 characters from [A-Za-z0-9], random, or derived from a natural key."""

from __future__ import annotations

import hashlib
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
OBJECT_ID_LENGTH = 10


def new_object_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(OBJECT_ID_LENGTH))


def derived_object_id(*parts: str) -> str:
    """Deterministic id from natural-key parts, so re-delivered data updates instead of duplicating."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:OBJECT_ID_LENGTH])


def is_valid_object_id(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 32 and all(c in _ALPHABET or c in "-_" for c in value)
