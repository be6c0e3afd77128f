"""``portal-gateway``: serve, seed, db upgrade, openapi, audit verify.

Flags override ``GATEWAY_*`` variables; every command builds one ``Settings``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.settings import Settings, SettingsError
from gateway.smart.cli import clients, keys

if TYPE_CHECKING:
    from gateway.hl7v2.writer_process import WriterProcess

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _demo_master_key(settings: Settings) -> Settings:
    """Demo mode without a key: generate one, keep it in a 0600 file, print only its path."""
    if settings.master_key:
        return settings
    path = Path(settings.signing_key_file).parent / "demo-master-key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    click.echo(f"demo master key stored in {path}")
    return settings.with_(master_key=path.read_text().strip())


@click.group()
def main() -> None:
    """Patient Portal Gateway: Parse-compatible class API, FHIR R4 and HL7v2 over one store."""


@main.command()
@click.option("--host", default=None, help="HTTP host (GATEWAY_HTTP_HOST)")
@click.option("--port", type=int, default=None, help="HTTP port (GATEWAY_HTTP_PORT)")
@click.option("--database-url", default=None, help="GATEWAY_DATABASE_URL")
@click.option("--demo", is_flag=True, help="seed demo data on an empty store")
@click.option("--log-level", default=None)
def serve(host: str | None, port: int | None, database_url: str | None, demo: bool, log_level: str | None) -> None:
    """Apply migrations, optionally seed demo data, and serve HTTP."""
    import uvicorn

    from gateway.app import create_app
    from gateway.store.migrate import upgrade

    settings = _settings(
        http_host=host, http_port=port, database_url=database_url, demo=demo or None, log_level=log_level
    )
    if settings.demo:
        settings = _demo_master_key(settings)
    try:
        settings = settings.checked()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    settings.ensure_dirs()
    upgrade(settings.database_url)
    if settings.demo:
        asyncio.run(_seed_if_empty(settings))
    writer = _fork_hl7_writer(settings)
    app = create_app(settings, mllp=True, checkpoints=True, hl7_writer=writer)
    from gateway.runtime import tune_gc

    tune_gc()
    uvicorn.run(
        app, host=settings.http_host, port=settings.http_port, log_level=settings.log_level.lower(), access_log=False
    )


def _fork_hl7_writer(settings: Settings) -> WriterProcess | None:
    """The HL7 writer process (``gateway.hl7v2.writer_process``), forked now: one thread, no loop yet."""
    if not settings.hl7_writer_process:
        return None
    from gateway.hl7v2.writer_process import WriterProcess

    try:
        return WriterProcess.fork(settings.database_url)
    except RuntimeError as exc:
        click.echo(f"HL7 writer process not started ({exc}); HL7 messages are stored in-process", err=True)
        return None


async def _seed_if_empty(settings: Settings) -> None:
    from gateway.seed import DEMO_PASSWORD, DEMO_USERS, seed_demo, store_is_empty

    records, db = _records(settings)
    try:
        if await store_is_empty(records):
            await seed_demo(records)
            click.echo(f"demo data seeded; password for every demo user: {DEMO_PASSWORD}")
            for user in DEMO_USERS:
                click.echo(f"  {user.email:24} {user.role:9} {user.note}")
        else:
            click.echo("store is not empty: demo data not seeded")
    finally:
        await db.dispose()


def _records(settings: Settings) -> tuple[Any, Any]:
    from gateway.auth.passwords import Passwords
    from gateway.records.service import Records
    from gateway.store.database import Database

    db = Database(settings.database_url)
    return Records(db, settings, Passwords(settings.password_hash_time_cost, settings.password_hash_memory_kib)), db


@main.command()
@click.option("--demo", is_flag=True, required=True, help="seed the demo principals and records")
@click.option("--database-url", default=None)
def seed(demo: bool, database_url: str | None) -> None:
    """Seed demo data into an empty store."""
    from gateway.store.migrate import upgrade

    settings = _settings(database_url=database_url, demo=True)
    settings.ensure_dirs()
    upgrade(settings.database_url)
    asyncio.run(_seed_if_empty(settings))


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--database-url", default=None)
def db_upgrade(database_url: str | None) -> None:
    """Apply all Alembic migrations."""
    from gateway.store.migrate import head_revision, upgrade

    settings = _settings(database_url=database_url)
    settings.ensure_dirs()
    upgrade(settings.database_url)
    click.echo(f"database at revision {head_revision()}")


def openapi_document() -> dict[str, Any]:
    from gateway.app import create_app

    app = create_app(Settings(database_url="sqlite+aiosqlite:///./var/never-opened.db", master_key="x" * 40))
    doc = app.openapi_schema.to_schema()
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "parameters" in operation:
                # Litestar collects path parameters in a set: sort them so the document is stable.
                operation["parameters"].sort(key=lambda p: (p.get("in", ""), p.get("name", "")))
    return doc


def render_openapi() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


@main.command()
@click.option("--check", is_flag=True, help="exit 1 when openapi/openapi.json differs from the app")
def openapi(check: bool) -> None:
    """Regenerate openapi/openapi.json from the app."""
    text = render_openapi()
    if check:
        current = OPENAPI_PATH.read_text() if OPENAPI_PATH.exists() else ""
        if current != text:
            click.echo("openapi/openapi.json is out of date: run `portal-gateway openapi`", err=True)
            sys.exit(1)
        click.echo("openapi/openapi.json is up to date")
        return
    OPENAPI_PATH.parent.mkdir(parents=True, exist_ok=True)
    OPENAPI_PATH.write_text(text)
    click.echo(f"wrote {OPENAPI_PATH}")


@main.group()
def audit() -> None:
    """Audit trail commands."""


@audit.command("verify")
@click.option("--database-url", default=None)
@click.option("--checkpoint-dir", default=None, help="GATEWAY_AUDIT_CHECKPOINT_DIR")
def audit_verify(database_url: str | None, checkpoint_dir: str | None) -> None:
    """Walk the hash chain and check it extends every signed checkpoint; exit 1 naming the first break."""
    from gateway.audit import checkpoints as cps
    from gateway.audit.verify import verify_chain
    from gateway.signing_keys import KeyRing

    settings = _settings(database_url=database_url, audit_checkpoint_dir=checkpoint_dir)
    found: list[cps.Checkpoint] = []
    if cps.files(settings.audit_checkpoint_dir):
        try:
            found = cps.load_all(KeyRing(settings.signing_key_file, create=False), settings.audit_checkpoint_dir)
        except FileNotFoundError as exc:
            click.echo(f"audit checkpoints cannot be verified: {exc}", err=True)
            sys.exit(1)
        except cps.CheckpointError as exc:
            click.echo(f"audit checkpoint BAD: {exc}", err=True)
            sys.exit(1)
    result = asyncio.run(verify_chain(settings.database_url, found))
    if result.ok:
        click.echo(
            f"audit chain intact: {result.checked} entries, head {result.head_hash}; "
            f"extends {result.checkpoints} signed checkpoint(s)"
        )
        if not found:
            click.echo(f"warning: no checkpoints in {settings.audit_checkpoint_dir}", err=True)
        return
    where = f"seq={result.bad_seq}" + (f" objectId={result.bad_id}" if result.bad_id else "")
    click.echo(f"audit chain BROKEN at entry {where}: {result.reason}", err=True)
    sys.exit(1)


@audit.command("checkpoint")
@click.option("--database-url", default=None)
@click.option("--checkpoint-dir", default=None, help="GATEWAY_AUDIT_CHECKPOINT_DIR")
def audit_checkpoint(database_url: str | None, checkpoint_dir: str | None) -> None:
    """Sign the current chain head with the gateway key and write it to the checkpoint directory."""
    from gateway.audit import checkpoints as cps
    from gateway.signing_keys import KeyRing
    from gateway.store.database import Database

    settings = _settings(database_url=database_url, audit_checkpoint_dir=checkpoint_dir)

    async def run() -> cps.Checkpoint | None:
        db = Database(settings.database_url)
        try:
            keys = KeyRing(settings.signing_key_file)
            return await cps.checkpoint_now(db, keys, settings.audit_checkpoint_dir, issuer=settings.base_url)
        finally:
            await db.dispose()

    written = asyncio.run(run())
    if written is None:
        click.echo("no new checkpoint: the chain is empty or the newest checkpoint already holds its head")
        return
    click.echo(f"checkpoint seq={written.seq} hash={written.hash} written to {settings.audit_checkpoint_dir}")


@audit.command("export")
@click.option("--since", "since", required=True, help="YYYY-MM-DD or an ISO 8601 instant (UTC when no offset)")
@click.option(
    "--output", "output", type=click.Path(dir_okay=False, writable=True), default=None, help="default: stdout"
)
@click.option("--database-url", default=None)
def audit_export(since: str, output: str | None, database_url: str | None) -> None:
    """Write the AuditLog entries recorded since SINCE as NDJSON FHIR AuditEvents (oldest first)."""
    from gateway.audit.export import ExportError, export_ndjson, parse_since

    settings = _settings(database_url=database_url)
    try:
        start = parse_since(since)
    except ExportError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    if output is None:
        count = asyncio.run(export_ndjson(settings, start, sys.stdout))
    else:
        with open(output, "w", encoding="utf-8") as fh:
            count = asyncio.run(export_ndjson(settings, start, fh))
    click.echo(f"exported {count} AuditEvent(s)", err=True)


@main.group()
def feeds() -> None:
    """HL7 v2 feeds allowed to POST /hl7v2."""


@feeds.command("add")
@click.argument("name")
@click.option("--database-url", default=None)
def feeds_add(name: str, database_url: str | None) -> None:
    """Register feed NAME and print its API key once (only its SHA-256 is stored)."""
    from gateway.hl7v2.feeds import FeedExists, add_feed
    from gateway.store.database import Database
    from gateway.store.migrate import upgrade

    settings = _settings(database_url=database_url)
    settings.ensure_dirs()
    upgrade(settings.database_url)

    async def run() -> str:
        db = Database(settings.database_url)
        try:
            return await add_feed(db, name)
        finally:
            await db.dispose()

    try:
        key = asyncio.run(run())
    except FeedExists as exc:
        raise click.ClickException(f"feed {name!r} already exists") from exc
    click.echo(f"feed {name} registered; its key (shown once, send it as X-Feed-Key):")
    click.echo(key)


@main.group()
def hl7() -> None:
    """HL7 v2 message log: dead letters and re-processing."""


@hl7.command("dead-letters")
@click.option("--limit", type=int, default=50)
@click.option("--database-url", default=None)
def hl7_dead_letters(limit: int, database_url: str | None) -> None:
    """List the newest AE/AR messages (no message content is printed)."""
    from gateway.hl7v2 import messagelog
    from gateway.store.database import Database

    settings = _settings(database_url=database_url)

    async def run() -> list[dict[str, Any]]:
        db = Database(settings.database_url)
        try:
            async with db.read() as conn:
                return await messagelog.dead_letters(conn, limit)
        finally:
            await db.dispose()

    for row in asyncio.run(run()):
        reasons = "; ".join(f"{r.get('location') or '-'} {r.get('message')}" for r in row.get("reason") or [])
        click.echo(
            f"{row['id']}  {row['receivedAt']:%Y-%m-%dT%H:%M:%SZ}  {row['outcome']}  "
            f"{row.get('sendingFacility') or '-'}  {row.get('controlId') or '-'}  {row['size']}B  {reasons}"
        )


@hl7.command("reprocess")
@click.argument("message_id")
@click.option("--database-url", default=None)
def hl7_reprocess(message_id: str, database_url: str | None) -> None:
    """Run dead letter MESSAGE_ID through ingest again; prints the new outcome."""
    from gateway.hl7v2 import Ingest
    from gateway.store.database import Database

    settings = _settings(database_url=database_url)

    async def run() -> Any:
        db = Database(settings.database_url)
        try:
            return await Ingest(db).reprocess(message_id)
        finally:
            await db.dispose()

    reply = asyncio.run(run())
    if reply is None:
        raise click.ClickException(f"no dead letter {message_id!r}")
    click.echo(f"{reply.code.value} (message {reply.message_id})")
    click.echo(reply.ack.decode("utf-8", "replace").replace("\r", "\n"))
    if reply.code.value != "AA":
        sys.exit(1)


main.add_command(clients)
main.add_command(keys)


if __name__ == "__main__":  # pragma: no cover
    main()
