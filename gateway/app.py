"""``create_app(settings)``: the one place where routers, state and middleware are wired."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Response
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from gateway import __version__
from gateway.auth.passwords import Passwords
from gateway.native.context import NativeContext
from gateway.native.functions import FUNCTIONS
from gateway.native.routes import build_router, http_error
from gateway.operations import live, ready
from gateway.records.service import Records
from gateway.settings import Settings
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


def create_app(settings: Settings, *, db: Database | None = None) -> Litestar:
    database = db or Database(settings.database_url)
    passwords = Passwords(settings.password_hash_time_cost, settings.password_hash_memory_kib)
    records = Records(database, settings, passwords)
    native = NativeContext(settings=settings, db=database, records=records, passwords=passwords, functions=FUNCTIONS)

    async def close_db() -> None:
        await database.dispose()

    return Litestar(
        route_handlers=[build_router(), live, ready],
        state=State({"settings": settings, "db": database, "records": records, "native": native}),
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
        on_shutdown=[close_db],
        exception_handlers={NotFoundException: _not_found},
        debug=False,
        logging_config=None,
    )
