"""Typed settings read once from ``GATEWAY_*`` variables and passed into ``create_app``.

Tests build a ``Settings`` directly instead of mutating the environment; the CLI
builds one from the environment and lets its flags override fields.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

WEAK_MASTER_KEYS = frozenset({"", "mymasterkey", "masterkey", "master", "changeme", "secret"})
MIN_MASTER_KEY_LENGTH = 32


class SettingsError(ValueError):
    """Raised at start-up when the configuration is unsafe or malformed."""


def _env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = (os.environ.get(name) or default).strip().lower()
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./var/portal.db"
    """SQLAlchemy async URL; ``postgresql+asyncpg://`` for scale."""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    mllp_host: str = "127.0.0.1"
    mllp_port: int = 2575
    """0 turns the MLLP listener off."""
    mllp_max_bytes: int = 16 * 1024 * 1024
    """Largest HL7 message accepted over MLLP or POST /hl7v2; a larger one is answered AR and dead-lettered."""
    mllp_idle_seconds: float = 300.0
    """An MLLP connection silent for this long is closed."""
    mllp_frame_seconds: float = 60.0
    """A message must arrive whole within this long of its first byte (a sender trickling bytes is
    closed: the idle timeout alone never trips on it)."""
    mllp_allowed_sources: tuple[str, ...] = ()
    """Addresses or CIDR networks that may open MLLP connections; empty allows any."""
    mllp_max_connections: int = 256
    """Concurrent MLLP connections; further ones are closed at once (and logged)."""
    hl7_writer_process: bool = True
    """``serve`` stores HL7 v2 messages in a writer process of its own, so parsing and storing use
    two cores (``gateway.hl7v2.writer_process``); off, they share the serve process."""
    base_url: str = "http://127.0.0.1:8000"
    """Public URL used in Location headers, FHIR links and SMART metadata."""
    app_id: str = "portal-gateway"
    master_key: str = ""
    """Must be strong outside demo mode (catalog B10)."""
    rest_api_key: str | None = None
    """When set, clients must also present ``X-Parse-REST-API-Key`` (or ``_JavaScriptKey``)."""
    redis_url: str | None = None
    signing_key_file: str = "./var/signing-key.pem"
    """Private key that signs SMART access and id tokens; generated on first start when absent."""
    access_token_seconds: int = 3600
    """Lifetime of SMART access tokens for apps acting for a user (SMART: at most one hour)."""
    backend_token_seconds: int = 300
    """Lifetime of client_credentials (backend services) access tokens."""
    refresh_token_days: int = 30
    auth_code_seconds: int = 60
    launch_seconds: int = 300
    """How long an EHR launch value from ``createSmartLaunch`` stays usable."""
    files_dir: str = "./var/files"
    audit_checkpoint_dir: str = "./var/audit-checkpoints"
    audit_reads: bool = True
    """Audit every read/search of health data (issue #6); off only to measure its cost (bench/audit_read.py)."""
    audit_checkpoint_seconds: int = 300
    """``serve`` signs and writes a chain checkpoint this often (0: only by ``portal-gateway audit checkpoint``)."""
    read_memo_rows: int = 4096
    """Decoded (and rendered) rows the SQLite read path keeps, keyed by their stored values so an
    entry can never be stale (``gateway.store.rowmemo``); 0 turns it off. A LabResult with its
    Parse and FHIR renderings takes about 9 KB, so the default holds about 35 MB."""
    session_memo_entries: int = 10_000
    """Resolved sessions the SQLite read path keeps while no session, user, role or patient link
    has changed (``gateway.store.sessionmemo``); 0 turns it off. Under 1 KB each."""
    demo: bool = False
    """Demo mode: seeds demo data on an empty store and tolerates a generated master key."""
    max_body_bytes: int = 32 * 1024 * 1024
    parse_limit_default: int = 100
    parse_limit_max: int = 1000
    where_max_depth: int = 8
    include_max_depth: int = 3
    regex_max_length: int = 256
    in_max_items: int = 10_000
    batch_max_requests: int = 50
    session_days: int = 365
    activation_code_minutes: int = 60 * 24 * 3
    password_hash_time_cost: int = 2
    """argon2 time cost; tests lower the memory cost to keep the suite fast."""
    password_hash_memory_kib: int = 19_456
    trusted_proxies: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ("*",)
    log_level: str = "INFO"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        env = os.environ
        base = cls()
        http_port = _env_int("GATEWAY_HTTP_PORT", base.http_port)
        http_host = env.get("GATEWAY_HTTP_HOST", base.http_host)
        values: dict[str, Any] = {
            "database_url": env.get("GATEWAY_DATABASE_URL", base.database_url),
            "http_host": http_host,
            "http_port": http_port,
            "mllp_host": env.get("GATEWAY_MLLP_HOST", base.mllp_host),
            "mllp_port": _env_int("GATEWAY_MLLP_PORT", base.mllp_port),
            "mllp_max_bytes": _env_int("GATEWAY_MLLP_MAX_BYTES", base.mllp_max_bytes),
            "mllp_idle_seconds": float(_env_int("GATEWAY_MLLP_IDLE_SECONDS", int(base.mllp_idle_seconds))),
            "mllp_frame_seconds": float(_env_int("GATEWAY_MLLP_FRAME_SECONDS", int(base.mllp_frame_seconds))),
            "mllp_allowed_sources": tuple(
                p.strip() for p in env.get("GATEWAY_MLLP_ALLOWED_SOURCES", "").split(",") if p.strip()
            ),
            "mllp_max_connections": _env_int("GATEWAY_MLLP_MAX_CONNECTIONS", base.mllp_max_connections),
            "hl7_writer_process": _env_choice("GATEWAY_HL7_WRITER", ("process", "inline"), "process") == "process",
            "base_url": env.get("GATEWAY_BASE_URL", ""),
            "app_id": env.get("GATEWAY_APP_ID", base.app_id),
            "master_key": env.get("GATEWAY_MASTER_KEY", ""),
            "rest_api_key": env.get("GATEWAY_REST_API_KEY") or None,
            "redis_url": env.get("GATEWAY_REDIS_URL") or None,
            "signing_key_file": env.get("GATEWAY_SIGNING_KEY_FILE", base.signing_key_file),
            "access_token_seconds": _env_int("GATEWAY_ACCESS_TOKEN_SECONDS", base.access_token_seconds),
            "refresh_token_days": _env_int("GATEWAY_REFRESH_TOKEN_DAYS", base.refresh_token_days),
            "files_dir": env.get("GATEWAY_FILES_DIR", base.files_dir),
            "audit_checkpoint_dir": env.get("GATEWAY_AUDIT_CHECKPOINT_DIR", base.audit_checkpoint_dir),
            "audit_reads": env.get("GATEWAY_AUDIT_READS", "1").strip().lower() not in ("0", "false", "no", "off"),
            "audit_checkpoint_seconds": _env_int("GATEWAY_AUDIT_CHECKPOINT_SECONDS", base.audit_checkpoint_seconds),
            "read_memo_rows": _env_int("GATEWAY_READ_MEMO_ROWS", base.read_memo_rows),
            "session_memo_entries": _env_int("GATEWAY_SESSION_MEMO_ENTRIES", base.session_memo_entries),
            "max_body_bytes": _env_int("GATEWAY_MAX_BODY_BYTES", base.max_body_bytes),
            "parse_limit_max": _env_int("GATEWAY_PARSE_LIMIT_MAX", base.parse_limit_max),
            "log_level": env.get("GATEWAY_LOG_LEVEL", base.log_level),
            "trusted_proxies": tuple(p.strip() for p in env.get("GATEWAY_TRUSTED_PROXIES", "").split(",") if p.strip()),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if not values["base_url"]:
            values["base_url"] = f"http://{values['http_host']}:{values['http_port']}"
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def checked(self) -> Settings:
        """Refuse unsafe configurations; in demo mode generate a master key when none is set."""
        key = self.master_key
        if not key:
            if self.demo:
                return replace(self, master_key=secrets.token_urlsafe(32))
            raise SettingsError(
                "GATEWAY_MASTER_KEY is not set: generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        if key.lower() in WEAK_MASTER_KEYS or len(key) < MIN_MASTER_KEY_LENGTH:
            raise SettingsError(
                f"GATEWAY_MASTER_KEY is too weak: use at least {MIN_MASTER_KEY_LENGTH} random characters"
            )
        if self.parse_limit_default > self.parse_limit_max:
            raise SettingsError("parse_limit_default exceeds parse_limit_max")
        if not 0 < self.access_token_seconds <= 3600:
            raise SettingsError("GATEWAY_ACCESS_TOKEN_SECONDS must be between 1 and 3600 (SMART)")
        if self.refresh_token_days < 1:
            raise SettingsError("GATEWAY_REFRESH_TOKEN_DAYS must be at least 1")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def ensure_dirs(self) -> None:
        for path in (self.files_dir, self.audit_checkpoint_dir):
            Path(path).mkdir(parents=True, exist_ok=True)
        if self.is_sqlite and ":///" in self.database_url:
            db_path = self.database_url.split(":///", 1)[1]
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
