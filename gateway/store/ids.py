"""Object ids in Parse's shape: characters from [A-Za-z0-9]; 10 of them, random or derived from a natural
key, or 11 for ids that sort by a sequence or cluster by what is written together."""

from __future__ import annotations

import hashlib
import secrets
import string
from functools import lru_cache

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


_BASE36 = string.digits + string.ascii_lowercase


SEQUENTIAL_ID_LENGTH = OBJECT_ID_LENGTH + 1
"""One longer than random ids, so the two kinds can never collide in one table."""


def sequential_object_id(n: int) -> str:
    """``n`` in base 36, zero-padded to 11 characters: ids that sort (as text) in ``n`` order.

    For append-only rows numbered by their writer (AuditLog ``seq``): each insert lands at
    the right edge of the primary-key index instead of on a random page. Rows written with
    random 10-character ids before (AuditLog before migration 0008) share the table; the
    extra character keeps the two sets disjoint."""
    if not 0 <= n < 36**SEQUENTIAL_ID_LENGTH:
        raise ValueError(f"sequence number out of range: {n}")
    digits = []
    for _ in range(SEQUENTIAL_ID_LENGTH):
        n, r = divmod(n, 36)
        digits.append(_BASE36[r])
    return "".join(reversed(digits))


_BYTE_TO_CHAR = bytes(ord(_ALPHABET[b % len(_ALPHABET)]) for b in range(256))
"""Byte ``b`` of a digest becomes ``_ALPHABET[b % 62]``, for ``bytes.translate`` (one C call per id
instead of a generator step per character; derived ids are made for every HL7 result)."""


def _digest_chars(parts: tuple[str, ...], count: int) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return digest[:count].translate(_BYTE_TO_CHAR).decode("ascii")


def derived_object_id(*parts: str) -> str:
    """Deterministic id from natural-key parts, so re-delivered data updates instead of duplicating."""
    return _digest_chars(parts, OBJECT_ID_LENGTH)


CLUSTERED_ID_LENGTH = OBJECT_ID_LENGTH + 1
"""One longer than random and derived ids, so a clustered id never equals one of those."""
_CLUSTER_CHARS = 5


def clustered_object_id(cluster: tuple[str, ...], *parts: str) -> str:
    """Deterministic id like ``derived_object_id``, whose first characters come from ``cluster`` alone.

    Rows written together (the results of one lab order) then sit side by side in every index
    keyed by their id (the primary key, ``_Version``'s, AuditLog's by entity) instead of one
    random page each. Measured on the HL7 feed, 12 results a message: about 36 index pages
    changed per message with wholly random ids, each a WAL frame and a later checkpoint write;
    with clustered ids a handful, and full ingest over 8 connections went from about 420 to about
    490 messages/s on SQLite.

    Uniqueness: 5 characters name the cluster and 6 the key within it (over ``cluster`` and
    ``parts`` together). Two keys of different clusters collide only if both halves do (about
    one in 62**11); two keys of one cluster one in 62**6 per pair, for clusters of tens of rows."""
    within = CLUSTERED_ID_LENGTH - _CLUSTER_CHARS
    return _cluster_prefix(cluster) + _digest_chars((*cluster, *parts), within)


@lru_cache(maxsize=1024)
def _cluster_prefix(cluster: tuple[str, ...]) -> str:
    """Remembered: the rows of a cluster are written together (a message's twelve results share it)."""
    return _digest_chars(cluster, _CLUSTER_CHARS)


def is_valid_object_id(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 32 and all(c in _ALPHABET or c in "-_" for c in value)
