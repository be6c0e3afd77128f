"""``/roles``: Parse's shorthand for ``/classes/_Role``."""

from __future__ import annotations

from gateway.native import objects
from gateway.native.context import NativeContext, NativeResponse
from gateway.native.dispatch import route
from gateway.native.request import NativeRequest


@route("GET", "roles")
async def find_roles(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    return await objects.find_objects(ctx, req, {"className": "_Role"})


@route("POST", "roles")
async def create_role(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    return await objects.create_object(ctx, req, {"className": "_Role"})


@route("GET", "roles/{objectId}")
async def get_role(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    return await objects.get_object(ctx, req, {"className": "_Role", **params})


@route("PUT", "roles/{objectId}")
async def update_role(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    return await objects.update_object(ctx, req, {"className": "_Role", **params})


@route("DELETE", "roles/{objectId}")
async def delete_role(ctx: NativeContext, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    return await objects.delete_object(ctx, req, {"className": "_Role", **params})
