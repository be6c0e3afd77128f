"""Alembic environment: always handed a live connection by ``gateway.store.migrate``."""

from __future__ import annotations

from alembic import context

from gateway.store.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by a bare `alembic` call
    raise RuntimeError("run migrations through `portal-gateway db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
