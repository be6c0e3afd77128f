"""Fixtures shared by every test: one fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL runs when ``GATEWAY_TEST_DATABASE_URL`` is set (CI sets it); each test
gets its own database created from a migrated template, so tests never share rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.engine import create_engine
from gateway.store.models import metadata

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _pg_sync_url(url: str, database: str | None = None) -> str:
    base = url.replace("+asyncpg", "+psycopg") if "+asyncpg" in url else url
    base = base.replace("postgresql+psycopg", "postgresql+asyncpg")
    if database is not None:
        base = base.rsplit("/", 1)[0] + "/" + database
    return base


class DatabaseFactory:
    """Hands out URLs of fresh, schema-complete databases for one backend."""

    def __init__(self, backend: str, tmp_root: Path) -> None:
        self.backend = backend
        self.tmp_root = tmp_root
        self._created: list[str] = []

    def new_url(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        if self.backend == "sqlite":
            path = self.tmp_root / f"{name}.db"
            return f"sqlite+aiosqlite:///{path}"
        self._created.append(name)
        return PG_URL.rsplit("/", 1)[0] + "/" + name

    async def create(self) -> str:
        from gateway.store.migrate import upgrade_async

        url = self.new_url()
        if self.backend == "postgresql":
            admin = create_engine(PG_URL)
            async with admin.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"'))
            await admin.dispose()
        await upgrade_async(url)
        return url

    async def drop_all(self) -> None:
        if self.backend != "postgresql" or not self._created:
            return
        admin = create_engine(PG_URL)
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for name in self._created:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
        self._created.clear()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    factory = DatabaseFactory(backend, tmp_path)
    url = await factory.create()
    yield url
    await factory.drop_all()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sync_metadata() -> Iterator[object]:
    yield metadata


__all__ = ["BACKENDS", "PG_URL", "DatabaseFactory", "create_sync_engine"]
