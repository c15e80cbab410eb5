"""Probes every emulator's ``GET /health`` through its own circuit breaker, unless its
supervisor streams its status (``backend.streams``).

One small task per target: it waits a random fraction of the interval first (so a fleet
discovered at once is not probed in lock-step), then holds the target's status stream open
for as long as it works, and probes every ``interval`` seconds with ±10 % jitter whenever
it does not (a supervisor without the stream, or one whose stream could not be opened and
is retried with backoff). A semaphore bounds how many probes are in flight, so a thousand
targets do not open a thousand sockets at once. Each probe has connect and total
timeouts; a failure is recorded, never hidden, and the last good health body is kept
(shown as stale) until a probe succeeds again or the target disappears.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
from pydantic import ValidationError

from backend.bounded_http import AnswerTooLarge, AnswerTooSlow, MiB, fetch
from backend.breaker import BreakerOpenError, BreakerSet
from backend.discovery.base import Target
from backend.fleet import Fleet
from backend.metrics import BackendMetrics
from emulator.jsonlog import log
from emulator.models import EmulatorStatus

if TYPE_CHECKING:
    from backend.streams import StatusStreams

logger = logging.getLogger("backend.prober")


class ProbeError(Exception):
    """The supervisor answered, but not with a usable health body."""


def describe_error(exc: BaseException) -> str:
    """A short, specific, human-readable cause (httpx's str() is often empty)."""
    if isinstance(exc, AnswerTooLarge | AnswerTooSlow):
        return str(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out waiting for the answer"
    if isinstance(exc, httpx.ConnectError):
        cause = str(exc) or type(exc).__name__
        return f"cannot connect ({cause})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection broken ({exc})"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return str(exc) or type(exc).__name__


# A health body is about 2 KiB; anything near this is not one.
HEALTH_LIMIT = 1 * MiB


async def fetch_health(client: httpx.AsyncClient, base_url: str, deadline: float) -> EmulatorStatus:
    """GET {base_url}/health and parse it; raises on transport errors or a bad body.

    ``deadline`` bounds the whole exchange: a supervisor that trickles its answer is as
    unusable as one that does not answer (both count against its breaker)."""
    resp = await fetch(client, "GET", f"{base_url}/health", limit=HEALTH_LIMIT, deadline=deadline)
    try:
        # The supervisor's /health is a liveness endpoint: any answer whose body is a
        # status document is a successful probe, whatever it reports inside.
        return EmulatorStatus.model_validate_json(resp.content)
    except ValidationError as exc:
        snippet = resp.text[:120].replace("\n", " ")
        raise ProbeError(
            f"HTTP {resp.status_code} without a valid health body "
            f"({exc.error_count()} problem(s)): {snippet!r}"
        ) from None


class Prober:
    """Implements :class:`backend.fleet.FleetObserver`: targets come and go through it."""

    def __init__(
        self,
        fleet: Fleet,
        breakers: BreakerSet,
        get_client: Callable[[], httpx.AsyncClient],
        *,
        interval: float = 1.0,
        timeout: float = 2.0,
        concurrency: int = 32,
        metrics: BackendMetrics | None = None,
        enabled: bool = True,
        streaming: bool = True,
    ) -> None:
        self.fleet = fleet
        self.breakers = breakers
        self.get_client = get_client
        self.interval = interval
        self.timeout = timeout
        self.metrics = metrics
        self.enabled = enabled
        self._sem = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False
        self.streams: StatusStreams | None = None
        if streaming:
            from backend.streams import StatusStreams

            self.streams = StatusStreams(fleet, get_client, timeout=timeout, metrics=metrics)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Begins probing every target the fleet already knows, and every new one."""
        self._running = True
        for name in list(self.fleet.names()):
            target = self.fleet.target(name)
            if target is not None:
                self._spawn(target)

    async def close(self) -> None:
        self._running = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---------------------------------------------------------------- FleetObserver
    def target_changed(self, target: Target) -> None:
        self._stop(target.name)
        # A new address is a new supervisor: its breaker starts closed, from zero.
        self.breakers.discard(target.name)
        if self._running:
            self._spawn(target)

    def target_removed(self, name: str) -> None:
        self._stop(name)
        self.breakers.discard(name)

    # ---------------------------------------------------------------- probing
    def _stop(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            self.fleet.link_changed(name, None)

    def _spawn(self, target: Target) -> None:
        if not self.enabled or not target.health_url or target.name in self._tasks:
            return
        if target.lost is not None:  # nobody is there to answer; discovery says so
            return
        self._tasks[target.name] = asyncio.get_running_loop().create_task(
            self._loop(target.name, target.health_url), name=f"probe:{target.name}"
        )

    def _pause(self) -> float:
        return self.interval * random.uniform(0.9, 1.1)  # noqa: S311

    async def _loop(self, name: str, url: str) -> None:
        # Jitter the first probe within a short window (a quick first answer matters at
        # startup), then keep ±10 % jitter so probes stay spread over the interval.
        from backend.streams import COUNTED, Outcome, StreamLink  # it imports this module

        await asyncio.sleep(random.uniform(0, min(self.interval, 0.25)))  # noqa: S311
        link = StreamLink() if self.streams is not None else None
        while True:
            try:
                if self.streams is not None and link is not None and link.due():
                    outcome = await self.streams.follow(
                        name, url, link, self.breakers.get(name), self._sem
                    )
                    if outcome is Outcome.ENDED and link.due():
                        continue  # reopened at once
                    if outcome in COUNTED:
                        # That failure was this interval's; probing starts after it.
                        await asyncio.sleep(self._pause())
                await self.probe_once(name, url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one odd target kill its probe loop
                log(logger, logging.ERROR, "probe loop error", instance=name, error=repr(exc))
            await asyncio.sleep(self._pause())

    async def probe_once(self, name: str, url: str) -> None:
        """One probe of one target, recorded in the fleet (also used by tests)."""
        breaker = self.breakers.get(name)
        async with self._sem:
            started = time.perf_counter()
            result = "ok"
            try:
                health = await breaker.call(
                    lambda: fetch_health(self.get_client(), url, self.timeout)
                )
            except BreakerOpenError:
                result = ""
                # Not a probe: the breaker short-circuited it. The fleet already shows
                # the breaker open and the error that opened it.
                return
            except Exception as exc:
                result = "error"
                error = describe_error(exc)
                prev = self.fleet.get(name)
                if prev is None or prev.last_error != error:
                    log(
                        logger,
                        logging.WARNING,
                        "health probe failed",
                        instance=name,
                        url=url,
                        error=error,
                    )
                self.fleet.probe_failed(name, error)
            else:
                self.fleet.probe_succeeded(name, health)
            finally:
                if self.metrics is not None and result:
                    self.metrics.probe_duration.labels(result).observe(
                        time.perf_counter() - started
                    )
