"""``jwks_url`` clients: the key set is cached, refetched on an unknown ``kid`` (rotation) at most
every REFETCH_SECONDS, and a fetch is bounded in size and time. A real HTTP server serves the keys."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from gateway.smart.clients import add_client
from gateway.smart.jwks_cache import JwksCache
from gateway.store.database import Database
from tests.smart.support import Smart, backend_keys


@dataclass
class KeyHost:
    url: str
    keys: dict[str, Any]
    hits: int = 0
    body: bytes | None = None
    """When set, served instead of ``keys`` (oversized or broken answers)."""
    delay: float = 0.0
    served: list[float] = field(default_factory=list)


@pytest.fixture
def key_host() -> Iterator[KeyHost]:
    rsa, _ = backend_keys()
    host = KeyHost("", {"keys": [rsa.as_dict(private=False, kid="rsa1")]})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.hits += 1
            if host.delay:
                time.sleep(host.delay)
            body = host.body if host.body is not None else json.dumps(host.keys).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host.url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    yield host
    server.shutdown()
    server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


async def _register(smart: Smart, url: str) -> None:
    db = Database(smart.url)
    try:
        await add_client(
            db, "ehr-url", redirect_uris=[], scope="system/*.rs", client_type="confidential-asymmetric", jwks_url=url
        )
    finally:
        await db.dispose()


def _cache(smart: Smart, **kw: Any) -> Clock:
    clock = Clock()
    smart.client.app.state.smart_jwks_cache = JwksCache(clock=clock, **kw)
    return clock


async def _token(smart: Smart, **kw: Any) -> int:
    """200, or 401 for any ``invalid_client`` refusal (authlib answers 400 or 401 depending on the step)."""
    r = await smart.backend_token("system/Observation.rs", client_id="ehr-url", **kw)
    if r.status_code == 200:
        return 200
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client", r.text
    return 401


async def test_key_set_is_cached_and_refetched_after_the_ttl(smart: Smart, key_host: KeyHost) -> None:
    await _register(smart, key_host.url)
    clock = _cache(smart)
    for _ in range(3):
        assert await _token(smart) == 200
    assert key_host.hits == 1
    clock.now += 299
    assert await _token(smart) == 200 and key_host.hits == 1
    clock.now += 2
    assert await _token(smart) == 200 and key_host.hits == 2


async def test_rotation_unknown_kid_refetches_once_per_interval(smart: Smart, key_host: KeyHost) -> None:
    await _register(smart, key_host.url)
    clock = _cache(smart)
    assert await _token(smart) == 200 and key_host.hits == 1

    new = RSAKey.generate_key(2048, private=True)
    key_host.keys = {"keys": [new.as_dict(private=False, kid="rsa2")]}
    clock.now += 31  # the client rotated; our cache is still fresh but lacks its new kid
    assert await _token(smart, key=new, kid="rsa2") == 200
    assert key_host.hits == 2
    assert await _token(smart) == 401  # the retired key is gone from the refetched set

    # random kids do not make us fetch again within the interval
    for i in range(5):
        assert await _token(smart, key=new, kid=f"random-{i}") == 401
    assert key_host.hits == 2
    clock.now += 31
    assert await _token(smart, key=new, kid="random-x") == 401
    assert key_host.hits == 3


async def test_oversized_or_broken_key_sets_are_refused(smart: Smart, key_host: KeyHost) -> None:
    await _register(smart, key_host.url)
    _cache(smart, max_bytes=4096)
    key_host.body = json.dumps({"keys": [], "pad": "x" * 5000}).encode()
    assert await _token(smart) == 401
    key_host.body = b"not json"
    clock = _cache(smart)
    assert await _token(smart) == 401
    key_host.body = None
    clock.now += 31
    assert await _token(smart) == 200


async def test_a_slow_key_host_is_cut_off(smart: Smart, key_host: KeyHost) -> None:
    await _register(smart, key_host.url)
    _cache(smart, timeout=0.5)
    key_host.delay = 3.0
    started = time.monotonic()
    assert await _token(smart) == 401
    assert time.monotonic() - started < 2.5


async def test_a_failed_refetch_keeps_the_last_good_set(smart: Smart, key_host: KeyHost) -> None:
    await _register(smart, key_host.url)
    clock = _cache(smart)
    assert await _token(smart) == 200
    key_host.body = b"{}"
    clock.now += 301
    assert await _token(smart) == 200  # stale but known-good keys, within STALE_SECONDS
    assert key_host.hits == 2
