"""``/health/live`` and ``/health/ready`` for orchestrators and load balancers."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from gateway.store.database import Database
from gateway.store.migrate import current_revision, head_revision


@get("/health/live", operation_id="healthLive", tags=["operations"], sync_to_thread=False)
def live() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@get("/health/ready", operation_id="healthReady", tags=["operations"])
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Ready when the store answers and its schema is at the migration head."""
    db: Database = request.app.state.db
    checks: dict[str, Any] = {"database": False, "migrations": False, "durable": False}
    try:
        checks["database"] = await db.ping()
        if checks["database"]:
            checks["migrations"] = await current_revision(db.engine) == head_revision()
            checks["durable"] = bool((await db.durability())["durable"])
    except Exception:
        checks["database"] = False
    ok = all(checks.values())
    return Response({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
