"""``/parse/health`` as Parse Server answers it."""

from __future__ import annotations

from gateway.native.context import NativeContext, NativeResponse
from gateway.native.dispatch import route
from gateway.native.request import NativeRequest


@route("GET", "health")
async def health(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    return NativeResponse({"status": "ok"})
