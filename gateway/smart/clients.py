"""Client registration (``portal-gateway clients add|list|remove``); tests register clients the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select

from gateway.policy.scopes import parse_scopes
from gateway.smart import store
from gateway.smart.server import ClientType, public_key_set
from gateway.store.database import Database


class ClientError(ValueError):
    """A registration the server would refuse to use."""


@dataclass(frozen=True, slots=True)
class Registered:
    client_id: str
    client_type: str
    secret: str | None
    """Shown once, at registration; only its SHA-256 is stored."""


def _check_redirect(uri: str) -> None:
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise ClientError(f"redirect URI {uri!r} must be an absolute http(s) URL without a fragment")


async def add_client(
    db: Database,
    client_id: str,
    *,
    redirect_uris: list[str],
    scope: str,
    client_type: str,
    name: str | None = None,
    jwks: dict[str, Any] | None = None,
    jwks_url: str | None = None,
) -> Registered:
    if not client_id or len(client_id) > 128 or not client_id.isprintable() or " " in client_id:
        raise ClientError("client id must be 1-128 printable characters without spaces")
    if client_type not in ClientType.ALL:
        raise ClientError(f"client type must be one of {', '.join(ClientType.ALL)}")
    try:
        parse_scopes(scope)
    except ValueError as exc:
        raise ClientError(str(exc)) from exc
    for uri in redirect_uris:
        _check_redirect(uri)
    if client_type != ClientType.ASYMMETRIC and not redirect_uris:
        raise ClientError("apps that use the authorization code flow need at least one --redirect-uri")
    if client_type == ClientType.ASYMMETRIC:
        if (jwks is None) == (jwks_url is None):
            raise ClientError("an asymmetric client needs exactly one of --jwks-file or --jwks-url")
        if jwks is not None:
            try:
                public_key_set(jwks)
            except Exception as exc:
                raise ClientError(f"unusable JWKS: {exc}") from exc
        if jwks_url is not None and urlsplit(jwks_url).scheme not in ("https", "http"):
            raise ClientError("--jwks-url must be an http(s) URL")
    secret = store.new_secret() if client_type == ClientType.SYMMETRIC else None
    async with db.write() as conn:
        exists = (
            await conn.execute(select(store.clients_t.c.clientId).where(store.clients_t.c.clientId == client_id))
        ).first()
        if exists is not None:
            raise ClientError(f"client {client_id!r} already exists")
        await conn.execute(
            insert(store.clients_t),
            {
                "clientId": client_id,
                "name": name or client_id,
                "clientType": client_type,
                "secretHash": store.digest(secret) if secret else None,
                "redirectUris": list(redirect_uris),
                "scope": scope,
                "jwks": jwks,
                "jwksUrl": jwks_url,
                "createdAt": store.utcnow(),
                "isActive": True,
            },
        )
    return Registered(client_id, client_type, secret)


async def list_clients(db: Database) -> list[dict[str, Any]]:
    t = store.clients_t
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                t.c.clientId, t.c.name, t.c.clientType, t.c.redirectUris, t.c.scope, t.c.jwksUrl, t.c.createdAt
            ).order_by(t.c.clientId)
        )
        return [dict(r._mapping) for r in rows]


async def remove_client(db: Database, client_id: str) -> bool:
    """Delete a client; its codes and tokens go with it (foreign keys cascade), so its tokens stop working."""
    async with db.write() as conn:
        result = await conn.execute(delete(store.clients_t).where(store.clients_t.c.clientId == client_id))
        return bool(result.rowcount)
