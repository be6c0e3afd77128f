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
