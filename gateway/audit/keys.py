"""The gateway signing key as the audit checkpoints use it (``GATEWAY_SIGNING_KEY_FILE``).

The same file and format as the SMART token signer (``gateway/smart/keys.py``): an RSA
private key in PEM (mode 0600), RS256, ``kid`` = the RFC 7638 thumbprint, public halves of
retired keys in ``<file>.retired.json``. This module only reads that state (and creates
the key when no one has yet), so a checkpoint signed before a key rotation still
verifies as long as the retired public key is kept.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey

ALGORITHM = "RS256"
KEY_BITS = 2048


def _create(path: Path) -> None:
    """Write a new key unless one appears meanwhile (another process or the SMART key ring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(RSAKey.generate_key(KEY_BITS, private=True).as_pem(private=True))
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # fails if the file exists: never replace a key someone already uses
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def public_jwk(key: RSAKey) -> dict[str, Any]:
    data = dict(key.as_dict(private=False))
    data.update({"kid": key.thumbprint(), "use": "sig", "alg": ALGORITHM})
    return data


@dataclass(frozen=True, slots=True)
class SigningKeys:
    current: RSAKey
    retired: tuple[RSAKey, ...] = ()

    @property
    def kid(self) -> str:
        return self.current.thumbprint()

    def public(self, kid: str) -> RSAKey | None:
        """The public key with this ``kid`` (current or retired), or None."""
        for key in (self.current, *self.retired):
            if key.thumbprint() == kid:
                return RSAKey.import_key(public_jwk(key))
        return None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.current), *(public_jwk(k) for k in self.retired)]}


def load(path: str | Path, *, create: bool = True) -> SigningKeys:
    """The current key (created when absent and ``create``) and the retired public keys."""
    file = Path(path)
    if not file.exists():
        if not create:
            raise FileNotFoundError(f"signing key {file} does not exist")
        _create(file)
    current = RSAKey.import_key(file.read_bytes())
    retired_file = file.with_name(file.name + ".retired.json")
    retired: list[RSAKey] = []
    if retired_file.exists():
        for item in json.loads(retired_file.read_text()):
            retired.append(RSAKey.import_key({k: v for k, v in item.items() if k != "retired_at"}))
    return SigningKeys(current, tuple(retired))
