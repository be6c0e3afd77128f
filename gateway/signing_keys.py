"""The gateway's signing keys: SMART access tokens and audit checkpoints, one key file.

One current RSA key, older ones kept (public halves) so that what they signed still verifies.

``GATEWAY_SIGNING_KEY_FILE`` holds the current private key (PEM, mode 0600), generated
on first start when absent. ``rotate`` moves the current key's *public* half into
``<file>.retired.json`` with the time it was retired and writes a fresh private key;
the JWKS keeps publishing a retired key (and verification keeps accepting it, by
``kid``) for ``overlap_seconds`` after retirement, which is at least the longest
token lifetime, so tokens signed just before a rotation stay valid until they expire.

Audit checkpoints (``gateway/audit/checkpoints.py``) must verify for as long as the
trail is kept, so they look keys up among *every* key ever retired (``public``,
``archive_jwks``), not only the ones still published for tokens.

Only RS256 is used to sign and accepted to verify (RFC 8725: pin the algorithm per
key type); the ``kid`` is the key's RFC 7638 thumbprint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, RSAKey

ALGORITHM = "RS256"
KEY_BITS = 2048


@dataclass(frozen=True, slots=True)
class RetiredKey:
    public: RSAKey
    retired_at: float


def _write_new(path: Path, key: RSAKey) -> Path:
    """``key`` in a mode-0600 file beside ``path``, synced; the caller moves it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.as_pem(private=True))
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


def _write_private(path: Path, key: RSAKey) -> None:
    os.replace(_write_new(path, key), path)


def _create_once(path: Path) -> None:
    """First start: write a new key unless one appears meanwhile (another worker or CLI command
    creating it at the same moment); a key someone may already sign with is never replaced."""
    tmp = _write_new(path, RSAKey.generate_key(KEY_BITS, private=True))
    try:
        os.link(tmp, path)  # fails if the file exists
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _public_dict(key: RSAKey) -> dict[str, Any]:
    data = dict(key.as_dict(private=False))
    data.update({"kid": key.thumbprint(), "use": "sig", "alg": ALGORITHM})
    return data


class KeyRing:
    """Loaded once per app; ``rotate`` is what ``portal-gateway keys rotate`` calls (then restart)."""

    def __init__(self, path: str | Path, overlap_seconds: int = 0, *, create: bool = True) -> None:
        """``overlap_seconds``: how long a retired key stays in the token JWKS (the longest token
        lifetime). ``create=False`` refuses a missing file (verifying needs the existing key)."""
        self.path = Path(path)
        self.overlap_seconds = overlap_seconds
        self.retired_path = self.path.with_name(self.path.name + ".retired.json")
        if not self.path.exists():
            if not create:
                raise FileNotFoundError(f"signing key {self.path} does not exist")
            _create_once(self.path)
        self.current: RSAKey = RSAKey.import_key(self.path.read_bytes())
        self.kid: str = self.current.thumbprint()
        self.retired: list[RetiredKey] = self._load_retired()

    def _load_retired(self) -> list[RetiredKey]:
        if not self.retired_path.exists():
            return []
        out = []
        for item in json.loads(self.retired_path.read_text()):
            jwk = {k: v for k, v in item.items() if k != "retired_at"}
            out.append(RetiredKey(RSAKey.import_key(jwk), float(item["retired_at"])))
        return out

    def live_retired(self, now: float | None = None) -> list[RetiredKey]:
        moment = time.time() if now is None else now
        return [r for r in self.retired if r.retired_at + self.overlap_seconds > moment]

    def rotate(self) -> str:
        """Retire the current key (public half only) and start signing with a new one; returns the new kid.

        Every retired public key stays in the file, not only those still published: audit
        checkpoints signed years ago (``gateway/audit/checkpoints.py``) must stay verifiable."""
        entries = [dict(_public_dict(r.public), retired_at=r.retired_at) for r in self.retired]
        entries.append(dict(_public_dict(self.current), retired_at=time.time()))
        self.retired_path.write_text(json.dumps(entries, indent=1))
        _write_private(self.path, RSAKey.generate_key(KEY_BITS, private=True))
        self.current = RSAKey.import_key(self.path.read_bytes())
        self.kid = self.current.thumbprint()
        self.retired = self._load_retired()
        return self.kid

    def _jwks(self, retired: list[RetiredKey]) -> dict[str, Any]:
        return {"keys": [_public_dict(self.current), *(_public_dict(r.public) for r in retired)]}

    def jwks(self) -> dict[str, Any]:
        """The public keys to publish at ``/.well-known/jwks.json``: current first, then live retired ones."""
        return self._jwks(self.live_retired())

    def verification_keys(self) -> KeySet:
        """Public keys only, each tagged with its kid and pinned to RS256."""
        return KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]

    def public(self, kid: str) -> RSAKey | None:
        """The public key with this ``kid``, current or retired at any time, or None."""
        for key in (self.current, *(r.public for r in self.retired)):
            if key.thumbprint() == kid:
                return RSAKey.import_key(_public_dict(key))
        return None

    def archive_jwks(self) -> dict[str, Any]:
        """Every public key this file ever signed with: what an outside party needs to verify old checkpoints."""
        return self._jwks(self.retired)
