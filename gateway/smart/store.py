"""SQL for the authorization server's own tables; synchronous, run inside ``AsyncConnection.run_sync``.

Secrets (client secrets, codes, refresh tokens, launch values) are stored only as
SHA-256 digests: each is 256 random bits, so a plain digest is as strong as a slow
hash here, and a leaked database leaks nothing usable.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.store.models import (
    OAuthAccessToken,
    OAuthAssertionJti,
    OAuthClient,
    OAuthCode,
    OAuthRefreshToken,
    PatientProfile,
    ProviderProfile,
    Session,
    SmartLaunch,
    User,
    table_of,
)

clients_t = table_of(OAuthClient)
codes_t = table_of(OAuthCode)
refresh_t = table_of(OAuthRefreshToken)
access_t = table_of(OAuthAccessToken)
assertions_t = table_of(OAuthAssertionJti)
launches_t = table_of(SmartLaunch)
users_t = table_of(User)
patients_t = table_of(PatientProfile)
providers_t = table_of(ProviderProfile)
sessions_t = table_of(Session)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_id() -> str:
    return secrets.token_hex(16)


def utcnow() -> datetime:
    return datetime.now(UTC)


def client_row(conn: Connection, client_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(clients_t).where(clients_t.c.clientId == client_id, clients_t.c.isActive.is_(True))
    ).first()
    return dict(row._mapping) if row is not None else None


@dataclass(frozen=True, slots=True)
class UserContext:
    """Who a code or refresh token acts for, and the FHIR resource that person is."""

    user_id: str
    username: str
    fhir_user: str | None
    """``Patient/<id>`` or ``Practitioner/<id>`` (relative; absolute in id tokens)."""
    own_patient: str | None
    active: bool


def user_context(conn: Connection, user_id: str) -> UserContext | None:
    """The user, their own PatientProfile and ProviderProfile; ``active`` is False when either profile is inactive."""
    user = conn.execute(select(users_t.c.objectId, users_t.c.username).where(users_t.c.objectId == user_id)).first()
    if user is None:
        return None
    patient = conn.execute(
        select(patients_t.c.objectId, patients_t.c.isActive).where(patients_t.c.user == user_id)
    ).first()
    provider = conn.execute(
        select(providers_t.c.objectId, providers_t.c.isActive).where(providers_t.c.user == user_id)
    ).first()
    fhir_user = None
    active = True
    if provider is not None:
        fhir_user = f"Practitioner/{provider.objectId}"
        active = active and bool(provider.isActive)
    if patient is not None:
        fhir_user = f"Patient/{patient.objectId}"
        active = active and bool(patient.isActive)
    return UserContext(user.objectId, user.username, fhir_user, patient.objectId if patient else None, active)


def claim_launch(conn: Connection, launch: str, now: datetime) -> str | None:
    """Mark a launch value used; returns its patient id, or None when unknown, used or expired."""
    h = digest(launch)
    row = conn.execute(select(launches_t).where(launches_t.c.launchHash == h)).first()
    if row is None or row.usedAt is not None or row.expiresAt <= now:
        return None
    done = conn.execute(
        update(launches_t).where(launches_t.c.launchHash == h, launches_t.c.usedAt.is_(None)).values(usedAt=now)
    )
    return str(row.patient) if done.rowcount == 1 else None


def peek_launch(conn: Connection, launch: str, now: datetime) -> str | None:
    """The patient of a launch value that is still usable, without using it."""
    row = conn.execute(select(launches_t).where(launches_t.c.launchHash == digest(launch))).first()
    if row is None or row.usedAt is not None or row.expiresAt <= now:
        return None
    return str(row.patient)


def revoke_grant(conn: Connection, grant_id: str, now: datetime) -> None:
    """Revoke every refresh and access token of one grant family."""
    conn.execute(
        update(refresh_t).where(refresh_t.c.grantId == grant_id, refresh_t.c.revokedAt.is_(None)).values(revokedAt=now)
    )
    conn.execute(
        update(access_t).where(access_t.c.grantId == grant_id, access_t.c.revokedAt.is_(None)).values(revokedAt=now)
    )


ONLINE_ONLY = "online_access"


def online_only(scope: str) -> bool:
    """``online_access`` without ``offline_access``: the refresh token lives only as long as the sign-in."""
    words = set(scope.split())
    return ONLINE_ONLY in words and "offline_access" not in words


def session_alive(conn: Connection, session_id: str, user_id: str, now: datetime) -> datetime | None:
    """The expiry of a user's ``_Session`` that still exists and has not expired; None otherwise."""
    row = conn.execute(
        select(sessions_t.c.expiresAt).where(sessions_t.c.objectId == session_id, sessions_t.c.user == user_id)
    ).first()
    if row is None or row.expiresAt <= now:
        return None
    return row.expiresAt  # type: ignore[no-any-return]


def session_owner(conn: Connection, session_id: str | None, now: datetime) -> str | None:
    """The user of a ``_Session`` that exists and has not expired."""
    if session_id is None:
        return None
    row = conn.execute(
        select(sessions_t.c.user, sessions_t.c.expiresAt).where(sessions_t.c.objectId == session_id)
    ).first()
    return str(row.user) if row is not None and row.expiresAt > now else None


def end_session(conn: Connection, session_id: str, user_id: str, now: datetime) -> bool:
    """Delete a sign-in's ``_Session`` and revoke the refresh families bound to it; False when already gone."""
    gone = conn.execute(delete(sessions_t).where(sessions_t.c.objectId == session_id, sessions_t.c.user == user_id))
    grants = conn.execute(
        select(refresh_t.c.grantId).where(refresh_t.c.sessionId == session_id, refresh_t.c.revokedAt.is_(None))
    ).scalars()
    for grant_id in set(grants):
        revoke_grant(conn, grant_id, now)
    return bool(gone.rowcount)


def remember_assertion(conn: Connection, client_id: str, jti: str, expires: datetime, now: datetime) -> bool:
    """Record an assertion ``jti``; False when the same client already used it (a replay)."""
    conn.execute(delete(assertions_t).where(assertions_t.c.expiresAt < now))
    values = {"clientId": client_id, "jti": jti, "expiresAt": expires}
    stmt = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(assertions_t).values(values)
    result = conn.execute(stmt.on_conflict_do_nothing(index_elements=["clientId", "jti"]))
    return result.rowcount == 1


def access_token_row(conn: Connection, jti: str) -> dict[str, Any] | None:
    row = conn.execute(select(access_t).where(access_t.c.jti == jti)).first()
    return dict(row._mapping) if row is not None else None


def refresh_token_row(conn: Connection, token: str) -> dict[str, Any] | None:
    row = conn.execute(select(refresh_t).where(refresh_t.c.tokenHash == digest(token))).first()
    return dict(row._mapping) if row is not None else None


def insert_row(conn: Connection, table: Any, values: dict[str, Any]) -> None:
    conn.execute(insert(table), values)


def nonce_seen(conn: Connection, client_id: str, nonce: str) -> bool:
    found = conn.execute(
        select(codes_t.c.codeHash).where(codes_t.c.clientId == client_id, codes_t.c.nonce == nonce).limit(1)
    ).first()
    return found is not None


def purge_expired(conn: Connection, now: datetime) -> None:
    """Drop codes and launches a day past expiry (kept that long so a replayed code still revokes its tokens)."""
    cutoff = now - timedelta(days=1)
    conn.execute(delete(codes_t).where(codes_t.c.expiresAt < cutoff))
    conn.execute(delete(launches_t).where(launches_t.c.expiresAt < cutoff))
