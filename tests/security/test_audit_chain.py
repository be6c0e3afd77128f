"""`portal-gateway audit verify` catches edited, removed, inserted and truncated entries (catalog G-cases)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from gateway.audit.verify import verify_chain
from gateway.store.engine import create_engine

EXE = str(Path(sys.executable).parent / "portal-gateway")


async def _sql(url: str, statement: str, **params: Any) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(statement), params)
    await engine.dispose()


async def test_intact_chain_verifies(demo_database: Any) -> None:
    url, _ = demo_database
    result = await verify_chain(url)
    assert result.ok and result.checked > 20


async def test_edited_entry_is_named(demo_database: Any) -> None:
    url, _ = demo_database
    await _sql(url, 'UPDATE "AuditLog" SET "summary" = \'nothing to see\' WHERE "seq" = 7')
    result = await verify_chain(url)
    assert not result.ok and result.bad_seq == 7 and "altered" in (result.reason or "")


async def test_removed_entry_is_named(demo_database: Any) -> None:
    url, _ = demo_database
    await _sql(url, 'DELETE FROM "AuditLog" WHERE "seq" = 5')
    result = await verify_chain(url)
    assert not result.ok and result.bad_seq == 6


async def test_inserted_entry_is_named(demo_database: Any) -> None:
    url, _ = demo_database
    await _sql(url, 'UPDATE "AuditLog" SET "seq" = "seq" + 1000 WHERE "seq" >= 9')
    await _sql(
        url,
        'INSERT INTO "AuditLog" ("objectId","seq","createdAt","updatedAt","action","outcome","prevHash","hash") '
        "VALUES ('forged0001', 9, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'read', 'success', :p, :h)",
        p="0" * 64,
        h="f" * 64,
    )
    result = await verify_chain(url)
    assert not result.ok and result.bad_seq == 9


async def test_truncated_tail_is_caught(demo_database: Any) -> None:
    url, _ = demo_database
    await _sql(url, 'DELETE FROM "AuditLog" WHERE "seq" > 20')
    result = await verify_chain(url)
    assert not result.ok and "removed from the end" in (result.reason or "")


async def test_cli_exit_codes(demo_database: Any, tmp_path: Path) -> None:
    url, _ = demo_database
    # Checkpoints of another database (a default ./var/audit-checkpoints) must not be in play here.
    env = dict(os.environ, GATEWAY_DATABASE_URL=url, GATEWAY_AUDIT_CHECKPOINT_DIR=str(tmp_path / "cp"))
    ok = await asyncio.to_thread(subprocess.run, [EXE, "audit", "verify"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "intact" in ok.stdout
    await _sql(url, 'UPDATE "AuditLog" SET "actorName" = \'someone else\' WHERE "seq" = 3')
    bad = await asyncio.to_thread(subprocess.run, [EXE, "audit", "verify"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "seq=3" in bad.stderr
