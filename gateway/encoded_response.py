"""A response whose body the handler has already encoded, handed to Litestar ready to send.

Both doors encode their JSON themselves (msgspec, straight from plain dicts). Litestar's
``Response`` then spends its generic work on bytes that need none of it: header
normalisation in ``__init__``, and in ``to_asgi_response`` encoder resolution, media-type
resolution and a render step that returns the bytes unchanged. In-process (alternating runs)
the native GET by id went from 101-102 to 97-98 µs and the FHIR read from 138-140 to 137 µs;
``bench/native_read.py --no-audit`` b/a from 0.384 to 0.392-0.399.

The handlers keep their ``Response`` return annotation, so Litestar still documents the
routes as JSON responses and calls ``to_asgi_response`` as it would for any ``Response``.
Headers and cookies added by an outer layer (none are configured today) are still merged,
the response's own headers taking precedence, as Litestar does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.response.base import ASGIResponse

__all__ = ["EncodedResponse"]


class EncodedResponse(Response[bytes]):
    __slots__ = ()

    def __init__(self, body: bytes, status_code: int, headers: Mapping[str, str] | None, media_type: str) -> None:
        # Response.__init__ is skipped on purpose (see the module docstring); these are the
        # attributes Litestar and our error paths read from a Response.
        self.content = body
        self.status_code = status_code
        self.headers = dict(headers) if headers else {}
        self.media_type = media_type
        self.background = None
        self.cookies = []
        self.encoding = "utf-8"
        self.response_type_encoders = {}

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: Any = None,
        cookies: Iterable[Cookie] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        **_: Any,
    ) -> ASGIResponse:
        merged = {**headers, **self.headers} if headers else self.headers
        return ASGIResponse(
            background=background,
            body=self.content,
            cookies=cookies,
            headers=merged,
            is_head_response=is_head_response,
            media_type=self.media_type,
            status_code=self.status_code,
        )
