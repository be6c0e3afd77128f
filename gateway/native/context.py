"""What a native handler needs: settings, the record service, and the caller's identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.auth import sessions
from gateway.auth.passwords import Passwords
from gateway.errors import ParseCode
from gateway.native.request import NativeRequest, check_app
from gateway.policy.principal import ANONYMOUS, Principal, PrincipalKind, master
from gateway.records.service import Records
from gateway.settings import Settings
from gateway.store import changes
from gateway.store.database import Database

if TYPE_CHECKING:
    from gateway.native.functions import FunctionRegistry


@dataclass(slots=True)
class NativeResponse:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class NativeContext:
    settings: Settings
    db: Database
    records: Records
    passwords: Passwords
    functions: FunctionRegistry

    async def principal(self, req: NativeRequest) -> Principal:
        # Who is asking starts the request: nothing read for an earlier one is reused
        # (``gateway.store.changes``; a session token reads the counters afresh).
        changes.forget()
        is_master = check_app(req, self.settings)
        if is_master:
            return master(req.info)
        if req.session_token is None:
            return Principal(kind=PrincipalKind.ANONYMOUS, info=req.info) if req.info else ANONYMOUS
        async with self.db.read() as conn:
            return await sessions.resolve(conn, req.session_token, req.info)


def parse_error_body(code: ParseCode | int, message: str) -> dict[str, Any]:
    return {"code": int(code), "error": message}
