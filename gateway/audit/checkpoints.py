"""Signed checkpoints of the audit chain head, kept outside the database.

The hash chain alone catches an edited, inserted or removed entry, but not someone with
write access to the database who truncates the tail (and moves ``_AuditHead`` back) or
rewrites history and recomputes every hash after it. A checkpoint is the chain head
(``seq``, ``hash``) and the time, signed RS256 with the gateway signing key as a compact
JWS, written as one JSON file per checkpoint into ``GATEWAY_AUDIT_CHECKPOINT_DIR`` (not in
the database) by ``serve`` every ``GATEWAY_AUDIT_CHECKPOINT_SECONDS`` and by
``portal-gateway audit checkpoint``. The latest one is published at
``GET /audit/checkpoints/latest`` with the public key at ``GET /audit/checkpoints/keys``,
so an outside party can keep copies: later, the chain must still contain entry ``seq``
with exactly that ``hash`` ("the chain extends the checkpoint"), which
``portal-gateway audit verify`` checks for every checkpoint in the directory.

What it cannot catch: a rewrite of entries after the newest checkpoint by someone who
also holds the database (they are covered by the chain only), hence the schedule; and
a rewrite by someone who also holds the signing key and the checkpoint directory, unless
an outside party kept earlier checkpoints.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from sqlalchemy import select

from gateway.signing_keys import ALGORITHM, KeyRing
from gateway.store.database import Database
from gateway.store.models import AuditHead, AuditLog, table_of

log = logging.getLogger("gateway.audit.checkpoints")

JWS_TYPE = "audit-checkpoint+jws"
FILE_PREFIX = "checkpoint-"


class CheckpointError(Exception):
    """A checkpoint file that is unreadable or whose signature does not hold."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    time: str
    kid: str
    jws: str
    """Compact JWS over ``{"seq", "hash", "time", "iss"}``: the only part a verifier trusts."""
    iss: str = ""
    first: str = ""
    """Hash of entry 1: names the chain, so a checkpoint of another database is reported as such."""

    def public(self) -> dict[str, Any]:
        return asdict(self)


async def chain_head(db: Database) -> tuple[int, str, str]:
    """(seq, hash, hash of entry 1) of the committed chain head; (0, genesis, "") before the first entry."""
    head = table_of(AuditHead)
    log_table = table_of(AuditLog)
    async with db.read() as conn:
        row = (await conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1))).first()
        first = (await conn.execute(select(log_table.c.hash).where(log_table.c.seq == 1))).scalar()
    if row is None:
        return 0, "0" * 64, ""
    return int(row.seq), str(row.hash), str(first or "")


def sign(
    keys: KeyRing, seq: int, digest: str, *, issuer: str, first: str = "", at: datetime | None = None
) -> Checkpoint:
    moment = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    payload = {"seq": seq, "hash": digest, "time": moment, "iss": issuer, "first": first}
    header = {"alg": ALGORITHM, "kid": keys.kid, "typ": JWS_TYPE}
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    token = jws.serialize_compact(header, body, keys.current, algorithms=[ALGORITHM])
    return Checkpoint(seq, digest, moment, keys.kid, token, issuer, first)


def verified(keys: KeyRing, token: str) -> Checkpoint:
    """The checkpoint a compact JWS carries, if a key we know signed it (RS256 only)."""
    try:
        header = jws.extract_compact(token.encode()).protected
        kid = str(header.get("kid") or "")
        key = keys.public(kid)
        if key is None:
            raise CheckpointError(f"signed with an unknown key (kid {kid!r})")
        if header.get("typ") != JWS_TYPE:
            raise CheckpointError("not an audit checkpoint (typ)")
        payload = json.loads(jws.deserialize_compact(token, key, algorithms=[ALGORITHM]).payload)
    except JoseError as exc:
        raise CheckpointError(f"signature does not verify ({exc.error})") from exc
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"malformed ({exc})") from exc
    try:
        return Checkpoint(
            int(payload["seq"]),
            str(payload["hash"]),
            str(payload["time"]),
            kid,
            token,
            str(payload["iss"]),
            str(payload.get("first") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError("payload lacks seq/hash/time/iss") from exc


def write(directory: str | Path, checkpoint: Checkpoint) -> Path:
    """One file per checkpoint, written to a temporary name, fsynced, then renamed."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = checkpoint.time.replace(":", "").replace("-", "")
    path = folder / f"{FILE_PREFIX}{checkpoint.seq:012d}-{stamp}.json"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(checkpoint.public(), fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def files(directory: str | Path) -> list[Path]:
    folder = Path(directory)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{FILE_PREFIX}*.json"))


def load(keys: KeyRing, path: Path) -> Checkpoint:
    """A checkpoint file, trusted only through its JWS (the plain fields must agree with it)."""
    try:
        data = json.loads(path.read_text())
        token = str(data["jws"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path.name}: unreadable ({exc})") from exc
    try:
        cp = verified(keys, token)
    except CheckpointError as exc:
        raise CheckpointError(f"{path.name}: {exc}") from exc
    if (data.get("seq"), data.get("hash")) != (cp.seq, cp.hash):
        raise CheckpointError(f"{path.name}: its fields differ from what its signature covers")
    return cp


def load_all(keys: KeyRing, directory: str | Path) -> list[Checkpoint]:
    """Every checkpoint in ``directory``, oldest chain position first; raises on the first bad file."""
    return sorted((load(keys, p) for p in files(directory)), key=lambda c: (c.seq, c.time))


def latest(directory: str | Path) -> dict[str, Any] | None:
    """The newest checkpoint file's content as stored (what ``/audit/checkpoints/latest`` serves)."""
    found = files(directory)
    if not found:
        return None
    best: dict[str, Any] | None = None
    for path in found:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if best is None or (data.get("seq", 0), data.get("time", "")) > (best.get("seq", 0), best.get("time", "")):
            best = data
    return best


async def checkpoint_now(db: Database, keys: KeyRing, directory: str | Path, *, issuer: str) -> Checkpoint | None:
    """Sign and write the current head; None when the chain is empty or the newest checkpoint already has it."""
    seq, digest, first = await chain_head(db)
    if seq == 0:
        return None
    newest = latest(directory)
    if newest is not None and newest.get("seq") == seq and newest.get("hash") == digest:
        return None
    checkpoint = sign(keys, seq, digest, issuer=issuer, first=first)
    write(directory, checkpoint)
    return checkpoint


async def run_schedule(
    db: Database, keys: KeyRing, directory: str | Path, *, issuer: str, every_seconds: float
) -> None:
    """``serve``'s loop: a checkpoint every ``every_seconds`` (a failed one is logged and retried next time)."""
    while True:
        try:
            written = await checkpoint_now(db, keys, directory, issuer=issuer)
            if written is not None:
                log.info("audit checkpoint seq=%s written", written.seq)
        except Exception:
            log.exception("audit checkpoint failed")
        await asyncio.sleep(every_seconds)
