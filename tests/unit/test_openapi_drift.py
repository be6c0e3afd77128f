"""openapi/openapi.json is what the app serves; regenerate with `portal-gateway openapi`."""

from __future__ import annotations

from gateway.cli import OPENAPI_PATH, openapi_document, render_openapi


def test_committed_openapi_matches_the_app() -> None:
    assert OPENAPI_PATH.read_text() == render_openapi(), "run `portal-gateway openapi` and commit the result"


def test_every_native_route_is_documented() -> None:
    from gateway.native.dispatch import patterns

    paths = openapi_document()["paths"]
    for pattern, methods in patterns().items():
        path = "/parse/" + pattern
        assert path in paths, path
        for method in set(methods) | {"POST"}:
            assert method.lower() in paths[path], (method, path)
