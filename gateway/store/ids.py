"""Object ids in Parse's shape: 10 characters from [A-Za-z0-9], random, or derived from a natural key."""

from __future__ import annotations

import hashlib
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
OBJECT_ID_LENGTH = 10
_UNBIASED = 256 - 256 % len(_ALPHABET)
"""Bytes below this map evenly onto the alphabet (248 = 4 x 62); higher ones are drawn again."""


def new_object_id() -> str:
    """10 characters from the OS CSPRNG, each uniform over [A-Za-z0-9].

    One ``token_bytes`` call per id instead of ``secrets.choice`` per character (ten
    ``getrandom`` calls, about 10 µs): every audited read creates an entry id."""
    chars: list[str] = []
    while True:
        for byte in secrets.token_bytes(16):
            if byte < _UNBIASED:
                chars.append(_ALPHABET[byte % len(_ALPHABET)])
                if len(chars) == OBJECT_ID_LENGTH:
                    return "".join(chars)


def derived_object_id(*parts: str) -> str:
    """Deterministic id from natural-key parts, so re-delivered data updates instead of duplicating."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:OBJECT_ID_LENGTH])


def is_valid_object_id(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 32 and all(c in _ALPHABET or c in "-_" for c in value)
