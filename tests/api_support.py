"""An app per test over a fresh database, with the demo data seeded, driven over real HTTP (ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.app import create_app
from gateway.auth import sessions
from gateway.auth.passwords import Passwords
from gateway.records.service import Records
from gateway.seed import DEMO_PASSWORD, seed_demo
from gateway.settings import Settings
from gateway.store.database import Database
from tests.conftest import clone_database

APP_ID = "test-app"
MASTER_KEY = "test-master-key-0123456789abcdefghijklmnop"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        app_id=APP_ID,
        master_key=MASTER_KEY,
        base_url="http://testserver.local",
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
        **overrides,
    )


@dataclass
class Api:
    """A thin Parse client over the test transport: headers, tokens and the demo ids."""

    client: AsyncTestClient[Any]
    ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str | None = None, *, master: bool = False) -> dict[str, str]:
        h = {"X-Parse-Application-Id": APP_ID}
        if master:
            h["X-Parse-Master-Key"] = MASTER_KEY
        if who is not None:
            h["X-Parse-Session-Token"] = self.tokens[who]
        return h

    async def login(self, username: str, password: str = DEMO_PASSWORD) -> str:
        r = await self.client.post(
            "/parse/login", json={"username": username, "password": password}, headers=self.headers()
        )
        assert r.status_code == 200, r.text
        token = str(r.json()["sessionToken"])
        self.tokens[username.split("@")[0].removeprefix("dr.")] = token
        return token

    async def get(self, path: str, who: str | None = None, *, master: bool = False, **params: Any) -> Any:
        return await self.client.get(path, headers=self.headers(who, master=master), params=params or None)

    async def post(self, path: str, body: Any, who: str | None = None, *, master: bool = False) -> Any:
        return await self.client.post(path, json=body, headers=self.headers(who, master=master))

    async def put(self, path: str, body: Any, who: str | None = None, *, master: bool = False) -> Any:
        return await self.client.put(path, json=body, headers=self.headers(who, master=master))

    async def delete(self, path: str, who: str | None = None, *, master: bool = False) -> Any:
        return await self.client.delete(path, headers=self.headers(who, master=master))

    async def find(self, class_name: str, who: str | None = None, *, master: bool = False, **params: Any) -> Any:
        return await self.get(f"/parse/classes/{class_name}", who, master=master, **params)


async def _seed(url: str) -> dict[str, str]:
    """Seed the demo data and open one session per demo user (kept in the template, so tests skip log-in)."""
    settings = make_settings(url)
    db = Database(url)
    try:
        ids = await seed_demo(Records(db, settings, Passwords(1, 1024)))
        async with db.write() as conn:
            for email in [k for k in ids if "@" in k]:
                token, _ = await sessions.create_session(conn, ids[email], days=1, action="login")
                ids["token:" + email] = token
        return ids
    finally:
        await db.dispose()


@pytest.fixture
async def demo_database(backend: str, tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    url, users, cleanup = await clone_database(backend, "demo", tmp_path, _seed)
    yield url, dict(users)
    await cleanup()


@pytest.fixture
async def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
async def api(client: AsyncTestClient[Any]) -> Api:
    return Api(client)


@pytest.fixture
async def demo(demo_database: tuple[str, dict[str, str]]) -> AsyncIterator[Api]:
    """Demo data seeded; sessions for alice, bob, smith, jones and admin; profile ids in ``ids``."""
    url, users = demo_database
    app = create_app(make_settings(url))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        api = Api(client)
        for email, object_id in users.items():
            if "@" in email and not email.startswith("token:"):
                api.ids[email.split("@")[0] + ":user"] = object_id
                api.tokens[email.split("@")[0].removeprefix("dr.")] = users["token:" + email]
        api.ids["alice:patient"], api.ids["bob:patient"] = users["patient:DEMO-0001"], users["patient:DEMO-0002"]
        api.ids["smith:provider"], api.ids["jones:provider"] = users["provider:dr.smith"], users["provider:dr.jones"]
        yield api


@pytest.fixture
async def other_worker(demo_database: tuple[str, dict[str, str]]) -> AsyncIterator[AsyncEngine]:
    """An engine of its own on the demo database: changes made the way another worker would."""
    url, _ = demo_database
    engine = create_async_engine(url)
    yield engine
    await engine.dispose()


async def run_sql(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


def app_database(demo: Api) -> Database:
    app: Any = demo.client.app
    return app.state.native.db  # type: ignore[no-any-return]


def pointer(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}
