"""Thumbnails proxied from the supervisors, cached briefly, through each target's breaker.

Several TUI tiles (or several operators) asking for the same instance's picture within
``ttl`` seconds share one upstream fetch: the result is cached by (instance, address, width)
and concurrent misses wait for the same in-flight request. Only transport failures count
against the breaker; a supervisor that answers "no frame yet" (503) is reachable.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from backend.bounded_http import MiB, fetch
from backend.breaker import BreakerSet

# A PNG of the largest allowed width (1920) is a few hundred KiB; this is far above it.
THUMBNAIL_LIMIT = 8 * MiB


@dataclass(frozen=True, slots=True)
class Upstream:
    status: int
    content: bytes
    content_type: str


class ThumbnailProxy:
    def __init__(
        self,
        get_client: Callable[[], httpx.AsyncClient],
        breakers: BreakerSet,
        ttl: float = 1.0,
        max_entries: int = 512,
        deadline: float = 5.0,
    ) -> None:
        self.get_client = get_client
        self.deadline = deadline
        self.breakers = breakers
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[str, str, int], tuple[float, Upstream]] = OrderedDict()
        self._inflight: dict[tuple[str, str, int], asyncio.Future[Upstream]] = {}

    async def get(self, name: str, base_url: str, width: int) -> Upstream:
        """The upstream answer (PNG or error body); raises on transport errors/open breaker."""
        key = (name, base_url, width)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        task = self._inflight.get(key)
        if task is None:
            # The fetch is its own task, shared by every request for the same picture, so
            # one client hanging up does not cancel it for the others.
            task = asyncio.ensure_future(self._fetch_and_cache(key))
            # If every requester hung up, nobody reads the outcome: retrieve it here.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._inflight[key] = task
        return await asyncio.shield(task)

    async def _fetch_and_cache(self, key: tuple[str, str, int]) -> Upstream:
        name, base_url, width = key
        try:
            result = await self.breakers.get(name).call(lambda: self._fetch(base_url, width))
        finally:
            self._inflight.pop(key, None)
        if result.status == 200:
            self._cache[key] = (time.monotonic() + self.ttl, result)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return result

    async def _fetch(self, base_url: str, width: int) -> Upstream:
        resp = await fetch(
            self.get_client(),
            "GET",
            f"{base_url}/thumbnail.png",
            params={"width": width},
            limit=THUMBNAIL_LIMIT,
            deadline=self.deadline,
        )
        return Upstream(
            status=resp.status_code,
            content=resp.content,
            content_type=resp.headers.get("content-type", "application/octet-stream"),
        )

    def forget(self, name: str) -> None:
        for key in [k for k in self._cache if k[0] == name]:
            del self._cache[key]
