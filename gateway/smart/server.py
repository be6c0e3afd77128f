"""The OAuth 2 / SMART authorization server: authlib's grants and endpoints over our store.

How authlib's synchronous server meets our async store
------------------------------------------------------
authlib calls its hooks (``query_client``, ``query_authorization_code``,
``save_token`` ...) synchronously. We run each whole authlib call inside
``AsyncConnection.run_sync``: SQLAlchemy hands the callable a synchronous
``Connection`` facade over the *same* async connection and transaction, and each
statement it runs is awaited on the driver through SQLAlchemy's greenlet bridge. So:

* no worker thread and no second (synchronous) driver -- asyncpg and aiosqlite are
  the only drivers we ship;
* no pre-loading guesswork: authlib looks up exactly what it needs, when it needs it;
* every check and every write of one request (claiming a code, storing tokens,
  revoking a replayed code's tokens, recording an assertion ``jti``, the audit entry)
  commits or rolls back together, and on PostgreSQL the ``UPDATE ... WHERE usedAt IS
  NULL`` that claims a code row-locks it, so concurrent exchanges of one code serialize
  and exactly one wins (catalog B02).

The one thing that cannot run inside the bridge is network I/O: a client registered
with a ``jwks_url`` has its key set fetched asynchronously *before* the grant runs.

SMART departures from authlib's defaults, each deliberate and tested:

* PKCE: S256 only, a challenge is required at /authorize for every client type, and
  a verifier at /token for every client (authlib: ``plain`` default, challenge
  optional, verifier only for public clients);
* refresh tokens rotate (``INCLUDE_NEW_REFRESH_TOKEN = True``); a rotated token
  presented again revokes its whole family; a refresh may not widen the scope;
* client assertions: RS384/ES384 only, ``exp`` at most five minutes ahead, ``aud`` =
  our token endpoint, ``jti`` single use;
* authorization codes are single use *and* a replay revokes the tokens the code
  produced (RFC 6749 §4.1.2).
"""

from __future__ import annotations

import hmac
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode, UserInfo
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import Connection, update

from gateway.policy.scopes import granted_subset, parse_scopes
from gateway.settings import Settings
from gateway.signing_keys import ALGORITHM
from gateway.smart import store
from gateway.smart.tokens import (
    InvalidToken,
    absolute_fhir_user,
    fhir_base,
    issuer,
    keyring,
    live_token_row,
    sign_access_token,
    verify_signature,
)

ASSERTION_ALGORITHMS = ("RS384", "ES384")
ASSERTION_MAX_SECONDS = 300
ASSERTION_LEEWAY = 5
REFRESH_SCOPES = frozenset({"offline_access", "online_access"})
TOKEN_AUTH_METHODS = ["client_secret_basic", "private_key_jwt", "none"]


class ClientType:
    PUBLIC = "public"
    SYMMETRIC = "confidential-symmetric"
    ASYMMETRIC = "confidential-asymmetric"
    ALL = (PUBLIC, SYMMETRIC, ASYMMETRIC)


AUTH_METHOD = {
    ClientType.PUBLIC: "none",
    ClientType.SYMMETRIC: "client_secret_basic",
    ClientType.ASYMMETRIC: "private_key_jwt",
}


def token_endpoint(settings: Settings) -> str:
    return issuer(settings) + "/oauth/token"


# --------------------------------------------------------------------------- requests


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    """Parameters of one request: the query (GET /authorize) or the form body (every POST)."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {k: v[0] for k, v in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class SmartRequest(OAuth2Request):  # type: ignore[misc]
    """authlib's request built from Litestar's parts.

    ``OAuth2Request.__init__`` refuses plain-http URIs unless an environment variable
    is set; whether the public URL is https is the deployment's ``GATEWAY_BASE_URL``
    (TLS usually ends at a proxy), not something to guess per request, so the
    attributes are set here directly.
    """

    def __init__(
        self, method: str, uri: str, headers: Mapping[str, str], items: Iterable[tuple[str, str]], *, form: bool
    ) -> None:
        pairs = list(items)
        self.method = method
        self.uri = uri
        self.headers = headers
        self._body = None
        self.payload = FormPayload(pairs)
        self._form = FormPayload(pairs).data if form else {}
        self.client = None
        self.auth_method = None
        self.user = None
        self.authorization_code = None
        self.refresh_token = None
        self.credential = None
        self._scope = None

    @property
    def args(self) -> dict[str, str]:
        return dict(self.payload.data)

    @property
    def form(self) -> dict[str, str]:
        return self._form


# --------------------------------------------------------------------------- models


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_type: str
    secret_hash: str | None
    redirect_uris: list[str]
    scope: str
    jwks: dict[str, Any] | None
    jwks_url: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Client:
        return cls(
            row["clientId"],
            row["clientType"],
            row["secretHash"],
            list(row["redirectUris"] or []),
            row["scope"],
            row["jwks"],
            row["jwksUrl"],
        )

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """Only when exactly one is registered; with several, the request must name one (B03)."""
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """Requested scopes cut down to the registration (``granted_subset``); None when nothing is left."""
        if not scope:
            return None
        try:
            granted = granted_subset(parse_scopes(scope), parse_scopes(self.scope))
        except ValueError:
            return None
        text = str(granted)
        return text or None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(store.digest(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return AUTH_METHOD.get(self.client_type) == method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and bool(self.redirect_uris)

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":
            return self.client_type == ClientType.ASYMMETRIC
        return grant_type in ("authorization_code", "refresh_token") and bool(self.redirect_uris)


@dataclass
class GrantUser:
    """The person (and launch context) a code or refresh token acts for."""

    user_id: str
    fhir_user: str | None
    patient: str | None
    need_patient_banner: bool
    grant_id: str
    scope: str = ""
    launch: str | None = None
    session_id: str | None = None
    """The sign-in (``_Session``) that approved the grant; binds an ``online_access`` refresh token."""

    def get_user_id(self) -> str:
        return self.user_id


@dataclass
class AuthCode:
    row: dict[str, Any]

    def get_redirect_uri(self) -> str:
        return str(self.row["redirectUri"])

    def get_scope(self) -> str:
        return str(self.row["scope"])

    def get_nonce(self) -> str | None:
        nonce = self.row["nonce"]
        return str(nonce) if nonce else None

    def get_auth_time(self) -> int:
        return int(self.row["createdAt"].timestamp())

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None

    @property
    def code_challenge(self) -> str:
        return str(self.row["codeChallenge"])

    @property
    def code_challenge_method(self) -> str:
        return str(self.row["codeChallengeMethod"])


@dataclass
class StoredToken:
    """A refresh token row, or an access token (its claims and row), for refresh/introspect/revoke."""

    kind: str
    row: dict[str, Any]
    claims: dict[str, Any] = field(default_factory=dict)

    def get_scope(self) -> str:
        return str(self.row["scope"] if self.kind == "refresh_token" else self.claims["scope"])

    def check_client(self, client: Client) -> bool:
        return bool(self.row["clientId"] == client.client_id)

    def is_expired(self) -> bool:
        return bool(self.row["expiresAt"] <= store.utcnow())

    def is_revoked(self) -> bool:
        return self.row["revokedAt"] is not None or (self.kind == "refresh_token" and self.row["rotatedAt"] is not None)


# --------------------------------------------------------------------------- per-request state


@dataclass
class Event:
    """Something the audit log must record once the grant has run."""

    action: str
    outcome: str
    summary: str
    user_id: str | None = None
    client_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    patient: str | None = None


@dataclass
class Issued:
    access_jti: str
    access_expires: int
    refresh: str | None
    grant_id: str
    client_id: str
    user: GrantUser | None
    scope: str


@dataclass
class State:
    conn: Connection
    settings: Settings
    now: datetime
    jwks_by_url: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    issued: Issued | None = None
    clients: dict[str, Client | None] = field(default_factory=dict)

    def event(self, action: str, summary: str, *, outcome: str = "success", **kw: Any) -> None:
        self.events.append(Event(action, outcome, summary=summary, **kw))


# --------------------------------------------------------------------------- client assertions


class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    """``private_key_jwt`` (RFC 7523 §2.2 as profiled by SMART Backend Services)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, state: State) -> None:
        super().__init__(validate_jti=True, leeway=ASSERTION_LEEWAY)
        self.state = state

    def get_audiences(self) -> list[str]:
        return [token_endpoint(self.state.settings)]

    def resolve_client_public_key(self, client: Client) -> KeySet:
        data = client.jwks if client.jwks else self.state.jwks_by_url.get(client.jwks_url or "")
        if not data:
            raise InvalidClientError(description="The client's public keys are not available.")
        try:
            return public_key_set(data)
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise InvalidClientError(description="The client's key set is unusable.") from exc

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            alg = jws.extract_compact(assertion.encode()).headers().get("alg")
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description="Invalid JWT assertion.") from exc
        if alg not in ASSERTION_ALGORITHMS:
            raise InvalidClientError(description="Client assertions must be signed with RS384 or ES384.")
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=[alg])
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description="The client assertion signature does not verify.") from exc
        claims = token.claims
        exp = claims.get("exp")
        if not isinstance(exp, int):
            raise InvalidClientError(description="The client assertion needs a numeric 'exp'.")
        if exp > time.time() + ASSERTION_MAX_SECONDS + ASSERTION_LEEWAY:
            raise InvalidClientError(description="The client assertion 'exp' is more than five minutes ahead.")
        if not isinstance(claims.get("jti"), str) or not claims["jti"] or len(claims["jti"]) > 255:
            raise InvalidClientError(description="The client assertion needs a 'jti'.")
        self.verify_claims(claims)
        return dict(claims)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        expires = datetime.fromtimestamp(int(claims["exp"]), tz=self.state.now.tzinfo) + timedelta(seconds=60)
        return store.remember_assertion(self.state.conn, str(claims["iss"]), jti, expires, self.state.now)


def public_key_set(data: Mapping[str, Any]) -> KeySet:
    """A client's JWKS, public RSA/EC keys only (an ``oct`` key would let HMAC in)."""
    keys = [dict(k) for k in data.get("keys", []) if isinstance(k, Mapping) and k.get("kty") in ("RSA", "EC")]
    for key in keys:
        for private in ("d", "p", "q", "dp", "dq", "qi"):
            key.pop(private, None)
    if not keys:
        raise ValueError("no RSA or EC public keys")
    return KeySet.import_key_set({"keys": keys})


# --------------------------------------------------------------------------- grants


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE as SMART requires it: S256, always, for every client type."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": CodeChallenge.CODE_CHALLENGE_METHODS["S256"]}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class SmartRequestChecks:
    """Authorization-request checks authlib does not know about: ``aud`` and the EHR ``launch``."""

    def __init__(self, state: State) -> None:
        self.state = state

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("aud") != fhir_base(self.state.settings):
            raise InvalidRequestError(f"'aud' must be {fhir_base(self.state.settings)}.")
        if not data.get("state"):
            raise InvalidRequestError("'state' is required.")
        scopes = set((grant.request.scope or "").split())
        if any(s.startswith("system/") for s in scopes):
            raise InvalidScopeError("system/ scopes are for client_credentials only.")
        launch = data.get("launch")
        if launch is not None and store.peek_launch(self.state.conn, launch, self.state.now) is None:
            raise InvalidRequestError("Unknown, used or expired 'launch'.")


class SmartOpenIDCode(OpenIDCode):  # type: ignore[misc]
    """``openid fhirUser``: an id_token signed with the gateway key, ``fhirUser`` an absolute FHIR URL."""

    def __init__(self, state: State) -> None:
        super().__init__(require_nonce=False)
        self.state = state

    def resolve_client_private_key(self, client: Client) -> Any:
        return keyring(self.state.settings).current

    def get_client_algorithm(self, client: Client) -> str:
        return ALGORITHM

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": ALGORITHM, "kid": keyring(self.state.settings).kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": issuer(self.state.settings),
            "aud": [client.client_id],
            "iat": now,
            "exp": now + self.state.settings.access_token_seconds,
        }

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return store.nonce_seen(self.state.conn, request.payload.client_id, nonce)

    def generate_user_info(self, user: GrantUser, scope: str) -> UserInfo:
        info = UserInfo(sub=user.user_id)
        if "fhirUser" in scope.split() and user.fhir_user:
            info["fhirUser"] = absolute_fhir_user(self.state.settings, user.fhir_user)
        return info


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    state: State

    def save_authorization_code(self, code: str, request: Any) -> None:
        user: GrantUser = request.user
        st = self.state
        payload = request.payload.data
        store.insert_row(
            st.conn,
            store.codes_t,
            {
                "codeHash": store.digest(code),
                "clientId": request.client.client_id,
                "redirectUri": payload.get("redirect_uri") or request.client.get_default_redirect_uri(),
                "scope": user.scope,
                "user": user.user_id,
                "patient": user.patient,
                "fhirUser": user.fhir_user,
                "nonce": payload.get("nonce"),
                "codeChallenge": payload["code_challenge"],
                "codeChallengeMethod": payload.get("code_challenge_method", "S256"),
                "needPatientBanner": user.need_patient_banner,
                "grantId": user.grant_id,
                "sessionId": user.session_id,
                "createdAt": st.now,
                "expiresAt": st.now + timedelta(seconds=st.settings.auth_code_seconds),
            },
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
        st = self.state
        h = store.digest(code)
        row = st.conn.execute(store.codes_t.select().where(store.codes_t.c.codeHash == h)).first()
        if row is None:
            return None
        data = dict(row._mapping)
        if data["clientId"] != client.client_id:
            st.event("oauth-refused", "code presented by another client", outcome="failure", client_id=client.client_id)
            return None
        claimed = st.conn.execute(
            update(store.codes_t)
            .where(store.codes_t.c.codeHash == h, store.codes_t.c.usedAt.is_(None))
            .values(usedAt=st.now)
        )
        if claimed.rowcount != 1:
            store.revoke_grant(st.conn, data["grantId"], st.now)
            st.event(
                "oauth-revoke",
                "authorization code replayed: tokens issued from it revoked",
                outcome="failure",
                user_id=data["user"],
                client_id=client.client_id,
                metadata={"grant": data["grantId"]},
                patient=data["patient"],
            )
            return None
        if data["expiresAt"] <= st.now:
            return None
        return AuthCode(data)

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        """Nothing to do: ``query_authorization_code`` already claimed the code (``usedAt``) atomically."""

    def authenticate_user(self, authorization_code: AuthCode) -> GrantUser | None:
        row = authorization_code.row
        ctx = store.user_context(self.state.conn, row["user"])
        if ctx is None or not ctx.active:
            return None
        return GrantUser(
            ctx.user_id,
            row["fhirUser"],
            row["patient"],
            bool(row["needPatientBanner"]),
            row["grantId"],
            row["scope"],
            session_id=row["sessionId"],
        )


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    state: State

    def authenticate_refresh_token(self, refresh_token: str) -> StoredToken | None:
        st = self.state
        row = store.refresh_token_row(st.conn, refresh_token)
        if row is None or row["revokedAt"] is not None:
            return None
        if row["rotatedAt"] is not None:
            self._revoke_family(row, "rotated refresh token reused: token family revoked")
            return None
        if row["expiresAt"] <= st.now:
            return None
        if row["sessionId"] is not None and store.session_alive(st.conn, row["sessionId"], row["user"], st.now) is None:
            self._revoke_family(row, "online_access refresh token used after its sign-in ended: token family revoked")
            return None
        return StoredToken("refresh_token", row)

    def _revoke_family(self, row: Any, reason: str) -> None:
        """Revoke every token of the refresh token's grant and audit why (a refusal, not a client's revoke)."""
        st = self.state
        store.revoke_grant(st.conn, row["grantId"], st.now)
        st.event(
            "oauth-revoke",
            reason,
            outcome="failure",
            user_id=row["user"],
            client_id=row["clientId"],
            metadata={"grant": row["grantId"]},
            patient=row["patient"],
        )

    def authenticate_user(self, refresh_token: StoredToken) -> GrantUser | None:
        row = refresh_token.row
        ctx = store.user_context(self.state.conn, row["user"])
        if ctx is None or not ctx.active:
            return None
        scope = self.request.payload.scope or row["scope"]
        return GrantUser(
            ctx.user_id,
            row["fhirUser"],
            row["patient"],
            bool(row["needPatientBanner"]),
            row["grantId"],
            scope,
            session_id=row["sessionId"],
        )

    def revoke_old_credential(self, refresh_token: StoredToken) -> None:
        """Rotate: the presented token is spent. Losing a race to another use of it is a reuse."""
        st = self.state
        done = st.conn.execute(
            update(store.refresh_t)
            .where(store.refresh_t.c.tokenHash == refresh_token.row["tokenHash"], store.refresh_t.c.rotatedAt.is_(None))
            .values(rotatedAt=st.now)
        )
        if done.rowcount != 1:
            store.revoke_grant(st.conn, refresh_token.row["grantId"], st.now)
            raise InvalidGrantError("Refresh token already used.")


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    """SMART Backend Services: private_key_jwt only, ``system/`` scopes only."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]

    def validate_requested_scope(self) -> None:
        requested = self.request.payload.scope or ""
        words = requested.split()
        if not words or any(not w.startswith("system/") for w in words):
            raise InvalidScopeError("Backend services request system/ scopes only.")
        granted = self.request.client.get_allowed_scope(requested)
        if not granted:
            raise InvalidScopeError("None of the requested scopes is allowed for this client.")
        self.request.scope = granted

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


# --------------------------------------------------------------------------- introspection, revocation


def find_token(st: State, token: str, hint: str | None) -> StoredToken | None:
    """An access token (a JWT of ours whose jti we stored) or a refresh token, by value."""
    if hint != "refresh_token" and token.count(".") == 2:
        try:
            claims = verify_signature(st.settings, token)
        except InvalidToken:
            return None
        row = store.access_token_row(st.conn, claims["jti"])
        return StoredToken("access_token", row, claims) if row is not None else None
    row = store.refresh_token_row(st.conn, token)
    return StoredToken("refresh_token", row) if row is not None else None


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662. A client may introspect the tokens issued to it."""

    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def __init__(self, server: Any, state: State) -> None:
        super().__init__(server)
        self.state = state

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        return find_token(self.state, token_string, token_type_hint)

    def check_permission(self, token: StoredToken, client: Client, request: Any) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: StoredToken) -> dict[str, Any]:
        row = token.row
        if token.kind == "access_token" and live_token_row(self.state.conn, token.claims) is None:
            return {"active": False}
        if token.kind == "access_token":
            claims = token.claims
            out = {
                "active": True,
                "token_type": "Bearer",
                "scope": claims["scope"],
                "client_id": claims["client_id"],
                "sub": claims["sub"],
                "iss": claims["iss"],
                "aud": claims["aud"],
                "exp": claims["exp"],
                "iat": claims["iat"],
            }
            if claims.get("patient"):
                out["patient"] = claims["patient"]
            if claims.get("fhirUser"):
                out["fhirUser"] = claims["fhirUser"]
            return out
        out = {
            "active": True,
            "token_type": "refresh_token",
            "scope": row["scope"],
            "client_id": row["clientId"],
            "sub": row["user"],
            "exp": int(row["expiresAt"].timestamp()),
        }
        if row["patient"]:
            out["patient"] = row["patient"]
        if row["fhirUser"]:
            out["fhirUser"] = absolute_fhir_user(self.state.settings, row["fhirUser"])
        return out


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009. Revoking either token of a grant revokes the whole grant (its refresh chain
    and every access token it produced), so a revoked app loses access at once."""

    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def __init__(self, server: Any, state: State) -> None:
        super().__init__(server)
        self.state = state

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        return find_token(self.state, token_string, token_type_hint)

    def revoke_token(self, token: StoredToken, request: Any) -> None:
        st = self.state
        grant_id = token.row["grantId"]
        if grant_id:
            store.revoke_grant(st.conn, grant_id, st.now)
        else:
            st.conn.execute(
                update(store.access_t).where(store.access_t.c.jti == token.row["jti"]).values(revokedAt=st.now)
            )
        st.event(
            "oauth-revoke",
            f"{token.kind} revoked by its client",
            user_id=token.row["user"],
            client_id=token.row["clientId"],
            metadata={"grant": grant_id} if grant_id else {"jti": token.row["jti"]},
        )


# --------------------------------------------------------------------------- the server


class SmartServer(AuthorizationServer):  # type: ignore[misc]
    """One per request: its hooks read and write through ``state.conn`` (see the module docstring)."""

    def __init__(self, state: State) -> None:
        super().__init__()
        self.state = state
        self.register_token_generator("default", self._generate)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJwt(state))
        self.register_grant(
            _bind(AuthorizationCodeGrant, state),
            [S256Only(required=True), SmartRequestChecks(state), SmartOpenIDCode(state)],
        )
        self.register_grant(_bind(RefreshTokenGrant, state))
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(Introspection(self, state))
        self.register_endpoint(Revocation(self, state))

    def query_client(self, client_id: str) -> Client | None:
        if not isinstance(client_id, str) or len(client_id) > 128:
            return None
        if client_id not in self.state.clients:
            row = store.client_row(self.state.conn, client_id)
            self.state.clients[client_id] = Client.from_row(row) if row else None
        return self.state.clients[client_id]

    def create_oauth2_request(self, request: Any) -> Any:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers or [])

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's optional signals; the audit events are recorded by the hooks themselves."""

    def _generate(
        self,
        grant_type: str,
        client: Client,
        user: GrantUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        settings = self.state.settings
        granted = scope or ""
        if user is None:
            lifetime = settings.backend_token_seconds
            at = sign_access_token(
                settings, client_id=client.client_id, subject=client.client_id, scope=granted, lifetime=lifetime
            )
            grant_id = store.new_id()
        else:
            lifetime = settings.access_token_seconds
            at = sign_access_token(
                settings,
                client_id=client.client_id,
                subject=user.user_id,
                scope=granted,
                lifetime=lifetime,
                patient=user.patient,
                fhir_user=user.fhir_user if "fhirUser" in granted.split() else None,
            )
            grant_id = user.grant_id
        token: dict[str, Any] = {
            "access_token": at.token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": granted,
        }
        refresh = None
        if user is not None:
            if user.patient:
                token["patient"] = user.patient
            token["need_patient_banner"] = user.need_patient_banner
            if include_refresh_token and REFRESH_SCOPES & set(granted.split()):
                refresh = store.new_secret()
                token["refresh_token"] = refresh
        self.state.issued = Issued(at.jti, at.expires_at, refresh, grant_id, client.client_id, user, granted)
        return token

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        st = self.state
        issued = st.issued
        assert issued is not None
        user = issued.user
        online = user is not None and store.online_only(issued.scope)
        store.insert_row(
            st.conn,
            store.access_t,
            {
                "jti": issued.access_jti,
                "grantId": issued.grant_id,
                "clientId": issued.client_id,
                "user": user.user_id if user else None,
                "sessionId": user.session_id if user is not None and online else None,
                "createdAt": st.now,
                "expiresAt": datetime.fromtimestamp(issued.access_expires, tz=st.now.tzinfo),
            },
        )
        if issued.refresh and user is not None:
            expires = st.now + timedelta(days=st.settings.refresh_token_days)
            session_id = user.session_id if store.online_only(issued.scope) else None
            if store.online_only(issued.scope):
                # SMART online_access: usable only while the sign-in that approved it lasts.
                until = store.session_alive(st.conn, user.session_id or "", user.user_id, st.now)
                if until is None:
                    raise InvalidGrantError("The sign-in that approved this online_access grant has ended.")
                expires = min(expires, until)
            store.insert_row(
                st.conn,
                store.refresh_t,
                {
                    "tokenHash": store.digest(issued.refresh),
                    "grantId": issued.grant_id,
                    "clientId": issued.client_id,
                    "user": user.user_id,
                    "patient": user.patient,
                    "fhirUser": user.fhir_user,
                    "scope": issued.scope,
                    "needPatientBanner": user.need_patient_banner,
                    "sessionId": session_id,
                    "createdAt": st.now,
                    "expiresAt": expires,
                },
            )
        st.event(
            "oauth-token",
            f"access token issued ({request.payload.grant_type})",
            user_id=user.user_id if user else None,
            client_id=issued.client_id,
            metadata={
                "grant_type": request.payload.grant_type,
                "scope": issued.scope,
                "jti": issued.access_jti,
                "grant": issued.grant_id,
                "refresh": bool(issued.refresh),
            },
            patient=user.patient if user else None,
        )


def _bind(grant_cls: type[Any], state: State) -> type[Any]:
    """A grant subclass carrying this request's state (authlib instantiates grants itself)."""
    return type(grant_cls.__name__, (grant_cls,), {"state": state})
