"""Fixtures for the HL7 v2 door: an ingest service, a live MLLP listener, an app with a feed key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.hl7v2 import Ingest
from gateway.hl7v2.feeds import add_feed
from gateway.hl7v2.mllp import MllpServer
from gateway.store.database import Database
from tests.api_support import make_settings

MAX_BYTES = 64 * 1024


async def register_feed(url: str, name: str) -> str:
    """Register a feed through its own pool (the app's pool belongs to the test client's loop)."""
    database = Database(url)
    try:
        return await add_feed(database, name)
    finally:
        await database.dispose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def listener(db: Database) -> AsyncIterator[MllpServer]:
    """A real TCP listener on an ephemeral port; small size limit so oversize is cheap to test."""
    server = MllpServer(Ingest(db), "127.0.0.1", 0, max_bytes=MAX_BYTES, idle_seconds=30)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(database_url: str) -> AsyncIterator[tuple[AsyncTestClient[Any], str]]:
    """The app over real ASGI HTTP and a registered feed key."""
    key = await register_feed(database_url, "lab-east")
    app = create_app(make_settings(database_url))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        yield client, key
