"""Public endpoints for outside verifiers of the audit chain: the latest signed checkpoint and the key.

Both are public on purpose: a checkpoint holds only a sequence number, a SHA-256 and a
time (no health data), and its value lies in being copied by parties the gateway's
operators do not control, who can later demand that the chain still extends it.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from gateway.audit import checkpoints
from gateway.settings import Settings
from gateway.signing_keys import KeyRing

_NONE_YET = ResponseSpec(
    data_container=dict[str, Any],
    generate_examples=False,
    description='No checkpoint has been written yet: {"status_code": 404, "detail": "..."}',
)


@get(
    "/audit/checkpoints/latest",
    operation_id="auditCheckpointLatest",
    tags=["audit"],
    sync_to_thread=True,
    cache=False,
    responses={404: _NONE_YET},
)
def latest_checkpoint(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The newest signed checkpoint of the audit chain: ``seq``, ``hash``, ``time``, ``kid`` and the
    compact JWS (RS256) that covers them; verify it with ``/audit/checkpoints/keys``."""
    settings: Settings = request.app.state.settings
    found = checkpoints.latest(settings.audit_checkpoint_dir)
    if found is None:
        return Response({"status_code": 404, "detail": "No checkpoint has been written yet."}, status_code=404)
    return Response(found, headers={"Cache-Control": "no-cache"})


@get("/audit/checkpoints/keys", operation_id="auditCheckpointKeys", tags=["audit"], sync_to_thread=True)
def checkpoint_keys(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The public keys (JWKS) that sign checkpoints: the current one and every retired one."""
    settings: Settings = request.app.state.settings
    return KeyRing(settings.signing_key_file).archive_jwks()


ROUTES = [latest_checkpoint, checkpoint_keys]
