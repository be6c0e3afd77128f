"""The PostgreSQL pool's pre-ping (``engine._ping_in_one_round_trip``): one statement per checkout, and a
connection the server ended is still found out at checkout and replaced, never handed to a caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.engine import create_engine


@pytest.fixture
async def pg_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the pre-ping is the PostgreSQL pool's")
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def _backend(engine: AsyncEngine) -> tuple[int, Any]:
    async with engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        driver = (await conn.get_raw_connection()).driver_connection
    return int(pid), driver


async def test_a_checkout_pings_with_one_statement(pg_engine: AsyncEngine) -> None:
    """SQLAlchemy's own asyncpg ping is BEGIN, ``;``, ROLLBACK: three round trips before every transaction."""
    pid, driver = await _backend(pg_engine)
    seen: list[str] = []

    def log(record: Any) -> None:
        seen.append(record.query)

    driver.add_query_logger(log)
    try:
        async with pg_engine.connect() as conn:
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() == pid  # the same connection
    finally:
        driver.remove_query_logger(log)
    # the ping, then the connection's own transaction (SQLAlchemy's ping would add BEGIN; ROLLBACK; around it)
    assert seen == [";", "BEGIN;", "ROLLBACK;"], seen


async def test_a_connection_the_server_ended_is_replaced_at_checkout(pg_engine: AsyncEngine, database_url: str) -> None:
    pid, _ = await _backend(pg_engine)
    admin = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql", 1))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    async with pg_engine.begin() as conn:  # the ping fails, the pool reconnects: the caller sees nothing
        new_pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert new_pid != pid
