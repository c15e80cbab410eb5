"""The supervisor's status as a stream of changes: ``GET /status/stream`` (server-sent events).

Why a stream: a backend that polls ``/health`` every second pays the same whether anything
happens or not, and sees a fault only at its next poll. Here the backend holds one
connection and the supervisor writes when the status changes.

Why server-sent events rather than a long-poll on a revision: one request per connection
instead of one per change (a long-poll costs a request and its headers for every change,
and a change that lands between two polls waits for the next request); heartbeats fit in
the same connection as comment lines, so silence is noticed without extra requests; and
the backend already serves and the console already reads SSE, so framing, parsing and
keep-alives are the project's own (``emulator.sse``, ``backend.bounded_http``).

Wire format::

    retry: 1000

    event: status
    id: 7
    data: {...EmulatorStatus, as GET /health returns it...}

    : keep-alive

* The first event is the full current status; ``id`` is its revision.
* Then one event for every change of a field that is not a clock
  (``emulator.models.CLOCK_FIELDS``), or of a measured rate by more than its band
  (``emulator.models.rate_moved``): a new status, with the next revision. Events are
  state, not a log: a subscriber that is behind gets the latest status, never a backlog.
* A ``: keep-alive`` comment every ``heartbeat`` seconds of quiet (the
  ``X-Heartbeat-Interval`` response header says how often), so the reader can declare the
  link dead after a few missed ones.
* At most ``max_subscribers`` streams at once (503 with ``Retry-After`` beyond); a
  subscriber whose writes do not drain within ``write_timeout`` is dropped, so nothing
  buffers without limit.

How changes are found: the supervisor, the VNC sampler, the frame counter and the video
stream call :meth:`StatusFeed.poke` when something they report changes (QEMU started,
exited or stopped answering, the guest's run state, a disk error, VNC connected or lost, a
new frame-rate figure, the stream's state...). The status is recomputed once per burst of
pokes, and compared without its clock fields. Conditions that time alone brings about (no
frame for ``ACTIVE_WITHIN`` seconds, the start grace) are caught by a recomputation every
``RECHECK`` seconds while a stream is open. Without subscribers nothing is recomputed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from emulator import sse
from emulator.jsonlog import log
from emulator.models import EmulatorStatus, significant_json, with_published_rates

logger = logging.getLogger("emulator.status_stream")

HEARTBEAT = 5.0
RECHECK = 1.0
MAX_SUBSCRIBERS = 16


class StatusFeed:
    """The latest status, its revision, and a wake-up for everyone waiting on a change."""

    def __init__(self, compute: Callable[[], EmulatorStatus], *, recheck: float = RECHECK) -> None:
        self._compute = compute
        self.recheck = recheck
        self.revision = 0
        self.subscribers = 0
        self._significant = ""
        self._published: EmulatorStatus | None = None
        self._event = b""
        self._pending = False
        self._changed = asyncio.Event()
        self.closed = False

    def close(self) -> None:
        """The supervisor is stopping: every open stream ends now (properly, so readers
        see the end rather than a broken connection), and no new one starts."""
        self.closed = True
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def reopen(self) -> None:
        self.closed = False

    def poke(self) -> None:
        """Something the status is made of changed: recompute it soon (once per burst)."""
        if self.subscribers == 0 or self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.refresh()
            return
        self._pending = True
        loop.call_soon(self.refresh)

    def refresh(self) -> None:
        """Recomputes the status; a new revision when anything but a clock changed."""
        self._pending = False
        status = self._compute()
        # Compared with the rates held at their published figures while they only jitter;
        # the event itself carries what was measured.
        if significant_json(with_published_rates(self._published, status)) == self._significant:
            return
        self._published = status
        self._significant = significant_json(status)
        self.revision += 1
        self._event = sse.event("status", self.revision, status.model_dump_json().encode())
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def latest(self) -> tuple[int, bytes]:
        """The current revision and its ``status`` event."""
        return self.revision, self._event

    def changed(self) -> asyncio.Event:
        """Set at the next new revision (a fresh event after each)."""
        return self._changed


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class StatusStream(Response):
    """The streaming answer of ``GET /status/stream`` for one subscriber."""

    media_type = "text/event-stream"

    def __init__(
        self,
        feed: StatusFeed,
        *,
        heartbeat: float = HEARTBEAT,
        max_subscribers: int = MAX_SUBSCRIBERS,
        write_timeout: float | None = None,
    ) -> None:
        self.feed = feed
        self.heartbeat = heartbeat
        self.max_subscribers = max_subscribers
        # A subscriber that cannot take a few heartbeats' worth of time to drain is gone.
        self.write_timeout = write_timeout or max(2 * heartbeat, 5.0)
        self.status_code = 200
        self.background = None
        self.init_headers(
            {
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                "X-Heartbeat-Interval": f"{heartbeat:g}",
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        feed = self.feed
        if feed.subscribers >= self.max_subscribers or feed.closed:
            why = "stopping" if feed.closed else f"at most {self.max_subscribers}"
            busy = JSONResponse(
                {"error": f"no more status streams ({why})"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
            await busy(scope, receive, send)
            return
        feed.subscribers += 1
        disconnected = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            feed.refresh()
            revision, event = feed.latest()
            if not await self._write(send, sse.retry(1000) + event):
                return
            await self._follow(send, revision, disconnected)
        finally:
            feed.subscribers -= 1
            disconnected.cancel()

    async def _follow(self, send: Send, revision: int, disconnected: asyncio.Future[None]) -> None:
        feed = self.feed
        now = time.monotonic()
        beat_at, check_at = now + self.heartbeat, now + feed.recheck
        while not disconnected.done() and not feed.closed:
            if feed.revision > revision:
                revision, event = feed.latest()
                if not await self._write(send, event):
                    return
                beat_at = time.monotonic() + self.heartbeat
                continue
            changed = asyncio.ensure_future(feed.changed().wait())
            try:
                timeout = max(0.0, min(beat_at, check_at) - time.monotonic())
                await asyncio.wait(
                    {changed, disconnected}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                changed.cancel()
            now = time.monotonic()
            if now >= check_at:
                check_at = now + feed.recheck
                feed.refresh()
            if feed.revision == revision and now >= beat_at:
                if not await self._write(send, sse.KEEPALIVE):
                    return
                beat_at = now + self.heartbeat
        # The client left, or the supervisor is stopping: end the response properly.
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, send: Send, chunk: bytes) -> bool:
        """False when the subscriber did not take the chunk in time (it is dropped)."""
        try:
            async with asyncio.timeout(self.write_timeout):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except TimeoutError:
            log(
                logger,
                logging.WARNING,
                "status stream subscriber too slow; dropped",
                write_timeout=self.write_timeout,
            )
            return False
        return True
