"""Opaque, signed keyset cursors for ``searchset`` paging.

A cursor names the last row of a page (for ``previous``, the first) by its sort key and
``objectId`` and is bound to the query that produced it (resource type + a digest of the normalized parameters), so
the next page is ``WHERE (key, id) > (last key, last id)`` — stable while rows are
inserted, unlike OFFSET. Format: ``base64url(json) "." base64url(HMAC-SHA256[:16])``;
any change (or a cursor from another query) is a 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import msgspec

from gateway.fhir.outcome import bad_request


@dataclass(frozen=True, slots=True)
class Cursor:
    query: str
    """Digest of the resource type and every non-paging parameter."""
    key: Any
    """Sort value of the last row (ISO string, or None), or None when sorting by id only."""
    last_id: str
    backward: bool = False
    """A ``previous`` link: the rows just before (key, last_id) in the search's order."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"fhir-cursor\x00" + secret.encode()).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]

    def encode(self, cursor: Cursor) -> str:
        payload = msgspec.json.encode([cursor.query, cursor.key, cursor.last_id, cursor.backward])
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, token: str, query: str) -> Cursor:
        try:
            body, _, sig = token.partition(".")
            payload = _unb64(body)
            if not hmac.compare_digest(self._mac(payload), _unb64(sig)):
                raise ValueError("signature")
            got_query, key, last_id, backward = msgspec.json.decode(payload)
        except (ValueError, TypeError, msgspec.DecodeError) as exc:
            raise bad_request("Invalid paging cursor", "_cursor") from exc
        if got_query != query or not isinstance(last_id, str) or not isinstance(backward, bool):
            raise bad_request("The paging cursor belongs to a different search", "_cursor")
        return Cursor(got_query, key, last_id, backward)


def query_digest(resource_type: str, params: list[tuple[str, str]]) -> str:
    canonical = msgspec.json.encode([resource_type, sorted(p for p in params if p[0] != "_cursor")])
    return hashlib.sha256(canonical).hexdigest()[:24]
