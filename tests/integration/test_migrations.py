"""Migrations build exactly the schema the models declare, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.migrate import current_revision, head_revision
from gateway.store.models import metadata


async def test_migrations_reach_head_and_match_models(engine: AsyncEngine) -> None:
    assert await current_revision(engine) == head_revision()

    def diff(conn: object) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})  # type: ignore[arg-type]
        return list(compare_metadata(ctx, metadata))

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []
