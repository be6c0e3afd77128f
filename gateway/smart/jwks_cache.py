"""Key sets of ``jwks_url`` clients: fetched asynchronously, cached, refetched on rotation.

A backend client registered with a ``jwks_url`` would otherwise cost one outbound
request per token request, and a slow or hostile key host would hold our token
endpoint. So each URL's key set is kept for ``TTL_SECONDS``; an assertion naming a
``kid`` the cached set lacks (the client rotated its keys) triggers one refetch, at
most every ``REFETCH_SECONDS`` per URL, so random ``kid`` values cannot turn us into
a request amplifier. A fetch is bounded in time (``TIMEOUT_SECONDS`` in all) and size
(``MAX_BYTES``, read streamed), follows no redirects, and must answer 200 with a JSON
object; when a refetch fails, the last good set is kept (until ``STALE_SECONDS``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("gateway.smart")

TTL_SECONDS = 300.0
REFETCH_SECONDS = 30.0
STALE_SECONDS = 3600.0
TIMEOUT_SECONDS = 5.0
MAX_BYTES = 64 * 1024
MAX_URLS = 1000


class FetchFailed(Exception):
    """The key host did not answer with a usable key set in time and size."""


@dataclass
class _Entry:
    keys: dict[str, Any]
    fetched: float
    tried: float


@dataclass
class JwksCache:
    ttl: float = TTL_SECONDS
    refetch_interval: float = REFETCH_SECONDS
    stale: float = STALE_SECONDS
    timeout: float = TIMEOUT_SECONDS
    max_bytes: int = MAX_BYTES
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def get(self, url: str, kid: str | None) -> dict[str, Any] | None:
        """The key set for ``url``, fetched when absent, older than the TTL, or lacking ``kid``."""
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:  # concurrent token requests for one client share one fetch
            entry = self._entries.get(url)
            now = self.clock()
            if entry is not None and not self._needs_fetch(entry, kid, now):
                return entry.keys
            if entry is not None and now - entry.tried < self.refetch_interval:
                return entry.keys if now - entry.fetched < self.stale else None
            try:
                keys = await self._fetch(url)
            except FetchFailed:
                log.warning("could not fetch the JWKS at %s", url)
                if entry is None:
                    return None
                entry.tried = now
                return entry.keys if now - entry.fetched < self.stale else None
            if url not in self._entries and len(self._entries) >= MAX_URLS:
                self._entries.pop(next(iter(self._entries)))
            self._entries[url] = _Entry(keys, now, now)
            return keys

    def _needs_fetch(self, entry: _Entry, kid: str | None, now: float) -> bool:
        if now - entry.fetched >= self.ttl:
            return True
        if kid is None:
            return False
        kids = {k.get("kid") for k in entry.keys.get("keys", []) if isinstance(k, dict)}
        return kid not in kids

    async def _fetch(self, url: str) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(self._download(url), self.timeout)
        except (TimeoutError, httpx.HTTPError, ValueError) as exc:
            raise FetchFailed(url) from exc

    async def _download(self, url: str) -> dict[str, Any]:
        async with (
            httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as http,
            http.stream("GET", url, headers={"Accept": "application/json"}) as resp,
        ):
            if resp.status_code != 200:
                raise FetchFailed(f"{url}: HTTP {resp.status_code}")
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise FetchFailed(f"{url}: key set over {self.max_bytes} bytes")
        data = json.loads(bytes(body))
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise FetchFailed(f"{url}: not a JWK set")
        return data
