"""Mutated messages through the ingest service (hypothesis): always an ACK, never a partial store."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.hl7v2 import Delivery, Ingest, Reply
from gateway.store.database import Database
from tests.hl7v2.support import FIXTURES, counts, msa, wire

SAMPLES = [wire(p) for p in sorted(FIXTURES.glob("*.hl7"))]
EFFECTS = ("LabResult", "_Version", "AuditLog", "PatientProfile", "ProviderProfile")

edits = st.lists(
    st.tuples(
        st.integers(0, 4000),
        st.integers(0, 12),
        st.binary(max_size=6) | st.sampled_from([b"|", b"^", b"~", b"\\", b"&", b"\r", b"\x0b", b"\x1c", b"\xff"]),
    ),
    min_size=1,
    max_size=4,
)


def _mutate(raw: bytes, changes: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(raw)
    for pos, cut, insert in changes:
        at = pos % (len(out) + 1)
        out[at : at + cut] = insert
    return bytes(out)


async def _once(url: str, raw: bytes) -> tuple[list[Reply], dict[str, int], dict[str, int]]:
    db = Database(url)
    try:
        before = await counts(db)
        replies = await Ingest(db).handle_payload(raw, Delivery("http", "fuzz"))
        return replies, before, await counts(db)
    finally:
        await db.dispose()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(sample=st.sampled_from(SAMPLES), changes=edits)
def test_mutated_messages_get_an_ack_and_never_a_partial_store(
    database_url: str, sample: bytes, changes: list[tuple[int, int, bytes]]
) -> None:
    replies, before, after = asyncio.run(_once(database_url, _mutate(sample, changes)))
    assert replies, "at least one ACK"
    for reply in replies:
        assert msa(reply.ack)[1] == reply.code.value in ("AA", "AE", "AR")
    applied = [r for r in replies if r.code.value == "AA" and not r.duplicate]
    if not applied:
        assert {t: after[t] for t in EFFECTS} == {t: before[t] for t in EFFECTS}, "nothing applied"
    else:
        assert after["AuditLog"] >= before["AuditLog"] + len(applied), "each applied message is audited"
    logged = sum(1 for r in replies if not r.duplicate)
    assert after["_Hl7Message"] == before["_Hl7Message"] + logged, "every message logged"
