"""Walks the AuditLog chain from genesis and reports the first entry that does not hold.

Detects an edited entry (its hash no longer matches its content), a removed or
inserted entry (``prevHash`` or ``seq`` breaks), and a truncated tail (the chain
head recorded in ``_AuditHead`` is not the last entry's hash). Given signed checkpoints
(``gateway.audit.checkpoints``), it also checks that the chain extends each of them, which
catches what the chain alone cannot: a tail truncated together with ``_AuditHead``, a
history rewritten with every later hash recomputed, a database restored from an old backup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from gateway.audit.checkpoints import Checkpoint
from gateway.audit.writer import GENESIS_HASH, entry_hash, iso
from gateway.store.engine import create_engine
from gateway.store.models import AuditHead, AuditLog, table_of

BATCH = 5000


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    head_hash: str
    bad_seq: int | None = None
    bad_id: str | None = None
    reason: str | None = None
    checkpoints: int = 0
    """How many signed checkpoints the chain was checked against."""


def _hashed_values(row: Any) -> dict[str, Any]:
    return {
        "objectId": row.objectId,
        "seq": row.seq,
        "createdAt": iso(row.createdAt),
        "actor": row.actor,
        "actorName": row.actorName,
        "entityType": row.entityType,
        "entityId": row.entityId,
        "patient": row.patient,
        "action": row.action,
        "summary": row.summary,
        "metadata": row.metadata,
        "outcome": row.outcome,
        "clientId": row.clientId,
        "sourceAddress": row.sourceAddress,
        "requestId": row.requestId,
        "prevHash": row.prevHash,
    }


async def verify_chain(url: str, checkpoints: Sequence[Checkpoint] = ()) -> VerifyResult:
    """Walk the chain; then require it to extend every (already signature-checked) checkpoint."""
    wanted = {cp.seq for cp in checkpoints} | {1}
    seen: dict[int, str] = {}
    engine = create_engine(url, immediate=False)
    log = table_of(AuditLog)
    head = table_of(AuditHead)
    prev, expected_seq, checked = GENESIS_HASH, 1, 0
    try:
        async with engine.connect() as conn:
            # The head is read first: entries a live server appends during the walk only extend it.
            head_row = (await conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1))).first()
            await conn.rollback()
            if head_row is not None:
                wanted.add(int(head_row.seq))
            last_seq = 0
            while True:
                rows = (
                    await conn.execute(select(log).where(log.c.seq > last_seq).order_by(log.c.seq).limit(BATCH))
                ).all()
                if not rows:
                    break
                for row in rows:
                    if row.seq != expected_seq:
                        return VerifyResult(
                            False,
                            checked,
                            prev,
                            row.seq,
                            row.objectId,
                            f"expected seq {expected_seq}: an entry was removed or inserted",
                        )
                    if row.prevHash != prev:
                        return VerifyResult(
                            False, checked, prev, row.seq, row.objectId, "prevHash does not match the previous entry"
                        )
                    if entry_hash(_hashed_values(row)) != row.hash:
                        return VerifyResult(
                            False,
                            checked,
                            prev,
                            row.seq,
                            row.objectId,
                            "content does not match its hash (entry altered)",
                        )
                    if row.seq in wanted:
                        seen[row.seq] = row.hash
                    prev, expected_seq, checked = row.hash, expected_seq + 1, checked + 1
                    last_seq = row.seq
    finally:
        await engine.dispose()
    for cp in checkpoints:
        if cp.first and seen.get(1) != cp.first:
            return VerifyResult(
                False,
                checked,
                prev,
                cp.seq,
                None,
                f"chain does not extend checkpoint seq={cp.seq} of {cp.time} ({cp.iss}): it names another first "
                "entry (history rewritten from the start, or the checkpoint belongs to another database: "
                "check GATEWAY_AUDIT_CHECKPOINT_DIR)",
                len(checkpoints),
            )
        if cp.seq > checked:
            return VerifyResult(
                False,
                checked,
                prev,
                cp.seq,
                None,
                f"chain does not extend checkpoint seq={cp.seq} of {cp.time}: it ends at seq={checked} "
                "(entries removed from the end, or the log was restored from an older backup)",
                len(checkpoints),
            )
        if seen.get(cp.seq) != cp.hash:
            return VerifyResult(
                False,
                checked,
                prev,
                cp.seq,
                None,
                f"chain does not extend checkpoint seq={cp.seq} of {cp.time}: entry {cp.seq} has another hash "
                "(history was rewritten and the hashes recomputed)",
                len(checkpoints),
            )
    if head_row is not None and head_row.seq > 0 and seen.get(int(head_row.seq)) != head_row.hash:
        return VerifyResult(
            False,
            checked,
            prev,
            head_row.seq,
            None,
            "the recorded chain head is past the last entry: entries were removed from the end",
        )
    return VerifyResult(True, checked, prev, checkpoints=len(checkpoints))
