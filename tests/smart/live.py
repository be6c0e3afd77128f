"""A live uvicorn server over a cloned demo database, for clients that need real sockets (fhirclient, Chromium)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from gateway.app import create_app
from gateway.smart.clients import add_client
from gateway.store.database import Database
from tests.api_support import make_settings
from tests.smart.conftest import _KEY_FILE, _register
from tests.smart.support import PUBLIC_SCOPE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Live:
    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Live:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


LIVE_REDIRECT_PATH = "/app/callback"
"""A redirect URI on the live server itself (it answers 404), so a real browser's last URL is readable."""


@pytest.fixture
async def live(demo_database: tuple[str, dict[str, str]], tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """(base URL, demo ids) of a live server; client ``app-live`` (public) redirects to ``LIVE_REDIRECT_PATH``."""
    url, users = demo_database
    if not url.startswith("sqlite"):
        pytest.skip("one backend is enough for the client interop check")
    await _register(url)
    port = _free_port()
    key = tmp_path / "key.pem"
    shutil.copy(_KEY_FILE, key)
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(url, signing_key_file=str(key)).with_(base_url=base)
    db = Database(url)
    try:
        await add_client(
            db,
            "app-live",
            redirect_uris=[base + LIVE_REDIRECT_PATH],
            scope=PUBLIC_SCOPE,
            client_type="public",
            name="Live Test App",
        )
    finally:
        await db.dispose()
    with _Live(create_app(settings), port):
        yield base, users
