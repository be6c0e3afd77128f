"""Per-feed API keys for POST /hl7v2 (until SMART backend services exist): only the SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from gateway.store.database import Database
from gateway.store.models import Hl7Feed, table_of
from gateway.store.objects import now

__all__ = ["FeedExists", "add_feed", "authenticate", "key_hash"]

_feeds = table_of(Hl7Feed)


class FeedExists(Exception):
    """A feed with this name is already registered."""


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def add_feed(db: Database, name: str) -> str:
    """Register a feed and return its key (shown once; only its hash is kept)."""
    key = "hl7_" + secrets.token_urlsafe(32)
    try:
        async with db.write() as conn:
            await conn.execute(
                insert(_feeds), {"name": name, "keyHash": key_hash(key), "createdAt": now(), "isActive": True}
            )
    except IntegrityError as exc:
        raise FeedExists(name) from exc
    return key


async def authenticate(db: Database, key: str | None) -> str | None:
    """The feed name for a presented key, or None."""
    if not key:
        return None
    async with db.read() as conn:
        stmt = select(_feeds.c.name).where((_feeds.c.keyHash == key_hash(key)) & _feeds.c.isActive)
        row = (await conn.execute(stmt)).first()
    return None if row is None else str(row.name)
