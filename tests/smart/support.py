"""A SMART client driven by hand over the ASGI transport: the browser steps, PKCE, assertions."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from gateway.settings import Settings
from tests.api_support import Api

BASE = "http://testserver.local"
FHIR = BASE + "/fhir"
TOKEN_URL = BASE + "/oauth/token"
APP_REDIRECT = "https://app.example/cb"
PUBLIC_SCOPE = (
    "openid fhirUser launch launch/patient offline_access online_access "
    "patient/*.rs patient/Observation.rs user/*.rs patient/Patient.rs"
)
BACKEND_SCOPE = "system/*.rs system/Observation.cruds"
PASSWORD = "demo-pass-2026"
USERNAMES = {"alice": "alice@example.org", "bob": "bob@example.org", "smith": "dr.smith@example.org"}


@lru_cache(maxsize=1)
def backend_keys() -> tuple[RSAKey, ECKey]:
    return RSAKey.generate_key(2048, private=True), ECKey.generate_key("P-384", private=True)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def assertion(
    client_id: str = "backend",
    *,
    alg: str = "RS384",
    aud: str = TOKEN_URL,
    exp_in: int = 240,
    jti: str | None = None,
    key: Any = None,
    kid: str | None = None,
) -> str:
    rsa, ec = backend_keys()
    signing = key if key is not None else (rsa if alg.startswith("RS") else ec)
    header = {"alg": alg, "typ": "JWT", "kid": kid or ("rsa1" if alg.startswith("RS") else "ec1")}
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + exp_in, "jti": jti or uuid.uuid4().hex}
    return jwt.encode(header, claims, signing, algorithms=[alg])


def form_fields(html: str) -> dict[str, str]:
    """Hidden and CSRF fields of the page's form."""
    return {
        unescape(m[0]): unescape(m[1])
        for m in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', html)
    }


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Smart:
    api: Api
    settings: Settings
    url: str
    secret: str
    """The confidential client's secret."""
    last: dict[str, Any] = field(default_factory=dict)

    @property
    def client(self) -> Any:
        return self.api.client

    def authorize_params(self, client_id: str = "app-public", **over: Any) -> dict[str, str]:
        verifier, challenge = pkce()
        self.last["verifier"] = verifier
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": APP_REDIRECT,
            "scope": "openid fhirUser launch/patient offline_access patient/Observation.rs patient/Patient.rs",
            "state": "st-" + secrets.token_hex(4),
            "aud": FHIR,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(over)
        return {k: v for k, v in params.items() if v is not None}

    async def login(self, params: dict[str, str], who: str) -> Any:
        """GET /oauth/authorize, then sign in; returns the consent page response."""
        self.client.cookies.clear()
        page = await self.client.get("/oauth/authorize", params=params)
        assert page.status_code == 200, page.text
        fields = form_fields(page.text)
        fields.update(username=USERNAMES[who], password=PASSWORD, action="login")
        consent = await self.client.post("/oauth/authorize", data=fields)
        assert consent.status_code == 200, consent.text
        assert 'name="decision" value="allow"' in consent.text
        return consent

    async def consent(
        self, consent_page: Any, decision: str = "allow", *, scopes: list[str] | None = None, patient: str | None = None
    ) -> Any:
        fields: dict[str, Any] = form_fields(consent_page.text)
        offered = re.findall(r'name="grant_scope" value="([^"]*)"', consent_page.text)
        fields["grant_scope"] = [unescape(s) for s in offered] if scopes is None else scopes
        fields["decision"] = decision
        if patient is not None:
            fields["patient_choice"] = patient
        return await self.client.post("/oauth/authorize", data=fields, follow_redirects=False)

    async def code_for(self, who: str, client_id: str = "app-public", **over: Any) -> tuple[str, dict[str, str]]:
        """Run the browser part of the code flow; returns (code, authorize params)."""
        params = self.authorize_params(client_id, **over)
        consent_page = await self.login(params, who)
        patient = None
        if 'name="patient_choice"' in consent_page.text:
            patient = re.findall(r'<option value="([^"]*)"', consent_page.text)[0]
        done = await self.consent(consent_page, patient=patient)
        assert done.status_code == 302, done.text
        query = query_of(done.headers["location"])
        assert done.headers["location"].startswith(params["redirect_uri"] + "?")
        assert query["state"] == params["state"]
        return query["code"], params

    async def token(self, data: dict[str, str], auth: tuple[str, str] | None = None) -> Any:
        return await self.client.post("/oauth/token", data=data, auth=auth)

    async def exchange(
        self, code: str, params: dict[str, str], *, verifier: str | None = None, auth: tuple[str, str] | None = None
    ) -> Any:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": params["redirect_uri"],
            "code_verifier": verifier if verifier is not None else self.last["verifier"],
        }
        if auth is None:
            data["client_id"] = params["client_id"]
        return await self.token(data, auth)

    async def tokens_for(self, who: str, **over: Any) -> dict[str, Any]:
        code, params = await self.code_for(who, **over)
        r = await self.exchange(code, params)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def backend_token(self, scope: str = "system/Observation.rs", **kw: Any) -> Any:
        return await self.token(
            {
                "grant_type": "client_credentials",
                "scope": scope,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion(**kw),
            }
        )

    async def fhir(self, path: str, token: str, **params: Any) -> Any:
        return await self.client.get(path, headers={"Authorization": f"Bearer {token}"}, params=params or None)

    async def introspect(self, token: str, client_id: str = "app-public") -> dict[str, Any]:
        r = await self.client.post("/oauth/introspect", data={"token": token, "client_id": client_id})
        assert r.status_code == 200, r.text
        return dict(r.json())
