"""Migration 0012 records whether HL7 feed results are stored under their pre-clustering ids."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, insert, select

from gateway.store.classes import CLASSES
from gateway.store.engine import create_engine
from gateway.store.migrate import alembic_config
from gateway.store.models import Hl7ResultIds, table_of


def _to(connection: Connection, url: str, revision: str) -> None:
    cfg = alembic_config(url)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _result(object_id: str, source: str | None) -> dict[str, object]:
    now = datetime.now(UTC)
    return {"objectId": object_id, "patient": "P1", "createdAt": now, "updatedAt": now, "sourceMessageId": source}


@pytest.mark.parametrize(
    ("rows", "legacy"),
    [
        ([], False),
        ([("aaaaaaaaaaa", "M1")], False),  # 11 characters: a clustered id
        ([("bbbbbbbbbb", None)], False),  # 10 characters but not from the feed (a client's object)
        ([("aaaaaaaaaaa", "M1"), ("cccccccccc", "M2")], True),
    ],
)
async def test_the_flag_says_whether_feed_results_have_ten_character_ids(
    tmp_path: Path, rows: list[tuple[str, str | None]], legacy: bool
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to, url, "0011")
        async with engine.begin() as conn:
            now = datetime.now(UTC)
            await conn.execute(
                insert(CLASSES["PatientProfile"].table),
                {"objectId": "P1", "medicalRecordNumber": "M", "createdAt": now, "updatedAt": now},
            )
            for object_id, source in rows:
                await conn.execute(insert(CLASSES["LabResult"].table), _result(object_id, source))
        async with engine.begin() as conn:
            await conn.run_sync(_to, url, "head")
        async with engine.connect() as conn:
            flags = (await conn.execute(select(table_of(Hl7ResultIds).c.legacy))).scalars().all()
        assert flags == [legacy]
    finally:
        await engine.dispose()
