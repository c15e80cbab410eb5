"""Owns the stream the way the supervisor owns QEMU: started once QEMU draws, restarted
with backoff when it fails, stopped cleanly, and reported in the emulator's status.

A pipeline fails by an error on its bus (rfbsrc lost VNC because QEMU restarted, an
element broke), by end of stream, or by stalling: the guest's picture keeps changing (the
supervisor's own VNC sampler sees it) while no frame leaves the encoder. A still picture
is never taken for a stall, whatever the capture does with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from emulator.backoff import Backoff
from emulator.jsonlog import log
from emulator.models import StreamFacts, StreamState
from emulator.stream.errors import ViewerError
from emulator.stream.meter import RateMeter
from emulator.stream.pipeline import DROP_COUNTS, StreamConfig

logger = logging.getLogger("emulator.stream")

BACKOFF_MIN, BACKOFF_MAX = 1.0, 30.0
# A pipeline that played this long before failing was not failing in a loop: the next
# restart waits the shortest time again.
STABLE_AFTER = 30.0
# The picture changed this much later than the last frame the stream sent: stalled.
STALL_AFTER = 8.0
# How often a playing pipeline is checked for a stall (bus events wake it at once).
WATCH_EVERY = 1.0
# A viewer that was offered the stream and has not answered in this long is dropped.
ANSWER_WAIT = 30.0


class BusEventLike(Protocol):
    kind: str
    detail: str


class Dropped(Protocol):
    @property
    def dropped(self) -> int: ...


class Cap(Protocol):
    dropped: int


class Offered(Protocol):
    id: str
    offer: str | None


class Viewers(Protocol):
    """What the owner needs of ``emulator.stream.webrtc.ViewerHub`` (all blocking)."""

    @property
    def count(self) -> int: ...
    def open(self) -> Offered: ...
    def answer(self, viewer_id: str, sdp: str) -> None: ...
    def waiting(self, viewer_id: str) -> bool: ...
    def close(self, viewer_id: str) -> bool: ...


class Pipeline(Protocol):
    """What the owner needs of a pipeline (``emulator.stream.gst.RunningPipeline``)."""

    meter: RateMeter
    drops: Mapping[str, Dropped]
    cap: Cap
    viewers: Viewers

    def start(self) -> None: ...
    def stop(self) -> None: ...


PipelineFactory = Callable[[StreamConfig, Callable[[BusEventLike], None]], Pipeline]


class StreamOwner:
    def __init__(
        self,
        config: StreamConfig,
        factory: PipelineFactory,
        wait_drawing: Callable[[], Awaitable[object]],
        picture_changed_at: Callable[[], float | None],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``wait_drawing`` returns once QEMU draws a new picture; ``picture_changed_at``
        is when the guest's picture last changed (wall clock, None before the first)."""
        self.config = config
        self._factory = factory
        self._wait_drawing = wait_drawing
        self._picture_changed_at = picture_changed_at
        self._clock, self._wall = clock, wall
        self.backoff = Backoff(BACKOFF_MIN, BACKOFF_MAX, jitter=False)
        self.on_change: Callable[[], None] | None = None
        """Called when the stream's state, the pipeline's or its last error changes (the
        status stream listens; its frame rate is read at the status's regular recheck)."""
        self._state = StreamState.WAITING
        self._pipeline_state = "NULL"
        self.restarts = 0
        self.last_error: str | None = None
        self.current: Pipeline | None = None
        self._started_at = 0.0
        # What pipelines before the current one counted, so totals survive restarts.
        self._frames_before = 0
        self._dropped_before = dict.fromkeys(DROP_COUNTS, 0)
        self._capped_before = 0
        self._last_frame_wall: float | None = None
        self._closing: set[asyncio.Task[bool]] = set()

    # -- facts ----------------------------------------------------------------------------

    @property
    def state(self) -> StreamState:
        return self._state

    @state.setter
    def state(self, value: StreamState) -> None:
        if value is not self._state:
            self._state = value
            self._changed()

    @property
    def pipeline_state(self) -> str:
        return self._pipeline_state

    @pipeline_state.setter
    def pipeline_state(self, value: str) -> None:
        if value != self._pipeline_state:
            self._pipeline_state = value
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def facts(self) -> StreamFacts:
        pipe = self.current
        fps = bitrate = None
        frames = self._frames_before
        dropped = dict(self._dropped_before)
        capped = self._capped_before
        if pipe is not None:
            fps, bitrate = pipe.meter.rate(), pipe.meter.bits_per_second()
            frames += pipe.meter.count
            for name, counter in pipe.drops.items():
                dropped[name] = dropped.get(name, 0) + counter.dropped
            capped += pipe.cap.dropped
        last = self._last_frame()
        return StreamFacts(
            state=self.state,
            pipeline_state=self.pipeline_state,
            width=self.config.width,
            height=self.config.height,
            max_fps=self.config.max_fps,
            frames_per_second=None if fps is None else round(fps, 2),
            bitrate_kbps=None if bitrate is None else round(bitrate / 1000, 1),
            frames_out=frames,
            last_frame_age_seconds=None if last is None else round(self._wall() - last, 3),
            dropped=dropped,
            capped=capped,
            restarts=self.restarts,
            last_error=self.last_error,
            destination=f"{self.config.dest_host}:{self.config.dest_port}",
            viewers=0 if pipe is None else pipe.viewers.count,
        )

    def _last_frame(self) -> float | None:
        """Wall-clock time of the last encoded frame, of this pipeline or an earlier one."""
        pipe = self.current
        if pipe is not None and pipe.meter.last_at is not None:
            self._last_frame_wall = self._wall() - (self._clock() - pipe.meter.last_at)
        return self._last_frame_wall

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Streams until cancelled; always leaves no pipeline running."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                self.state = StreamState.WAITING
                await self._wait_drawing()
                self.state = StreamState.STARTING
                events: asyncio.Queue[BusEventLike] = asyncio.Queue()
                # Called on GStreamer's bus thread: the event crosses to the loop's thread.
                hand_over = functools.partial(loop.call_soon_threadsafe, events.put_nowait)
                reason = await self._play(hand_over, events)
                await self._retire()
                self._failed(reason)
                self.state = StreamState.RESTARTING
                await asyncio.sleep(self.backoff.next_delay())
        finally:
            await self._retire()

    async def _play(
        self, hand_over: Callable[[BusEventLike], None], events: asyncio.Queue[BusEventLike]
    ) -> str:
        """Builds and starts one pipeline and watches it; returns why it ended."""
        try:
            pipe = await asyncio.to_thread(self._factory, self.config, hand_over)
        except Exception as exc:  # a missing element or a bad link: said, then retried
            return f"cannot build the pipeline: {exc}"
        self.current = pipe
        self._started_at = self._clock()
        try:
            # Connecting to VNC happens inside the state change: off the event loop.
            await asyncio.to_thread(pipe.start)
        except Exception as exc:
            return f"cannot start the pipeline: {exc}"
        log(logger, logging.INFO, "stream started", destination=self.facts().destination)
        return await self._watch(pipe, events)

    async def _watch(self, pipe: Pipeline, events: asyncio.Queue[BusEventLike]) -> str:
        while True:
            try:
                event = await asyncio.wait_for(events.get(), WATCH_EVERY)
            except TimeoutError:
                stalled = self._stalled(pipe)
                if stalled is not None:
                    return stalled
                continue
            if event.kind in ("error", "eos"):
                return event.detail
            if event.kind == "viewer-gone":
                # Kept by the loop until done; a failed close has nothing left to undo.
                self._closing.add(asyncio.create_task(self.close_viewer(event.detail)))
                self._closing = {t for t in self._closing if not t.done()}
            elif event.kind == "warning":
                log(logger, logging.WARNING, "stream warning", warning=event.detail)
            elif event.kind == "state":
                self.pipeline_state = event.detail
                if event.detail == "PLAYING":
                    self.state = StreamState.PLAYING

    def _stalled(self, pipe: Pipeline) -> str | None:
        changed = self._picture_changed_at()
        if changed is None or self.state is not StreamState.PLAYING:
            return None
        last = self._last_frame() if pipe.meter.last_at is not None else None
        since = last if last is not None else self._wall() - (self._clock() - self._started_at)
        if changed - since > STALL_AFTER:
            return (
                f"stalled: no frame for {self._wall() - since:.0f} s while the guest's "
                "picture kept changing"
            )
        return None

    def _failed(self, reason: str) -> None:
        ran = self._clock() - self._started_at
        if ran >= STABLE_AFTER:
            self.backoff.reset()
        self.restarts += 1
        self.last_error = reason
        self._changed()
        log(
            logger,
            logging.WARNING,
            "stream failed; restarting it after backoff",
            error=reason,
            attempt=self.backoff.attempt + 1,
        )

    async def _retire(self) -> None:
        """Stops the current pipeline (off the event loop) and keeps its counts."""
        pipe, self.current = self.current, None
        self.pipeline_state = "NULL"
        if pipe is None:
            return
        self._last_frame_wall = self._last_frame_of(pipe)
        self._frames_before += pipe.meter.count
        for name, counter in pipe.drops.items():
            self._dropped_before[name] = self._dropped_before.get(name, 0) + counter.dropped
        self._capped_before += pipe.cap.dropped
        # Shielded: a cancelled owner still waits for GStreamer's threads to end.
        with contextlib.suppress(Exception):
            await asyncio.shield(asyncio.to_thread(pipe.stop))

    # -- WebRTC viewers (emulator.stream.webrtc does the work, off the event loop) --------

    def _playing(self) -> Pipeline:
        pipe = self.current
        if pipe is None or self.state is not StreamState.PLAYING:
            raise ViewerError(f"the stream is not playing (it is {self.state.value})", 503)
        return pipe

    async def open_viewer(self) -> tuple[str, str]:
        """A new viewer: its id and the SDP offer for the browser to answer."""
        pipe = self._playing()
        viewer = await asyncio.to_thread(pipe.viewers.open)
        assert viewer.offer is not None
        asyncio.get_running_loop().call_later(ANSWER_WAIT, self._drop_unanswered, pipe, viewer.id)
        log(logger, logging.INFO, "viewer offered the stream", viewer=viewer.id)
        return viewer.id, viewer.offer

    def _drop_unanswered(self, pipe: Pipeline, viewer_id: str) -> None:
        if pipe is self.current and pipe.viewers.waiting(viewer_id):
            self._closing.add(asyncio.create_task(self.close_viewer(viewer_id)))

    async def answer_viewer(self, viewer_id: str, sdp: str) -> None:
        pipe = self._playing()
        try:
            await asyncio.to_thread(pipe.viewers.answer, viewer_id, sdp)
        except KeyError:
            raise ViewerError("no such viewer (it left, or the stream restarted)", 404) from None
        log(logger, logging.INFO, "viewer answered", viewer=viewer_id)

    async def close_viewer(self, viewer_id: str) -> bool:
        pipe = self.current
        if pipe is None:
            return False
        closed = await asyncio.to_thread(pipe.viewers.close, viewer_id)
        if closed:
            log(logger, logging.INFO, "viewer left", viewer=viewer_id)
        return closed

    def _last_frame_of(self, pipe: Pipeline) -> float | None:
        if pipe.meter.last_at is None:
            return self._last_frame_wall
        return self._wall() - (self._clock() - pipe.meter.last_at)
