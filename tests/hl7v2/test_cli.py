"""`portal-gateway feeds add`, `hl7 dead-letters` and `hl7 reprocess` against a real database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.hl7v2 import Delivery, Ingest, Reply
from gateway.hl7v2 import ingest as ingest_module
from gateway.hl7v2.apply import Unappliable
from gateway.hl7v2.feeds import authenticate, key_hash
from gateway.store.database import Database
from mappings.hl7v2 import ErrorCode, Hl7Error
from tests.hl7v2.support import FIXTURES, counts, wire


def _run(url: str, fn: Any) -> Any:
    async def go() -> Any:
        db = Database(url)
        try:
            return await fn(db)
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_feeds_add_prints_a_key_that_authenticates(database_url: str) -> None:
    result = CliRunner().invoke(main, ["feeds", "add", "lab-north", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("hl7_") and len(key) > 40
    assert _run(database_url, lambda db: authenticate(db, key)) == "lab-north"
    assert key_hash(key) != key
    again = CliRunner().invoke(main, ["feeds", "add", "lab-north", "--database-url", database_url])
    assert again.exit_code != 0 and "already exists" in again.output


def test_reprocess_applies_a_dead_letter_after_the_fix(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise Unappliable([Hl7Error(ErrorCode.APPLICATION_INTERNAL_ERROR, "OBX", 1, 5, "simulated defect")])

    message = wire(FIXTURES / "cbc-sunquest.hl7")
    with monkeypatch.context() as patch:
        patch.setattr(ingest_module, "apply_results", broken)
        first: Reply = _run(database_url, lambda db: Ingest(db).handle(message, Delivery("mllp")))
    assert first.code.value == "AE"
    assert _run(database_url, counts)["LabResult"] == 0
    listing = CliRunner().invoke(main, ["hl7", "dead-letters", "--database-url", database_url])
    assert listing.exit_code == 0 and first.message_id in listing.output and "simulated defect" in listing.output
    # a resend before the fix answers the original AE (the message owns its control id)
    resent: Reply = _run(database_url, lambda db: Ingest(db).handle(message, Delivery("mllp")))
    assert resent.ack == first.ack
    result = CliRunner().invoke(main, ["hl7", "reprocess", str(first.message_id), "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("AA")
    assert _run(database_url, counts)["LabResult"] > 0
    missing = CliRunner().invoke(main, ["hl7", "reprocess", "nope", "--database-url", database_url])
    assert missing.exit_code != 0
