"""Fixtures shared by every test: one fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL runs when ``GATEWAY_TEST_DATABASE_URL`` is set (CI sets it). Each test gets
its own database cloned from a template that was migrated (and, for ``demo``, seeded)
once per run: a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.engine import create_engine

pytest_plugins = ["tests.api_support"]

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_TEMPLATE_DIR = Path(tempfile.mkdtemp(prefix="gateway-templates-"))
_templates: dict[tuple[str, str], tuple[str, Any]] = {}
_pg_templates: list[str] = []


def _pg_url(name: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + "/" + name


async def _pg_admin(statements: list[str]) -> None:
    admin = create_engine(PG_URL)
    try:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for stmt in statements:
                await conn.execute(text(stmt))
    finally:
        await admin.dispose()


async def _migrate(url: str) -> None:
    from gateway.store.migrate import upgrade_async

    await upgrade_async(url)


async def _template(backend: str, kind: str, prepare: Callable[[str], Awaitable[Any]]) -> tuple[str, Any]:
    """Build (once per run) a template database of ``kind`` and return (name-or-path, prepare's result)."""
    key = (backend, kind)
    if key in _templates:
        return _templates[key]
    name = f"tmpl_{kind}_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        path = _TEMPLATE_DIR / f"{name}.db"
        url = f"sqlite+aiosqlite:///{path}"
        await _migrate(url)
        extra = await prepare(url)
        _templates[key] = (str(path), extra)
    else:
        await _pg_admin([f'CREATE DATABASE "{name}"'])
        _pg_templates.append(name)
        url = _pg_url(name)
        await _migrate(url)
        extra = await prepare(url)
        _templates[key] = (name, extra)
    return _templates[key]


async def clone_database(
    backend: str, kind: str, tmp_path: Path, prepare: Callable[[str], Awaitable[Any]]
) -> tuple[str, Any, Callable[[], Awaitable[None]]]:
    """A fresh copy of the template: (url, template extra, cleanup)."""
    source, extra = await _template(backend, kind, prepare)
    if backend == "sqlite":
        target = tmp_path / f"{kind}_{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(source, target)

        async def noop() -> None:
            return None

        return f"sqlite+aiosqlite:///{target}", extra, noop
    name = "t_" + uuid.uuid4().hex[:12]
    await _pg_admin([f'CREATE DATABASE "{name}" TEMPLATE "{source}"'])

    async def drop() -> None:
        await _pg_admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'])

    return _pg_url(name), extra, drop


async def _nothing(url: str) -> None:
    return None


@atexit.register
def _drop_templates() -> None:
    shutil.rmtree(_TEMPLATE_DIR, ignore_errors=True)
    if _pg_templates:
        asyncio.run(_pg_admin([f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in _pg_templates]))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty, fully migrated database."""
    url, _, cleanup = await clone_database(backend, "migrated", tmp_path, _nothing)
    yield url
    await cleanup()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()
