"""``POST /fhir`` with a ``batch`` or ``transaction`` Bundle (FHIR R4 §3.1.0.11).

Every entry is routed through :func:`gateway.fhir.router.handle`, exactly as if it had
arrived on its own URL: the same scopes, policy, validation, mapping and audit.

* ``batch``: entries run independently, each in its own transaction; a failing entry gets
  its status and OperationOutcome in the ``batch-response`` and the others stand.
* ``transaction``: all writes run in ONE database transaction (:mod:`.transaction`), in
  the FHIR order DELETE, POST, PUT; ``urn:uuid:`` ``fullUrl``s of created resources are
  resolved in every other entry's references (creates are ordered so a referenced one
  comes first); ``ifNoneExist`` (conditional create) and ``ifMatch`` work inside it. Any
  failing entry rolls everything back and the answer is that entry's status with an
  OperationOutcome naming ``Bundle.entry[i]``. GET entries run after the commit (their
  reads are audited by the group commit, which must not wait on our own open transaction).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from gateway.fhir import router, scoping
from gateway.fhir.context import FhirContext, FhirRequest, FhirResponse
from gateway.fhir.outcome import FhirError, OutcomeIssue, bad_request
from gateway.fhir.registry import RESOURCES
from gateway.fhir.transaction import in_transaction

MAX_ENTRIES = 1000
_METHODS = ("GET", "POST", "PUT", "DELETE")
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3}
_UUID = re.compile(r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_STATUS_TEXT = {
    200: "200 OK",
    201: "201 Created",
    204: "204 No Content",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    409: "409 Conflict",
    410: "410 Gone",
    412: "412 Precondition Failed",
    422: "422 Unprocessable Entity",
}


@dataclass(slots=True)
class Entry:
    index: int
    method: str
    url: str
    resource_type: str
    rest: str
    query: list[tuple[str, str]]
    full_url: str | None
    resource: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


def _where(index: int, element: str = "") -> str:
    return f"Bundle.entry[{index}]" + (f".{element}" if element else "")


def _entry(index: int, raw: Any, fhir_base: str) -> Entry:
    if not isinstance(raw, dict):
        raise bad_request("A Bundle entry must be an object.", _where(index))
    request = raw.get("request")
    if not isinstance(request, dict):
        raise bad_request("Each entry needs a request (method and url).", _where(index, "request"))
    method, url = request.get("method"), request.get("url")
    if method not in _METHODS:
        raise FhirError.of(
            400,
            "not-supported",
            f"request.method must be one of {', '.join(_METHODS)}",
            _where(index, "request.method"),
        )
    if not isinstance(url, str) or not url:
        raise bad_request("request.url is required.", _where(index, "request.url"))
    if url.startswith(fhir_base + "/"):
        url = url[len(fhir_base) + 1 :]
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or parts.path.startswith("/"):
        raise bad_request("request.url must be relative to this server's base.", _where(index, "request.url"))
    resource_type, _, rest = parts.path.partition("/")
    if resource_type not in RESOURCES:
        raise FhirError.of(
            404, "not-supported", f"Unknown resource type {resource_type!r}", _where(index, "request.url")
        )
    resource = raw.get("resource")
    if method in ("POST", "PUT"):
        if not isinstance(resource, dict):
            raise bad_request(f"A {method} entry needs a resource.", _where(index, "resource"))
    elif resource is not None:
        raise bad_request(f"A {method} entry carries no resource.", _where(index, "resource"))
    full_url = raw.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise bad_request("fullUrl must be a string.", _where(index, "fullUrl"))
    headers: dict[str, str] = {}
    for element, header in (("ifMatch", "if-match"), ("ifNoneExist", "if-none-exist")):
        value = request.get(element)
        if value is not None:
            if not isinstance(value, str):
                raise bad_request(f"request.{element} must be a string.", _where(index, f"request.{element}"))
            headers[header] = value
    return Entry(
        index,
        str(method),
        url,
        resource_type,
        rest,
        parse_qsl(parts.query, keep_blank_values=True),
        full_url,
        resource,
        headers,
    )


def _route(entry: Entry) -> tuple[router.Route | None, dict[str, str]]:
    rest = entry.rest
    # literal segments (``_history``, ``_search``) before ``{id}``, as the HTTP router matches them
    for r in sorted(router.ROUTES, key=lambda r: "{" in r.pattern):
        if r.method != entry.method:
            continue
        pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", r.pattern) + "$"
        found = re.match(pattern, rest)
        if found:
            return r, found.groupdict()
    return None, {}


def _resolve(value: Any, refs: dict[str, str]) -> Any:
    """Replace ``urn:uuid:`` references (``Reference.reference``) with the created ``Type/id``."""
    if isinstance(value, dict):
        out = {k: _resolve(v, refs) for k, v in value.items()}
        target = out.get("reference")
        if isinstance(target, str) and target in refs:
            out["reference"] = refs[target]
        return out
    if isinstance(value, list):
        return [_resolve(v, refs) for v in value]
    return value


def _uuid_refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {v for k, v in value.items() if k == "reference" and isinstance(v, str) and v.startswith("urn:uuid:")}
        for v in value.values():
            found |= _uuid_refs(v)
        return found
    if isinstance(value, list):
        return {r for v in value for r in _uuid_refs(v)}
    return set()


async def _run(ctx: FhirContext, base: FhirRequest, entry: Entry, refs: dict[str, str]) -> FhirResponse:
    route, path = _route(entry)
    body = b""
    headers = {**entry.headers, "content-type": "application/fhir+json"}
    prefer = base.header("prefer")
    if prefer:
        headers["prefer"] = prefer
    if entry.resource is not None:
        resource = _resolve(entry.resource, refs)
        if "if-none-exist" in headers:
            headers["if-none-exist"] = _resolve_query(headers["if-none-exist"], refs)
        body = msgspec.json.encode(resource)
    query = [(k, refs.get(v, v)) for k, v in entry.query]
    req = FhirRequest(entry.method, base.principal, query, headers, body)
    return await router.handle(ctx, entry.resource_type, route, req, path)


def _resolve_query(query: str, refs: dict[str, str]) -> str:
    for urn, target in refs.items():
        query = query.replace(urn, target)
    return query


def _response_entry(entry: Entry, resp: FhirResponse, fhir_base: str) -> dict[str, Any]:
    response: dict[str, Any] = {"status": _STATUS_TEXT.get(resp.status, str(resp.status))}
    headers = {k.lower(): v for k, v in resp.headers.items()}
    if "location" in headers:
        response["location"] = headers["location"]
    if "etag" in headers:
        response["etag"] = headers["etag"]
    if "last-modified" in headers:
        from email.utils import parsedate_to_datetime

        response["lastModified"] = parsedate_to_datetime(headers["last-modified"]).isoformat().replace("+00:00", "Z")
    out: dict[str, Any] = {}
    body = resp.body
    if (resp.status >= 400 and body is not None) or (
        body is not None and body.get("resourceType") == "OperationOutcome"
    ):
        response["outcome"] = body
    elif body is not None:
        if "id" in body and body.get("resourceType") in RESOURCES:
            out["fullUrl"] = f"{fhir_base}/{body['resourceType']}/{body['id']}"
        out["resource"] = body
    out["response"] = response
    return out


def _created_ref(resp: FhirResponse) -> str | None:
    """``Type/id`` of what a create answered with (201 new, or 200 for a matched conditional create)."""
    location = next((v for k, v in resp.headers.items() if k.lower() == "location"), None)
    if location is not None:
        kind, _, rest = location.split("/fhir/", 1)[-1].partition("/")
        return f"{kind}/{rest.split('/', 1)[0]}"
    if resp.body is not None and "id" in resp.body and resp.body.get("resourceType") in RESOURCES:
        return f"{resp.body['resourceType']}/{resp.body['id']}"
    return None


def _decode(req: FhirRequest) -> tuple[str, list[Any], str]:
    try:
        bundle = msgspec.json.decode(req.body)
    except msgspec.DecodeError as exc:
        raise bad_request("The body is not valid JSON.") from exc
    if b"\\u0000" in req.body:
        raise bad_request("Strings must not contain NUL characters.")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise bad_request("Expected a Bundle.", "Bundle.resourceType")
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise FhirError.of(400, "not-supported", "Bundle.type must be batch or transaction.", "Bundle.type")
    raw = bundle.get("entry") or []
    if not isinstance(raw, list):
        raise bad_request("Bundle.entry must be a list.", "Bundle.entry")
    if len(raw) > MAX_ENTRIES:
        raise FhirError.of(413, "too-costly", f"At most {MAX_ENTRIES} entries per Bundle.", "Bundle.entry")
    return str(kind), raw, str(bundle.get("id") or "")


async def process(ctx: FhirContext, req: FhirRequest) -> FhirResponse:
    kind, raw, _ = _decode(req)
    if kind == "batch":
        return await _batch(ctx, req, raw)
    return await _transaction(ctx, req, raw)


async def _batch(ctx: FhirContext, req: FhirRequest, raw: list[Any]) -> FhirResponse:
    entries: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        try:
            entry = _entry(index, item, ctx.fhir_base)
        except FhirError as exc:
            failed = FhirResponse(exc.status, exc.body())
            entries.append(
                {"response": {"status": _STATUS_TEXT.get(exc.status, str(exc.status)), "outcome": failed.body}}
            )
            continue
        # Batch entries may not depend on each other (FHIR R4 §3.1.0.11.1): references stay as given.
        entries.append(_response_entry(entry, await _run(ctx, req, entry, {}), ctx.fhir_base))
    return FhirResponse(200, {"resourceType": "Bundle", "type": "batch-response", "entry": entries})


def _failure(entry: Entry, resp: FhirResponse) -> FhirError:
    issues = (resp.body or {}).get("issue") or [{"code": "exception", "diagnostics": "failed"}]
    named = [
        OutcomeIssue(
            str(i.get("code") or "processing"),
            f"{_where(entry.index)} ({entry.method} {entry.url}): {i.get('diagnostics', '')}",
            str(i.get("severity") or "error"),
            expression=_where(entry.index) + (f" / {i['expression'][0]}" if i.get("expression") else ""),
        )
        for i in issues
    ]
    return FhirError(resp.status, *named)


def _ordered(entries: list[Entry]) -> list[Entry]:
    """FHIR processing order (DELETE, POST, PUT, GET); creates after the creates they reference."""
    posts = [e for e in entries if e.method == "POST"]
    urns = {e.full_url for e in posts if e.full_url}
    done: set[str] = set()
    ordered_posts: list[Entry] = []
    pending = list(posts)
    while pending:
        ready = [e for e in pending if (_uuid_refs(e.resource) & urns) <= done]
        if not ready:
            first = pending[0]
            raise bad_request("The created resources reference each other in a cycle.", _where(first.index, "resource"))
        for e in ready:
            ordered_posts.append(e)
            if e.full_url:
                done.add(e.full_url)
        pending = [e for e in pending if e not in ready]
    rest = sorted((e for e in entries if e.method != "POST"), key=lambda e: (_ORDER[e.method], e.index))
    return [e for e in rest if e.method == "DELETE"] + ordered_posts + [e for e in rest if e.method != "DELETE"]


async def _preflight(ctx: FhirContext, req: FhirRequest, entries: list[Entry]) -> None:
    """Authorize every entry before anything is written (catalog A07: a transaction with any
    entry the caller may not make fails whole and commits nothing).

    Each entry passes the same scope check as on its own URL (``router.scoped_request``:
    403 naming the scope, v2 restrictions); a GET of one resource must also name one the
    caller may read now -- GETs run after the commit, so without this a forbidden read
    (404, "denied looks like absent") would come back next to committed writes. A GET of
    a resource created in this transaction (``urn:uuid:``) is judged when it runs.
    """
    for entry in entries:
        route, path = _route(entry)
        rdef = RESOURCES[entry.resource_type]
        if route is None or not rdef.supports(route.interaction):
            continue  # router.handle answers 405 for it inside the transaction
        probe = FhirRequest(entry.method, req.principal, entry.query, entry.headers)
        try:
            scoped = await router.scoped_request(ctx, rdef, route, probe, path)
            if entry.method == "GET" and "id" in path and "urn:uuid:" not in entry.url:
                await scoping.visible(ctx, rdef, scoped, path["id"])
        except FhirError as exc:
            raise _failure(entry, FhirResponse(exc.status, exc.body())) from exc


async def _transaction(ctx: FhirContext, req: FhirRequest, raw: list[Any]) -> FhirResponse:
    entries = [_entry(index, item, ctx.fhir_base) for index, item in enumerate(raw)]
    seen: dict[str, int] = {}
    for entry in entries:
        if entry.full_url is not None:
            if entry.full_url.startswith("urn:uuid:") and not _UUID.match(entry.full_url):
                raise bad_request("fullUrl is not a valid urn:uuid.", _where(entry.index, "fullUrl"))
            if entry.full_url in seen:
                raise bad_request(f"fullUrl repeats entry {seen[entry.full_url]}.", _where(entry.index, "fullUrl"))
            seen[entry.full_url] = entry.index
        if entry.method in ("PUT", "DELETE") and not entry.rest:
            raise FhirError.of(
                400, "not-supported", "Conditional update/delete is not supported.", _where(entry.index, "request.url")
            )
    targets = [(e.resource_type, e.rest.split("/")[0]) for e in entries if e.method in ("PUT", "DELETE")]
    if len(targets) != len(set(targets)):
        raise bad_request("A transaction may change each resource only once.", "Bundle.entry")
    order = _ordered(entries)
    await _preflight(ctx, req, entries)
    refs: dict[str, str] = {}
    results: dict[int, dict[str, Any]] = {}
    async with in_transaction(ctx) as tx:
        for entry in order:
            if entry.method == "GET":
                continue
            resp = await _run(tx, req, entry, refs)
            if resp.status >= 400:
                raise _failure(entry, resp)
            if entry.method == "POST" and entry.full_url:
                created = _created_ref(resp)
                if created is not None:
                    refs[entry.full_url] = created
            results[entry.index] = _response_entry(entry, resp, ctx.fhir_base)
    for entry in order:
        if entry.method == "GET":
            results[entry.index] = _response_entry(entry, await _run(ctx, req, entry, refs), ctx.fhir_base)
    out = [results[e.index] for e in entries]
    return FhirResponse(200, {"resourceType": "Bundle", "type": "transaction-response", "entry": out})
