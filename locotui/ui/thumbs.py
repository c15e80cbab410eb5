"""Thumbnails: fetch a frame, decode and turn it into half-block strips, cache by instance.

The fetch is the backend's ``thumbnail(name, width)`` (PNG, proxied from the supervisor
and cached there for a second). Decoding, resizing and building the strips run in a worker
thread so the event loop keeps answering keys. A frame whose cells are identical to the
previous one is not handed to the widget again, so a still picture costs no repaint and
no bytes on the terminal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from locotui.data.errors import DataError, NotFound, ServerError, Unreachable
from locotui.ui.halfblock import HalfBlockRenderer, decode_image, fit_cells
from locotui.ui.tile import Thumb

__all__ = ["ThumbnailCache"]

Fetch = Callable[[str, int], Awaitable[bytes]]


@dataclass
class _Cached:
    size: tuple[int, int]
    keys: NDArray[np.uint64] | None
    thumb: Thumb
    at: float


class ThumbnailCache:
    def __init__(self, fetch: Fetch, renderer: HalfBlockRenderer | None = None) -> None:
        self.fetch = fetch
        self.renderer = renderer or HalfBlockRenderer()
        self._cache: dict[str, _Cached] = {}
        self.fetches = 0
        self.changes = 0
        self.errors = 0

    def get(self, name: str, cols: int, rows: int) -> Thumb | None:
        cached = self._cache.get(name)
        if cached is None or cached.size != (cols, rows):
            return None
        return cached.thumb

    def forget_except(self, names: set[str]) -> None:
        for gone in [n for n in self._cache if n not in names]:
            del self._cache[gone]

    def _prepare(
        self, data: bytes, cols: int, rows: int, previous: NDArray[np.uint64] | None
    ) -> tuple[NDArray[np.uint64], Thumb | None]:
        """Runs in a thread: decode, fit, quantise; strips only when the picture changed."""
        image = decode_image(data)
        h, w = image.shape[:2]
        pc, pr = fit_cells(w, h, cols, rows)
        keys = self.renderer.cell_keys(image, pc, pr)
        if previous is not None and previous.shape == keys.shape and np.array_equal(previous, keys):
            return keys, None
        return keys, Thumb(strips=tuple(self.renderer.strips_from_keys(keys)))

    async def refresh(self, name: str, cols: int, rows: int) -> Thumb:
        """Fetches the current frame of ``name`` for a ``cols`` x ``rows`` cell box."""
        cached = self._cache.get(name)
        previous = cached.keys if cached is not None and cached.size == (cols, rows) else None
        self.fetches += 1
        try:
            data = await self.fetch(name, max(16, cols))
            keys, thumb = await asyncio.to_thread(self._prepare, data, cols, rows, previous)
        except (NotFound, ServerError) as exc:
            # 503 is the supervisor saying it has no frame yet (booting), 409 no address.
            self.errors += 1
            status = getattr(exc, "status", None)
            if status == 503 and "unreachable" in str(exc):
                thumb = Thumb(message="no frame: supervisor unreachable", error=True)
            elif status == 503:
                thumb = Thumb(message="⋯ no frame yet")
            elif status == 409:
                thumb = Thumb(message="no supervisor address yet")
            else:
                thumb = Thumb(message=f"no frame: {_short(str(exc))}", error=True)
            keys = None
        except Unreachable:
            self.errors += 1
            thumb, keys = Thumb(message="no frame: backend unreachable", error=True), None
        except DataError as exc:
            self.errors += 1
            thumb, keys = Thumb(message=f"no frame: {_short(str(exc))}", error=True), None
        except ValueError as exc:  # not an image
            self.errors += 1
            thumb, keys = Thumb(message=f"bad frame: {_short(str(exc))}", error=True), None
        if thumb is None:
            assert cached is not None
            cached.at = time.monotonic()
            return cached.thumb
        self.changes += 1
        self._cache[name] = _Cached((cols, rows), keys, thumb, time.monotonic())
        return thumb


def _short(text: str, limit: int = 48) -> str:
    # The backend's messages start with "thumbnail of NAME: "; the tile already says NAME.
    _, _, rest = text.partition(": ")
    text = rest or text
    return text if len(text) <= limit else text[: limit - 1] + "…"
