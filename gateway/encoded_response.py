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
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.exceptions import ImproperlyConfiguredException
from litestar.response.base import ASGIResponse
from litestar.utils.helpers import get_enum_string_value

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
        return ReadyASGIResponse(
            body=self.content,
            status_code=self.status_code or 200,
            headers=merged,
            media_type=get_enum_string_value(self.media_type or "application/json"),
            background=background,
            cookies=cookies,
            is_head_response=is_head_response,
        )


class ReadyASGIResponse(ASGIResponse):
    """``ASGIResponse`` with its header list built in one pass.

    The generic constructor adds each header through ``MutableScopeHeaders`` and then looks
    content-type and content-length up by a linear, lower-casing search before adding them;
    for the three to five headers of a FHIR read that was a tenth of the request's Python
    time (cProfile). The result is the same object: the same raw header list behind
    ``headers``, the same attributes, the same rules for bodiless responses."""

    __slots__ = ()

    def __init__(
        self,
        *,
        body: bytes,
        status_code: int,
        headers: Mapping[str, str],
        media_type: str,
        background: Any = None,
        cookies: Iterable[Cookie] | None = None,
        is_head_response: bool = False,
    ) -> None:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        content_length = len(body)
        if status_code in _NO_BODY or status_code < 200 or is_head_response:
            if body and body != b"null":
                raise ImproperlyConfiguredException(
                    "response content is not supported for HEAD responses and responses with a status code "
                    "that does not allow content (304, 204, < 200)"
                )
            body = b""
        else:
            names = {name for name, _ in raw}
            if b"content-type" not in names:
                ctype = f"{media_type}; charset=utf-8" if media_type.startswith("text/") else media_type
                raw.append((b"content-type", ctype.encode("latin-1")))
            if b"content-length" not in names:
                raw.append((b"content-length", str(content_length).encode("latin-1")))
        self.headers = MutableScopeHeaders({"headers": raw})
        self.background = background
        self.body = body
        self.content_length = content_length
        self._encoded_cookies = tuple(
            cookie.to_encoded_header() for cookie in (cookies or ()) if not cookie.documentation_only
        )
        self.encoding = "utf-8"
        self.is_head_response = is_head_response
        self.status_code = status_code


_NO_BODY = frozenset({204, 304})
