"""Server-rendered login, consent and error pages of ``/oauth/authorize``, and their CSRF cookie.

Every value that came from a request or the database goes through ``html.escape``
(quotes included) before it reaches the page; the pages carry no script, and the
headers forbid framing, caching and referrers.

CSRF: each browser gets a short-lived cookie ``{nonce, user, expiry}`` signed with
an HMAC key derived from the master key (HttpOnly, SameSite=Lax, path ``/oauth``);
each form carries ``HMAC(key, "csrf:" + nonce)``. A POST is accepted only when the
cookie verifies, has not expired and the form token matches its nonce, so another
site can neither forge the form nor reuse a token it saw for another browser.
Logging in issues a new nonce (no session fixation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from html import escape
from typing import Any

from gateway.policy.scopes import Permission, ResourceScope, ScopeContext, parse_scope
from gateway.settings import Settings

COOKIE = "smart_authz"
COOKIE_SECONDS = 900

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

OAUTH_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "launch",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
)
"""The authorization-request parameters the pages carry forward as hidden fields."""


def _key(settings: Settings) -> bytes:
    return hmac.new(settings.master_key.encode(), b"smart-authorize-cookie", hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Browser:
    nonce: str
    user_id: str | None
    expires: int
    session_id: str | None = None
    """The ``_Session`` row of the sign-in (signing out or revoking it ends the sign-in and online grants)."""


def seal(settings: Settings, browser: Browser) -> str:
    payload = base64.urlsafe_b64encode(
        json.dumps({"n": browser.nonce, "u": browser.user_id, "e": browser.expires, "s": browser.session_id}).encode()
    ).decode()
    sig = hmac.new(_key(settings), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{sig}"


def unseal(settings: Settings, value: str | None) -> Browser | None:
    if not value or "." not in value or len(value) > 1024:
        return None
    payload, _, sig = value.rpartition(".")
    good = hmac.new(_key(settings), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sig, good):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("n"), str) or not isinstance(data.get("e"), int):
        return None
    if data["e"] <= time.time():
        return None
    user, session = data.get("u"), data.get("s")
    if not isinstance(session, str):
        user = session = None  # a sign-in is a user *and* the session that proves it
    elif not isinstance(user, str):
        user = None  # re-authenticating (prompt=login): the session is kept to be reused or ended
    return Browser(data["n"], user, data["e"], session)


def new_browser(user_id: str | None = None, session_id: str | None = None) -> Browser:
    return Browser(secrets.token_urlsafe(24), user_id, int(time.time()) + COOKIE_SECONDS, session_id)


def csrf_token(settings: Settings, browser: Browser) -> str:
    return hmac.new(_key(settings), f"csrf:{browser.nonce}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(settings: Settings, browser: Browser | None, token: str | None) -> bool:
    return browser is not None and isinstance(token, str) and hmac.compare_digest(token, csrf_token(settings, browser))


def cookie_header(settings: Settings, browser: Browser) -> str:
    secure = "; Secure" if settings.base_url.startswith("https://") else ""
    return f"{COOKIE}={seal(settings, browser)}; Max-Age={COOKIE_SECONDS}; Path=/oauth; HttpOnly; SameSite=Lax{secure}"


# --------------------------------------------------------------------------- scope wording

TYPE_WORDS = {
    "Patient": "demographics (name, birth date, contact details)",
    "Observation": "lab results",
    "Practitioner": "care team members",
    "CarePlan": "treatment plans",
    "Communication": "messages",
    "Appointment": "appointments",
    "AuditEvent": "access history",
    "*": "all kinds of health records",
}
PERMISSION_WORDS = {
    Permission.CREATE: "create",
    Permission.READ: "read",
    Permission.UPDATE: "update",
    Permission.DELETE: "delete",
    Permission.SEARCH: "search",
}
OTHER_WORDS = {
    "openid": "Confirm who you are to the app",
    "fhirUser": "Tell the app which patient or clinician record is you",
    "profile": "Share your basic profile",
    "launch": "Open with the patient selected in the portal",
    "launch/patient": "Work with one patient's records (you choose which)",
    "launch/encounter": "Work within the current visit",
    "offline_access": "Keep access when you are not using the app (until you revoke it)",
    "online_access": "Keep access while you are signed in",
}


def describe_scope(scope: str) -> str:
    """A granted scope in plain words (``patient/Observation.rs`` -> "Read and search lab results ...")."""
    try:
        parsed = parse_scope(scope)
    except ValueError:
        return scope
    if isinstance(parsed, str):
        return OTHER_WORDS.get(parsed, parsed)
    return _describe_resource(parsed)


def _describe_resource(scope: ResourceScope) -> str:
    verbs = [PERMISSION_WORDS[p] for p in Permission if p in scope.permissions]
    verb_text = ", ".join(verbs[:-1]) + (" and " if len(verbs) > 1 else "") + verbs[-1]
    what = TYPE_WORDS.get(scope.resource_type, scope.resource_type)
    whose = {
        ScopeContext.PATIENT: "of the selected patient",
        ScopeContext.USER: "that you can see",
        ScopeContext.SYSTEM: "of any patient (system access)",
    }[scope.context]
    text = f"{verb_text.capitalize()} {what} {whose}"
    if scope.restriction is not None:
        text += f" (only where {scope.restriction.query})"
    return text


# --------------------------------------------------------------------------- pages

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}
label{display:block;margin-top:1rem;font-weight:600}
input[type=text],input[type=password],select{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
button{margin-top:1.2rem;margin-right:.6rem;padding:.55rem 1.2rem;font-size:1rem;cursor:pointer}
:focus-visible{outline:3px solid #1d4ed8;outline-offset:2px}
.error{color:#991b1b;font-weight:600}
ul.scopes{list-style:none;padding:0}
ul.scopes li{margin:.4rem 0}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main id="main"><h1>{escape(title)}</h1>{body}</main></body></html>'
    )


def _hidden(params: dict[str, str], csrf: str) -> str:
    fields = [
        f'<input type="hidden" name="{escape(k)}" value="{escape(params[k])}">' for k in OAUTH_FIELDS if k in params
    ]
    fields.append(f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">')
    return "".join(fields)


def login_page(client_name: str, params: dict[str, str], csrf: str, error: str | None = None) -> str:
    err = f'<p class="error" role="alert" id="login-error">{escape(error)}</p>' if error else ""
    described = ' aria-describedby="login-error"' if error else ""
    body = (
        f"<p>Sign in to let <strong>{escape(client_name)}</strong> use your portal records.</p>{err}"
        '<form method="post" action="/oauth/authorize">'
        f"{_hidden(params, csrf)}"
        '<label for="username">Username or email</label>'
        f'<input type="text" id="username" name="username" autocomplete="username" required autofocus{described}>'
        '<label for="password">Password</label>'
        '<input type="password" id="password" name="password" autocomplete="current-password" required>'
        '<button type="submit" name="action" value="login">Sign in</button>'
        "</form>"
    )
    return _page("Sign in", body)


def consent_page(
    client_name: str,
    params: dict[str, str],
    csrf: str,
    username: str,
    scopes: list[str],
    patients: list[tuple[str, str]] | None,
    fixed_patient: str | None,
    error: str | None = None,
) -> str:
    """``patients``: the provider's choices (id, label) when ``launch/patient`` was asked; ``fixed_patient``:
    the label of the patient context that is already decided (own record, EHR launch)."""
    items = "".join(
        f'<li><input type="checkbox" id="scope-{i}" name="grant_scope" value="{escape(s)}" checked>'
        f' <label for="scope-{i}" style="display:inline;font-weight:normal">{escape(describe_scope(s))}'
        f" <code>{escape(s)}</code></label></li>"
        for i, s in enumerate(scopes)
    )
    picker = ""
    if patients is not None:
        options = "".join(f'<option value="{escape(pid)}">{escape(label)}</option>' for pid, label in patients)
        picker = (
            '<label for="patient_choice">Patient</label>'
            f'<select id="patient_choice" name="patient_choice" required>{options}</select>'
        )
    elif fixed_patient:
        picker = f"<p>Patient: <strong>{escape(fixed_patient)}</strong></p>"
    err = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"<p>Signed in as <strong>{escape(username)}</strong>.</p>"
        f"<p><strong>{escape(client_name)}</strong> asks to:</p>{err}"
        '<form method="post" action="/oauth/authorize">'
        f"{_hidden(params, csrf)}"
        f'<fieldset><legend>Permissions (untick any you do not want to give)</legend><ul class="scopes">{items}</ul>'
        "</fieldset>"
        f"{picker}"
        '<button type="submit" name="decision" value="allow">Allow</button>'
        '<button type="submit" name="decision" value="deny">Deny</button>'
        "</form>"
        '<form method="post" action="/oauth/authorize">'
        f"{_hidden(params, csrf)}"
        '<button type="submit" name="action" value="logout">Not you? Sign out</button>'
        "</form>"
    )
    return _page("Allow access?", body)


def error_page(message: str) -> str:
    return _page("Authorization error", f'<p class="error" role="alert">{escape(message)}</p>')


def params_of(items: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, Any] = {}
    for key, value in items:
        if key in OAUTH_FIELDS and key not in out:
            out[key] = value
    return out
