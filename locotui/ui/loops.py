"""The console's long-running work, apart from the App class (as Dolphie's WorkerManager).

Each loop runs as one exclusive Textual worker, so a loop never overlaps itself: a slow
backend delays the next round instead of piling rounds up.

* render: waits on the fleet model's (coalesced) change notification and repaints,
  paced by fleet size;
* thumbnails: fetches the frames of the tiles on screen, each at most once per interval;
* prometheus: keeps the Prometheus link state current (history is queried on demand);
* notices: alerts from whoever started the console (the demo's processes ending).

What the loops need of the screen is the :class:`ConsoleView` protocol; the app
implements it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from locotui.data.errors import DataError
from locotui.data.fleet import FleetModel, Source
from locotui.data.history import SLO_WINDOWS, HistoryProvider, PrometheusHistory
from locotui.data.link import Backoff, LinkState
from locotui.data.pace import Pace
from locotui.ui.clock import Clock
from locotui.ui.grid import TileGrid
from locotui.ui.thumbs import ThumbnailCache

__all__ = ["ConsoleLoops", "ConsoleView", "render_interval"]

PROMETHEUS_CHECK_EVERY = 30.0
SLO_EVERY = 60.0


def render_interval(count: int) -> float:
    """Seconds between two fleet repaints: 10/s for a handful of tiles, 2/s for hundreds."""
    if count <= 30:
        return 0.1
    if count <= 100:
        return 0.25
    return 0.5


class ConsoleView(Protocol):
    """The app, as the loops see it."""

    grid: TileGrid
    rendered_version: int

    def render_fleet(self) -> None: ...

    def wants_pictures(self) -> bool:
        """Tiles with pictures are on screen now (tiles view, main screen, thumbnails on)."""
        ...

    def show_alert(self, line: str) -> None: ...

    def show_burn(self, burn: dict[str, float | None]) -> None:
        """The SLO's burn per window (None for a window Prometheus had no answer for)."""
        ...


class ConsoleLoops:
    def __init__(
        self,
        view: ConsoleView,
        model: FleetModel,
        clock: Clock,
        *,
        thumbs: ThumbnailCache | None,
        pace: Pace,
        history: HistoryProvider,
        prometheus_url: str | None,
        can_have_picture: Callable[[Any], bool],
        slo: tuple[float, float] = (10.0, 0.95),
    ) -> None:
        self.view = view
        self.model = model
        self.clock = clock
        self.thumbs = thumbs
        self.pace = pace
        self.slo = slo
        """(target frame rate, objective) of the fleet's SLO."""
        self.history = history
        self.prometheus_url = prometheus_url
        self.can_have_picture = can_have_picture
        self.thumb_wake = asyncio.Event()
        self._thumb_at: dict[str, float] = {}

    # ------------------------------------------------------------------ render
    async def render(self) -> None:
        """The one refresh loop. The model notifies at most ``max_rate`` times a second;
        on top of that the loop paces itself by fleet size, because re-checking 200 rows
        ten times a second buys nothing a person can see. Changes the operator makes
        (sort, filter, selection) do not wait for this loop: their actions render at once.
        """
        seen = self.model.version
        while True:
            seen = await self.model.wait_changed(seen)
            if self.model.version != self.view.rendered_version:
                self.view.render_fleet()
            await asyncio.sleep(max(render_interval(len(self.model)), self.pace.refresh))

    # ------------------------------------------------------------------ thumbnails
    async def thumbnails(self) -> None:
        """One loop (not one task per tick); between rounds it sleeps on an event that is
        set when a tile on screen lacks a picture, so new tiles fill in at once."""
        while True:
            interval = self.pace.pictures  # +/- change it between rounds
            self.thumb_wake.clear()
            if self.view.wants_pictures():
                await self._fetch_visible(interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.thumb_wake.wait(), timeout=interval / 2)

    async def _fetch_visible(self, interval: float) -> None:
        thumbs = self.thumbs
        assert thumbs is not None
        grid = self.view.grid
        plan = grid.plan
        now = self.clock.monotonic()
        due = [
            t.entry.name
            for t in grid.visible_tiles()
            if t.entry is not None
            and self.can_have_picture(t.entry)
            and (
                thumbs.get(t.entry.name, plan.thumb_cols, plan.thumb_rows) is None
                or now - self._thumb_at.get(t.entry.name, -1e9) >= interval * 0.95
            )
        ]
        sem = asyncio.Semaphore(8)

        async def one(name: str) -> None:
            async with sem:
                self._thumb_at[name] = self.clock.monotonic()
                thumb = await thumbs.refresh(name, plan.thumb_cols, plan.thumb_rows)
            if grid.plan != plan:
                return  # resized meanwhile: this picture is the wrong size now
            for tile in grid.tiles:
                if tile.name_shown == name:
                    tile.set_thumb(thumb)

        await asyncio.gather(*(one(n) for n in due), return_exceptions=True)

    # ------------------------------------------------------------------ prometheus
    async def prometheus(self) -> None:
        check = getattr(self.history, "check", None)
        if check is None:
            return
        backoff = Backoff(initial=2.0, maximum=60.0, jitter=False)
        while True:
            self.model.set_link(Source.PROMETHEUS, LinkState.CONNECTING, detail=self.prometheus_url)
            try:
                await check()
            except Exception as exc:
                delay = backoff.next_delay()
                self.model.set_link(
                    Source.PROMETHEUS, LinkState.RECONNECTING, error=str(exc), retry_in=delay
                )
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self.model.set_link(Source.PROMETHEUS, LinkState.CONNECTED)
            await asyncio.sleep(PROMETHEUS_CHECK_EVERY)

    async def slo_burn(self) -> None:
        """The SLO's burn over 1 h and 6 h, read from Prometheus once a minute (the
        windows are long: a minute more or less does not change what it says)."""
        if self.prometheus_url is None:
            return
        prometheus = PrometheusHistory(self.prometheus_url)
        target, objective = self.slo
        while True:
            try:
                burn = await prometheus.slo_burn(target, objective)
            except DataError:
                # The prometheus loop above reports the link; the strip shows no figure.
                burn = {label: None for label, _ in SLO_WINDOWS}
            self.view.show_burn(burn)
            await asyncio.sleep(SLO_EVERY)

    # ------------------------------------------------------------------ notices
    async def notices(self, lines: AsyncIterator[str]) -> None:
        async for line in lines:
            self.view.show_alert(line)
