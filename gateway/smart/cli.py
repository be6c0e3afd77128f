"""``portal-gateway clients add|list|remove`` and ``portal-gateway keys rotate`` (SMART authorization server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.settings import Settings, SettingsError
from gateway.smart.clients import ClientError, add_client, list_clients, remove_client
from gateway.smart.server import ClientType
from gateway.store.database import Database

T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(database_url: str | None, job: Callable[[Database], Awaitable[T]]) -> T:
    from gateway.store.migrate import upgrade

    settings = _settings(database_url=database_url)
    settings.ensure_dirs()
    upgrade(settings.database_url)

    async def run() -> T:
        db = Database(settings.database_url)
        try:
            return await job(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


@click.group()
def clients() -> None:
    """OAuth clients (SMART apps and back ends) of the authorization server."""


@clients.command("add")
@click.argument("client_id")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="exact redirect URI (repeatable)")
@click.option("--scope", required=True, help='the scopes the client may ask for, e.g. "launch/patient patient/*.rs"')
@click.option("--name", default=None, help="shown on the consent page")
@click.option("--public", "kind", flag_value=ClientType.PUBLIC, help="public app (PKCE, no secret)")
@click.option("--secret", "kind", flag_value=ClientType.SYMMETRIC, help="confidential app: generate a secret")
@click.option("--jwks-file", type=click.Path(exists=True, dir_okay=False), default=None, help="public JWKS file")
@click.option("--jwks-url", default=None, help="URL of the client's public JWKS")
@click.option("--database-url", default=None)
def clients_add(
    client_id: str,
    redirect_uris: tuple[str, ...],
    scope: str,
    name: str | None,
    kind: str | None,
    jwks_file: str | None,
    jwks_url: str | None,
    database_url: str | None,
) -> None:
    """Register CLIENT_ID; prints the client secret once when --secret makes one."""
    if jwks_file or jwks_url:
        if kind is not None:
            raise click.UsageError("choose one of --public, --secret, --jwks-file, --jwks-url")
        kind = ClientType.ASYMMETRIC
    if kind is None:
        raise click.UsageError("choose one of --public, --secret, --jwks-file, --jwks-url")
    jwks = None
    if jwks_file:
        try:
            jwks = json.loads(Path(jwks_file).read_text())
        except ValueError as exc:
            raise click.ClickException(f"{jwks_file} is not JSON") from exc
    client_type = kind

    async def job(db: Database) -> Any:
        return await add_client(
            db,
            client_id,
            redirect_uris=list(redirect_uris),
            scope=scope,
            client_type=client_type,
            name=name,
            jwks=jwks,
            jwks_url=jwks_url,
        )

    try:
        registered = _run(database_url, job)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"client {registered.client_id} registered ({registered.client_type})")
    if registered.secret:
        click.echo("client secret (shown once; only its SHA-256 is stored):")
        click.echo(registered.secret)


@clients.command("list")
@click.option("--database-url", default=None)
def clients_list(database_url: str | None) -> None:
    """One line per client: id, type, scopes, redirect URIs (never secrets)."""
    for row in _run(database_url, list_clients):
        uris = ",".join(row["redirectUris"] or []) or "-"
        click.echo(f"{row['clientId']}\t{row['clientType']}\t{row['scope']}\t{uris}")


@clients.command("remove")
@click.argument("client_id")
@click.option("--database-url", default=None)
def clients_remove(client_id: str, database_url: str | None) -> None:
    """Remove CLIENT_ID; its codes and tokens stop working at once."""

    async def job(db: Database) -> bool:
        return await remove_client(db, client_id)

    if not _run(database_url, job):
        raise click.ClickException(f"no client {client_id!r}")
    click.echo(f"client {client_id} removed")


@click.group()
def keys() -> None:
    """The key that signs SMART access and id tokens (GATEWAY_SIGNING_KEY_FILE)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Start signing with a new key; the old one stays published until its tokens have expired. Restart after."""
    from gateway.signing_keys import KeyRing

    settings = _settings()
    overlap = max(settings.access_token_seconds, settings.backend_token_seconds) + 60
    kid = KeyRing(settings.signing_key_file, overlap).rotate()
    click.echo(f"new signing key {kid}")
