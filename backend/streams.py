"""Watching supervisors: one held-open ``GET {health_url}/status/stream`` per emulator.

The supervisor pushes its status when something other than a clock changes
(``emulator/status_stream.py`` has the wire format); each event goes to the fleet as it
arrives, exactly as a successful probe's body would. So an idle fleet costs a keep-alive
comment every few seconds per emulator instead of a request per emulator per probe
interval, and a fault shows as soon as the supervisor sees it instead of at the next probe.

Each target's loop (``backend.prober``) asks :meth:`StatusStreams.follow` first and probes
when it returns. What can happen, and what follows:

==================================  ==================================================
opening the stream                  then
==================================  ==================================================
404 or 405 (an older supervisor)    probed as before; the stream is asked for again
                                    every ``UNSUPPORTED_RECHECK`` seconds
503 (the supervisor has too many    probed; the stream is retried with backoff
streams, or is stopping)
no connection, a bad answer, no     a failure on the target's breaker and in the fleet
first event within the probe        (like a failed probe); probed; retried with backoff
timeout
the circuit is open                 not attempted (a probe or a later attempt is the
                                    half-open trial)
==================================  ==================================================

==================================  ==================================================
an open stream                      then
==================================  ==================================================
ends properly (the supervisor is    reopened at once (its refusal would count)
stopping)
breaks, sends something bad, or is  a failure on the breaker and in the fleet; probed;
silent for ``SILENT_BEATS`` of its  reopened with backoff
heartbeats (``X-Heartbeat-
Interval``)
==================================  ==================================================

Opening goes through the target's circuit breaker and the prober's concurrency limit;
failures after it opened are counted on the same breaker. The backoff between attempts
(``BACKOFF_MIN`` doubling to ``BACKOFF_MAX``) starts again once a stream has stayed open
for its silence bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum

import httpx
from pydantic import ValidationError

from backend.bounded_http import AnswerTooSlow, SseEvent, lines, sse_events
from backend.breaker import BreakerOpenError, TargetBreaker
from backend.fleet import Fleet
from backend.metrics import BackendMetrics
from backend.prober import HEALTH_LIMIT, ProbeError, describe_error
from emulator.backoff import Backoff
from emulator.jsonlog import log
from emulator.models import EmulatorStatus

logger = logging.getLogger("backend.streams")

STREAM_PATH = "/status/stream"
SILENT_BEATS = 3
"""Heartbeats missed in a row before an open stream counts as dead."""
DEFAULT_HEARTBEAT = 5.0
"""The supervisors' default, assumed when a stream does not say its interval."""
UNSUPPORTED_RECHECK = 300.0
BACKOFF_MIN, BACKOFF_MAX = 1.0, 30.0


class Outcome(StrEnum):
    ENDED = "ended"
    BROKEN = "broken"
    SILENT = "silent"
    REFUSED = "refused"
    UNSUPPORTED = "unsupported"
    BUSY = "busy"
    SKIPPED = "skipped"


COUNTED = frozenset({Outcome.REFUSED, Outcome.BROKEN, Outcome.SILENT})
"""Outcomes counted as a failure of the target (on its breaker and in the fleet)."""


class StreamSilent(Exception):
    """No byte, not even a keep-alive, within the silence bound."""


@dataclass
class StreamLink:
    """One target's stream state, kept by its loop."""

    backoff: Backoff = field(default_factory=lambda: Backoff(BACKOFF_MIN, BACKOFF_MAX, jitter=True))
    next_attempt: float = 0.0
    """``time.monotonic()`` from which a stream may be tried again."""

    def due(self) -> bool:
        return time.monotonic() >= self.next_attempt


@dataclass
class _Opened:
    response: httpx.Response
    events: AsyncIterator[SseEvent]
    first: EmulatorStatus
    silence: float

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.response.aclose()


_CLOSING: set[asyncio.Future[None]] = set()


@dataclass
class _Attempt:
    """An opening in progress. It runs shielded inside the breaker: when the target's loop
    is cancelled meanwhile, whatever the opening got is closed, not leaked."""

    response: httpx.Response | None = None
    abandoned: bool = False

    def abandon(self) -> None:
        self.abandoned = True
        if self.response is not None:
            closing = asyncio.ensure_future(self.response.aclose())
            _CLOSING.add(closing)
            closing.add_done_callback(_CLOSING.discard)


def silence_bound(header: str | None) -> float:
    """How long an open stream may stay silent: ``SILENT_BEATS`` heartbeats."""
    try:
        heartbeat = float(header) if header else DEFAULT_HEARTBEAT
    except ValueError:
        heartbeat = DEFAULT_HEARTBEAT
    return SILENT_BEATS * min(max(heartbeat, 0.1), 300.0)


async def _within(lines_: AsyncIterator[str], silence: float) -> AsyncIterator[str]:
    """The lines, each arriving within ``silence`` seconds of the one before."""
    iterator = lines_.__aiter__()
    while True:
        try:
            async with asyncio.timeout(silence):
                line = await iterator.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise StreamSilent(
                f"status stream silent for {silence:g} s (no keep-alive): the supervisor "
                "is hung or the link is down"
            ) from None
        yield line


def _status(event: SseEvent) -> EmulatorStatus | None:
    """The status an event carries; None for events of other kinds (newer supervisors)."""
    if event.event not in (None, "status") or event.data is None:
        return None
    try:
        return EmulatorStatus.model_validate_json(event.data)
    except ValidationError as exc:
        raise ProbeError(
            f"status stream sent an event that is not a health body ({exc.error_count()} "
            f"problem(s)): {event.data[:120]!r}"
        ) from None


class StatusStreams:
    """Opens and reads the status streams of the fleet's supervisors (see module doc)."""

    def __init__(
        self,
        fleet: Fleet,
        get_client: Callable[[], httpx.AsyncClient],
        *,
        timeout: float,
        metrics: BackendMetrics | None = None,
    ) -> None:
        self.fleet = fleet
        self.get_client = get_client
        self.timeout = timeout
        self.metrics = metrics

    async def follow(
        self,
        name: str,
        url: str,
        link: StreamLink,
        breaker: TargetBreaker,
        limit: asyncio.Semaphore,
    ) -> Outcome:
        """Opens ``name``'s stream and applies its events until it ends; says how it went
        and when the next attempt may be made (``link``)."""
        attempt = _Attempt()
        try:
            async with limit:
                opened = await breaker.call(lambda: self._open(url, attempt))
        except BreakerOpenError:
            return self._next(link, Outcome.SKIPPED)
        except asyncio.CancelledError:
            attempt.abandon()
            raise
        except Exception as exc:
            self._failed(name, url, exc)
            return self._next(link, Outcome.REFUSED)
        if isinstance(opened, Outcome):
            log(logger, logging.DEBUG, f"status stream {opened}; probing", instance=name)
            return self._next(link, opened)
        started = time.monotonic()
        outcome = Outcome.ENDED
        try:
            self.fleet.probe_succeeded(name, opened.first, link="stream")
            async for event in opened.events:
                status = _status(event)
                if status is not None:
                    self.fleet.probe_succeeded(name, status, link="stream")
        except (httpx.TransportError, ProbeError, StreamSilent) as exc:
            await breaker.record_failure(exc)
            self._failed(name, url, exc)
            outcome = Outcome.SILENT if isinstance(exc, StreamSilent) else Outcome.BROKEN
        finally:
            await opened.close()
        if time.monotonic() - started >= opened.silence:
            link.backoff.reset()  # it worked for a while: the next trouble starts afresh
            if outcome is Outcome.ENDED:
                link.next_attempt = 0.0
                return outcome
        return self._next(link, outcome)

    async def _open(self, url: str, attempt: _Attempt) -> _Opened | Outcome:
        """Connects, checks the answer and reads the first status, within the probe
        timeout. Runs inside the breaker: what it raises counts as a failure."""
        client = self.get_client()
        request = client.build_request(
            "GET",
            url + STREAM_PATH,
            headers={"Accept": "text/event-stream"},
            # Silence is watched line by line below; the whole opening has one deadline.
            timeout=httpx.Timeout(self.timeout, read=None),
        )
        resp: httpx.Response | None = None
        try:
            async with asyncio.timeout(self.timeout):
                resp = attempt.response = await client.send(request, stream=True)
                if resp.status_code in (404, 405):
                    await resp.aclose()
                    return Outcome.UNSUPPORTED
                if resp.status_code == 503:
                    await resp.aclose()
                    return Outcome.BUSY
                kind = resp.headers.get("content-type", "")
                if resp.status_code != 200 or not kind.startswith("text/event-stream"):
                    raise ProbeError(
                        f"HTTP {resp.status_code} ({kind or 'no content type'}) instead of "
                        "a status stream"
                    )
                silence = silence_bound(resp.headers.get("x-heartbeat-interval"))
                events = sse_events(_within(lines(resp, HEALTH_LIMIT), silence), HEALTH_LIMIT)
                first = None
                async for event in events:
                    if (first := _status(event)) is not None:
                        break
                if first is None:
                    raise ProbeError("status stream ended before its first status")
        except TimeoutError:
            if resp is not None:
                await resp.aclose()
            raise AnswerTooSlow(f"no status stream within {self.timeout:g} s") from None
        except BaseException:
            if resp is not None:
                await resp.aclose()
            raise
        opened = _Opened(resp, events, first, silence)
        if attempt.abandoned:
            await opened.close()
            return Outcome.SKIPPED
        return opened

    def _failed(self, name: str, url: str, exc: BaseException) -> None:
        error = f"status stream: {describe_error(exc)}"
        prev = self.fleet.get(name)
        if prev is None or prev.last_error != error:
            log(
                logger, logging.WARNING, "status stream failed", instance=name, url=url, error=error
            )
        self.fleet.probe_failed(name, error)

    def _next(self, link: StreamLink, outcome: Outcome) -> Outcome:
        if outcome is Outcome.UNSUPPORTED:
            link.next_attempt = time.monotonic() + UNSUPPORTED_RECHECK
        else:
            link.next_attempt = time.monotonic() + link.backoff.next_delay()
        if self.metrics is not None and outcome not in (Outcome.ENDED, Outcome.SKIPPED):
            self.metrics.stream_failures.labels(outcome.value).inc()
        return outcome
