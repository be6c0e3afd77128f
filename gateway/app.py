"""``create_app(settings)``: the one place where routers, state and middleware are wired."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Litestar, Request, Response
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from gateway import __version__
from gateway.audit.routes import ROUTES as AUDIT_ROUTES
from gateway.auth.passwords import Passwords
from gateway.fhir import build_fhir_router
from gateway.hl7v2.admin import ROUTES as HL7_ADMIN_ROUTES
from gateway.hl7v2.ingest import Ingest
from gateway.hl7v2.mllp import MllpServer
from gateway.hl7v2.routes import hl7v2_ingest
from gateway.hl7v2.writer_process import WriterProcess
from gateway.native.context import NativeContext
from gateway.native.functions import FUNCTIONS
from gateway.native.routes import build_router, http_error
from gateway.operations import live, ready
from gateway.records.service import Records
from gateway.settings import Settings
from gateway.smart.routes import ROUTES as SMART_ROUTES
from gateway.store.database import Database

PARSE_HEADERS = [
    "X-Parse-Master-Key",
    "X-Parse-REST-API-Key",
    "X-Parse-Javascript-Key",
    "X-Parse-Application-Id",
    "X-Parse-Client-Version",
    "X-Parse-Session-Token",
    "X-Requested-With",
    "X-Parse-Revocable-Session",
    "X-Parse-Request-Id",
    "X-Parse-Installation-Id",
    "Content-Type",
    "Pragma",
    "Cache-Control",
    "Authorization",
]


def _not_found(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[Any]:
    """Unrouted paths answer in the format of the door they were aimed at."""
    if request.url.path.startswith("/parse"):
        return http_error(request, exc)
    return Response({"status_code": 404, "detail": "Not Found"}, status_code=404)


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    mllp: bool = False,
    checkpoints: bool = False,
    hl7_writer: WriterProcess | None = None,
) -> Litestar:
    """``mllp=True`` (what ``serve`` passes) also runs the MLLP listener when ``settings.mllp_port`` is not 0;
    ``checkpoints=True`` (also from ``serve``) signs an audit checkpoint every ``audit_checkpoint_seconds``;
    ``hl7_writer`` (forked by ``serve``) stores HL7 v2 messages in a process of its own."""
    database = db or Database(
        settings.database_url,
        read_memo_rows=settings.read_memo_rows,
        session_memo_entries=settings.session_memo_entries,
    )
    passwords = Passwords(settings.password_hash_time_cost, settings.password_hash_memory_kib)
    records = Records(database, settings, passwords)
    native = NativeContext(settings=settings, db=database, records=records, passwords=passwords, functions=FUNCTIONS)
    hl7 = Ingest(database, writer=hl7_writer)
    listener = (
        MllpServer(
            hl7,
            settings.mllp_host,
            settings.mllp_port,
            max_bytes=settings.mllp_max_bytes,
            idle_seconds=settings.mllp_idle_seconds,
            frame_seconds=settings.mllp_frame_seconds,
            allowed_sources=settings.mllp_allowed_sources,
            max_connections=settings.mllp_max_connections,
        )
        if mllp and settings.mllp_port
        else None
    )

    background: list[asyncio.Task[None]] = []
    from gateway.audit import checkpoints as audit_checkpoints

    async def start_mllp() -> None:
        if hl7_writer is not None:
            await hl7_writer.start()
        if listener is not None:
            await listener.start()
        if checkpoints and settings.audit_checkpoint_seconds > 0:
            from gateway.signing_keys import KeyRing

            schedule = audit_checkpoints.run_schedule(
                database,
                KeyRing(settings.signing_key_file),
                settings.audit_checkpoint_dir,
                issuer=settings.base_url,
                every_seconds=settings.audit_checkpoint_seconds,
            )
            background.append(asyncio.get_running_loop().create_task(schedule))

    async def close_db() -> None:
        for task in background:
            task.cancel()
        if background:
            # A last checkpoint on a clean stop: a tail removed while the gateway is down is caught too.
            from gateway.signing_keys import KeyRing

            try:
                keys = KeyRing(settings.signing_key_file)
                await audit_checkpoints.checkpoint_now(
                    database, keys, settings.audit_checkpoint_dir, issuer=settings.base_url
                )
            except Exception:
                audit_checkpoints.log.exception("final audit checkpoint failed")
        if listener is not None:
            await listener.stop()
        if hl7_writer is not None:
            await hl7_writer.close()
        hl7.committer.dispose()
        records.reads.close()
        await database.dispose()

    return Litestar(
        route_handlers=[
            build_router(),
            build_fhir_router(),
            live,
            ready,
            hl7v2_ingest,
            *HL7_ADMIN_ROUTES,
            *AUDIT_ROUTES,
            *SMART_ROUTES,
        ],
        state=State(
            {"settings": settings, "db": database, "records": records, "native": native, "hl7": hl7, "mllp": listener}
        ),
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "PUT", "POST", "DELETE", "OPTIONS"],
            allow_headers=PARSE_HEADERS,
            expose_headers=["X-Parse-Job-Status-Id", "X-Parse-Push-Status-Id", "Location", "ETag"],
        ),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Patient Portal Gateway",
            version=__version__,
            description="Parse-compatible class API, FHIR R4 and HL7v2 doors over one store.",
            path="/schema",
            components=Components(
                security_schemes={
                    "parseApplicationId": SecurityScheme(
                        type="apiKey", name="X-Parse-Application-Id", security_scheme_in="header"
                    ),
                    "parseSessionToken": SecurityScheme(
                        type="apiKey", name="X-Parse-Session-Token", security_scheme_in="header"
                    ),
                    "parseMasterKey": SecurityScheme(
                        type="apiKey", name="X-Parse-Master-Key", security_scheme_in="header"
                    ),
                }
            ),
            render_plugins=[SwaggerRenderPlugin()],
        ),
        on_startup=[start_mllp],
        on_shutdown=[close_db],
        exception_handlers={NotFoundException: _not_found},
        debug=False,
        logging_config=None,
    )
