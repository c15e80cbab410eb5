"""Keeps a :class:`~locotui.data.fleet.FleetModel` fed: the backend's event stream, and the
Kubernetes-only fallback while the backend is gone.

Policy: the backend's ``/api/events`` stream is the source of truth (in the summary form
with ``summary=True``, as the console reads it). When a Kubernetes client is available and
the backend is not connected, the pod watch starts and the fleet shows pods without
emulator health (entries with ``origin == Origin.KUBERNETES``): at once when the first
attempt fails (a refused connection), ``first_fallback_after`` seconds after the start
when the first attempt is still pending (a backend that does not answer would otherwise
hold the screen empty for its whole timeout), and ``fallback_after`` seconds after a
backend that was connected is lost (a blip does not swap the view). As soon as the
backend is connected again the watch stops and the backend's snapshot replaces the
fallback view. Without a backend URL, the watch runs from the start.

The automatic recovery's state (``GET /api/remediation``: on, dry run, paused until when,
by whom) is not on the stream, so it is read: when the stream (re)connects, after the
recovery's decisions (a burst of them is one read, ``remediation_settle`` after the
first), when asked (:meth:`FleetFeeds.refresh_remediation`), and every
``remediation_every`` seconds, or sooner when a pause is due to end by itself, so its end
is seen. Only while the stream is connected: a backend that is gone is not asked. A read
that fails keeps the last state (the stream's own state already says what is wrong).

Usage (on the UI's loop)::

    feeds = FleetFeeds(fleet, backend=BackendClient(url, token=...), kube=kube_or_None)
    await feeds.start()
    ...
    await feeds.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backend.models import RemediationEvent
from locotui.data.backend_client import BackendClient
from locotui.data.errors import DataError
from locotui.data.fleet import FleetModel, Source
from locotui.data.link import Backoff, LinkChange, LinkState

if TYPE_CHECKING:
    # The Kubernetes client is imported only when the fallback starts (it is slow to
    # import and many sessions never need it).
    from locotui.data.kube_client import KubeClient

__all__ = ["FleetFeeds"]

logger = logging.getLogger("locotui.feeds")

KubeFactory = Callable[[], Awaitable["KubeClient"]]

REMEDIATION_EVERY = 30.0
"""Seconds between two reads of the automatic recovery's state when nothing asks sooner."""
REMEDIATION_SETTLE = 0.5
"""Seconds to wait after a reason to read it, so a burst of decisions is one read."""


class FleetFeeds:
    def __init__(
        self,
        fleet: FleetModel,
        *,
        backend: BackendClient | None = None,
        kube: KubeClient | KubeFactory | None = None,
        fallback_after: float = 5.0,
        first_fallback_after: float = 1.0,
        summary: bool = False,
        backoff: Callable[[], Backoff] = Backoff,
        idle_timeout: float = 45.0,
        remediation_every: float = REMEDIATION_EVERY,
        remediation_settle: float = REMEDIATION_SETTLE,
    ) -> None:
        self.fleet = fleet
        self.backend = backend
        self._kube_or_factory = kube
        # A factory is a plain callable; a KubeClient instance is not callable.
        self.kube: KubeClient | None = None if kube is None or callable(kube) else kube
        self.fallback_after = fallback_after
        self.first_fallback_after = first_fallback_after
        self.summary = summary
        self._ever_connected = False
        self._backoff = backoff
        self.idle_timeout = idle_timeout
        self._backend_task: asyncio.Task[None] | None = None
        self._kube_task: asyncio.Task[None] | None = None
        self._fallback_timer: asyncio.TimerHandle | None = None
        self.remediation_every = remediation_every
        self.remediation_settle = remediation_settle
        self._remediation_task: asyncio.Task[None] | None = None
        self._remediation_wake = asyncio.Event()

    @property
    def fallback_active(self) -> bool:
        return self._kube_task is not None and not self._kube_task.done()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.backend is not None:
            self.fleet.set_link(Source.BACKEND, LinkState.CONNECTING, detail=self.backend.base_url)
            self._backend_task = loop.create_task(self._run_backend(), name="feed-backend")
            self._arm_fallback(self.first_fallback_after)
            self._remediation_task = loop.create_task(
                self._run_remediation(), name="feed-remediation"
            )
        elif self._kube_or_factory is not None:
            self._start_fallback()

    async def stop(self) -> None:
        if self._fallback_timer is not None:
            self._fallback_timer.cancel()
            self._fallback_timer = None
        tasks = [
            t
            for t in (self._backend_task, self._kube_task, self._remediation_task)
            if t is not None
        ]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._backend_task = self._kube_task = self._remediation_task = None
        for source in (Source.BACKEND, Source.KUBERNETES):
            if self.fleet.links[source].state is not LinkState.IDLE:
                self.fleet.set_link(source, LinkState.STOPPED)

    async def reconnect(self) -> None:
        """Drops the backend stream and connects again at once (the "refresh" key)."""
        if self.backend is None:
            return
        if self._backend_task is not None:
            self._backend_task.cancel()
            with contextlib.suppress(BaseException):
                await self._backend_task
        self._backend_task = asyncio.get_running_loop().create_task(self._run_backend())

    # ------------------------------------------------------------------ backend
    async def _run_backend(self) -> None:
        assert self.backend is not None
        try:
            async for item in self.backend.events(
                backoff=self._backoff(), idle_timeout=self.idle_timeout, summary=self.summary
            ):
                if isinstance(item, LinkChange):
                    item = LinkChange(
                        item.state,
                        item.error,
                        item.retry_in,
                        item.attempt,
                        item.at,
                        item.detail or self.backend.base_url,
                    )
                    self._on_backend_link(item)
                self.fleet.apply_event(item)
                if isinstance(item, RemediationEvent):
                    self.refresh_remediation()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the feed must not die silently
            logger.exception("backend feed crashed")
            self.fleet.set_link(Source.BACKEND, LinkState.FAILED, error=f"feed crashed: {exc}")
            self._arm_fallback(0.0)

    def _on_backend_link(self, change: LinkChange) -> None:
        if change.state is LinkState.CONNECTED:
            self._ever_connected = True
            self.refresh_remediation()
            if self._fallback_timer is not None:
                self._fallback_timer.cancel()
                self._fallback_timer = None
            self._stop_fallback()
        elif change.state is LinkState.CONNECTING:
            self._arm_fallback(
                self.first_fallback_after if not self._ever_connected else self.fallback_after
            )
        elif not self._ever_connected:
            # The first attempt failed: nothing from the backend to wait for.
            if self._fallback_timer is not None:
                self._fallback_timer.cancel()
                self._fallback_timer = None
            self._arm_fallback(0.0)
        else:
            self._arm_fallback(self.fallback_after)

    def _arm_fallback(self, delay: float) -> None:
        if self._kube_or_factory is None or self.fallback_active or self._fallback_timer:
            return
        loop = asyncio.get_running_loop()
        self._fallback_timer = loop.call_later(delay, self._start_fallback)

    # ------------------------------------------------------------------ remediation
    def refresh_remediation(self) -> None:
        """Reads the automatic recovery's state again soon (requests close together are
        one read)."""
        self._remediation_wake.set()

    def _remediation_wait(self) -> float:
        """Until the next read nobody asked for: the interval, or just after a pause is
        due to end by itself (the backend ends it on its next step, within a second)."""
        status = self.fleet.remediation
        wait = self.remediation_every
        if status is not None and status.paused and status.paused_until is not None:
            left = (status.paused_until - datetime.now(UTC)).total_seconds() + 1.5
            wait = min(wait, max(self.remediation_settle, left))
        return wait

    async def _run_remediation(self) -> None:
        assert self.backend is not None
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the
            # cancellation of stop() when the wake-up comes at the same moment.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._remediation_wait()):
                    await self._remediation_wake.wait()
            await asyncio.sleep(self.remediation_settle)
            self._remediation_wake.clear()
            if not self.fleet.live:
                continue  # the reconnect asks again
            try:
                status = await self.backend.remediation()
            except DataError as exc:
                logger.debug("reading the automatic recovery's state failed: %s", exc)
                continue
            self.fleet.set_remediation(status)

    # ------------------------------------------------------------------ kubernetes
    def _start_fallback(self) -> None:
        self._fallback_timer = None
        if self.fallback_active or self.fleet.live:
            return
        self._kube_task = asyncio.get_running_loop().create_task(self._run_kube(), name="feed-kube")

    def _stop_fallback(self) -> None:
        if self._kube_task is not None and not self._kube_task.done():
            self._kube_task.cancel()
            self.fleet.set_link(Source.KUBERNETES, LinkState.IDLE, detail="standby")
        self._kube_task = None

    async def _run_kube(self) -> None:
        self.fleet.set_link(Source.KUBERNETES, LinkState.CONNECTING)
        if self.kube is None:
            factory = self._kube_or_factory
            assert factory is not None and callable(factory)
            try:
                self.kube = await factory()
            except DataError as exc:
                self.fleet.set_link(Source.KUBERNETES, LinkState.FAILED, error=str(exc))
                return
        from locotui.data.kube_client import PodChange, PodSnapshot, pod_instance

        kube = self.kube
        async for item in kube.watch_pods(backoff=self._backoff()):
            if isinstance(item, LinkChange):
                self.fleet.set_link(Source.KUBERNETES, item)
            elif isinstance(item, PodSnapshot):
                self.fleet.apply_pods(pod_instance(p) for p in item.pods)
            elif isinstance(item, PodChange):
                self.fleet.apply_pod_change(item.kind, pod_instance(item.pod))

    # For tests and the UI's status bar.
    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend.base_url if self.backend else None,
            "kubernetes": self.kube.detail if self.kube else None,
            "fallback_active": self.fallback_active,
        }
