"""The native route table: (method, path pattern) -> handler, used by HTTP routes and ``/batch``.

Like Medplum's FHIR router, this does not know HTTP: a ``NativeRequest`` goes in, a
``NativeResponse`` comes out. The JS SDK's POST-with-``_method`` form and batch
sub-requests are both answered by looking up the effective method here.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.errors import Invalid, NotFound, ParseCode
from gateway.native.context import NativeContext, NativeResponse
from gateway.native.request import NativeRequest

Handler = Callable[[NativeContext, NativeRequest, dict[str, str]], Awaitable[NativeResponse]]

_TABLE: dict[str, dict[str, Handler]] = {}
_PATTERNS: list[tuple[re.Pattern[str], str]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if pattern not in _TABLE:
            regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
            _PATTERNS.append((re.compile(regex), pattern))
        _TABLE.setdefault(pattern, {})[method] = fn
        return fn

    return register


def match(path: str) -> tuple[str, dict[str, str]]:
    path = path.split("?", 1)[0].strip("/")
    if path.startswith("parse/"):
        path = path[len("parse/") :]
    for regex, pattern in _PATTERNS:
        m = regex.match(path)
        if m:
            return pattern, m.groupdict()
    raise Invalid(f"cannot route {path!r}", parse_code=ParseCode.INVALID_JSON)


async def dispatch(ctx: NativeContext, pattern: str, req: NativeRequest, params: dict[str, str]) -> NativeResponse:
    handler = _TABLE.get(pattern, {}).get(req.method)
    if handler is None:
        raise NotFound(f"Cannot {req.method} /parse/{pattern}", parse_code=ParseCode.INVALID_JSON)
    return await handler(ctx, req, params)


def patterns() -> dict[str, dict[str, Handler]]:
    return _TABLE


__all__ = ["Any", "dispatch", "match", "patterns", "route"]
