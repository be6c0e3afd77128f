"""Fixtures for the SMART authorization server: the demo app with a signing key and registered clients."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.signing_keys import KeyRing
from gateway.smart.clients import add_client
from gateway.store.database import Database
from tests.api_support import Api, make_settings
from tests.smart.support import (
    APP_REDIRECT,
    BACKEND_SCOPE,
    PUBLIC_SCOPE,
    Smart,
    backend_keys,
)

_KEY_DIR = Path(tempfile.mkdtemp(prefix="gateway-smart-keys-"))
_KEY_FILE = _KEY_DIR / "signing-key.pem"
KeyRing(_KEY_FILE, 3660)


async def _register(url: str) -> dict[str, str]:
    db = Database(url)
    try:
        await add_client(
            db, "app-public", redirect_uris=[APP_REDIRECT], scope=PUBLIC_SCOPE, client_type="public", name="Lab Viewer"
        )
        await add_client(
            db,
            "app-other",
            redirect_uris=["https://other.example/cb", "https://other.example/cb2"],
            scope=PUBLIC_SCOPE,
            client_type="public",
        )
        secret = await add_client(
            db, "app-conf", redirect_uris=[APP_REDIRECT], scope=PUBLIC_SCOPE, client_type="confidential-symmetric"
        )
        rsa, ec = backend_keys()
        await add_client(
            db,
            "backend",
            redirect_uris=[],
            scope=BACKEND_SCOPE,
            client_type="confidential-asymmetric",
            jwks={"keys": [rsa.as_dict(private=False, kid="rsa1"), ec.as_dict(private=False, kid="ec1")]},
        )
        return {"app-conf": secret.secret or ""}
    finally:
        await db.dispose()


@pytest.fixture
async def smart(demo_database: tuple[str, dict[str, str]], tmp_path: Path) -> AsyncIterator[Smart]:
    """The demo data, four registered clients (public, public with two redirect URIs, confidential
    with a secret, a backend with RS384 and ES384 keys) and a signing key shared by the run."""
    url, users = demo_database
    secrets = await _register(url)
    key_file = tmp_path / "signing-key.pem"
    shutil.copy(_KEY_FILE, key_file)
    settings = make_settings(url, signing_key_file=str(key_file))
    app = create_app(settings)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        api = Api(client)
        for email, object_id in users.items():
            if "@" in email and not email.startswith("token:"):
                api.ids[email.split("@")[0] + ":user"] = object_id
                api.tokens[email.split("@")[0].removeprefix("dr.")] = users["token:" + email]
        api.ids["alice:patient"], api.ids["bob:patient"] = users["patient:DEMO-0001"], users["patient:DEMO-0002"]
        api.ids["smith:provider"], api.ids["jones:provider"] = users["provider:dr.smith"], users["provider:dr.jones"]
        yield Smart(api, settings, url, secrets["app-conf"])
