"""EncodedResponse: the prebuilt ASGI response carries what Litestar's generic path would."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get
from litestar.testing import TestClient

from gateway.encoded_response import EncodedResponse


@get("/r", response_headers={"X-Layer": "outer", "X-Both": "outer"}, sync_to_thread=False)
def encoded() -> Any:
    return EncodedResponse(b'{"ok":true}', 201, {"X-Both": "own", "Location": "/r/1"}, "application/fhir+json")


def test_body_status_headers_and_layered_headers() -> None:
    with TestClient(Litestar([encoded])) as client:
        r = client.get("/r")
    assert r.status_code == 201 and r.content == b'{"ok":true}'
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert r.headers["content-length"] == str(len(b'{"ok":true}'))
    assert r.headers["location"] == "/r/1"
    assert r.headers["x-layer"] == "outer", "a layer's headers are merged"
    assert r.headers["x-both"] == "own", "the response's own header wins, as in Litestar"


CASES: list[tuple[bytes, int, dict[str, str], str, bool]] = [
    (
        b'{"a":1}',
        200,
        {"ETag": 'W/"2"', "Last-Modified": "Tue, 01 Dec 2026 10:00:00 GMT"},
        "application/fhir+json",
        False,
    ),
    (b'{"a":1}', 201, {"Location": "/fhir/Patient/x/_history/1"}, "application/json; charset=utf-8", False),
    (b"", 204, {"X-Request-Id": "abc"}, "application/json", False),
    (b"", 304, {"ETag": 'W/"3"'}, "application/fhir+json", False),
    (b'{"a":1}', 200, {"Content-Type": "application/x-own"}, "application/json", False),
    (b'{"a":1}', 200, {"content-length": "7"}, "application/json", False),
    (b"hello", 200, {}, "text/plain", False),
    (b"", 200, {"ETag": 'W/"1"'}, "application/fhir+json", True),
]


def test_ready_asgi_response_matches_litestars() -> None:
    """Same raw headers, body, length and flags as Litestar's generic ``ASGIResponse``."""
    from litestar.response.base import ASGIResponse

    from gateway.encoded_response import ReadyASGIResponse

    for body, status, headers, media, head in CASES:
        want = ASGIResponse(body=body, status_code=status, headers=headers, media_type=media, is_head_response=head)
        got = ReadyASGIResponse(body=body, status_code=status, headers=headers, media_type=media, is_head_response=head)
        assert got.encode_headers() == want.encode_headers(), (status, headers)
        assert (got.body, got.content_length, got.status_code, got.is_head_response) == (
            want.body,
            want.content_length,
            want.status_code,
            want.is_head_response,
        )
        assert dict(got.headers.items()) == dict(want.headers.items())
