"""Screen sampling over VNC: display activity, resolution and the latest frame.

(The frame rate is counted from QMP screendumps, see ``emulator.framerate`` for why.)

asyncvnc does the RFB handshake (version, security, pixel format); the message loop is ours
because asyncvnc's cannot follow a framebuffer size change (it never asks for DesktopSize
and then waits forever for a frame that fits its old buffer) and confuses Bell with
ServerCutText. Windows 98 changes resolution while booting, so both matter here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from asyncvnc import Client

from emulator.backoff import Backoff
from emulator.jsonlog import log
from emulator.models import VideoFacts

logger = logging.getLogger("emulator.vnc")

ENC_RAW = 0
ENC_DESKTOP_SIZE = -223

# QEMU backs its refresh off to 3 s on a static screen; after this long without any update we
# ask for a full frame, which proves the display is alive even when nothing moves.
FULL_REFRESH_AFTER = 3.5
# Nothing at all (not even the answer to a full refresh) for this long: the server is gone
# or frozen, so drop the connection and start again.
DEAD_AFTER = 10.0
# How old the last update may be for the display to count as active.
ACTIVE_WITHIN = 10.0
# How long the picture must stay unchanged to count as still (video.still_since). Longer
# than the gaps of an animated guest (QEMU sends each change within its 30 ms refresh), so
# a drawing guest never flickers between still and changing; short, because the automatic
# recovery's shortest "frozen for" bounds can be a few seconds.
STILL_AFTER = 2.0
CONNECT_TIMEOUT = 3.0
BACKOFF_MIN, BACKOFF_MAX = 0.2, 5.0


class ProtocolError(Exception):
    """The server sent something this client does not understand; reconnecting resets it."""


@dataclass
class Frame:
    """The latest picture: ``rgb`` is (height, width, 3) uint8, ``seq`` counts changes."""

    seq: int
    rgb: np.ndarray
    captured_at: float  # time.monotonic()


def _set_encodings(*encodings: int) -> bytes:
    return struct.pack(f">BxH{len(encodings)}i", 2, len(encodings), *encodings)


def _update_request(incremental: bool, width: int, height: int) -> bytes:
    return struct.pack(">BBHHHH", 3, int(incremental), 0, 0, width, height)


class VncSampler:
    """Keeps a VNC connection open and holds the latest frame."""

    def __init__(
        self,
        host: str,
        port: int,
        password: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port, self.password = host, port, password
        self._clock = clock
        self._buffer: np.ndarray | None = None
        self._rgb_index: list[int] = [2, 1, 0]
        self._last_update: float | None = None
        self._changed_at: float | None = None
        """Wall-clock time of the last change of the picture (for other processes)."""
        self._changed_mono: float | None = None
        """The same moment on ``clock`` (stillness is measured on it)."""
        self._updates = 0
        self._seq = 0
        self._blank = False
        self._connected = False
        self._connections = 0
        self._last_error: str | None = None
        self._frame_event = asyncio.Event()
        self.on_change: Callable[[], None] | None = None
        """Called when what :meth:`facts` says changes other than by time passing."""

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- what the rest of the supervisor reads -------------------------------------------

    def facts(self) -> VideoFacts:
        now = self._clock()
        age = None if self._last_update is None else now - self._last_update
        width = height = None
        if self._buffer is not None:
            height, width = self._buffer.shape[:2]
        active = self._connected and age is not None and age <= ACTIVE_WITHIN
        changed_at = (
            None if self._changed_at is None else datetime.fromtimestamp(self._changed_at, UTC)
        )
        still = self._changed_mono is not None and now - self._changed_mono >= STILL_AFTER
        return VideoFacts(
            display_active=active and not self._blank,
            width=width,
            height=height,
            last_frame_age_seconds=None if age is None else round(age, 3),
            changed_at=changed_at,
            still_since=changed_at if still else None,
            blank=self._blank,
            vnc_connected=self._connected,
            vnc_reconnects=max(0, self._connections - 1),
        )

    @property
    def last_error(self) -> str | None:
        """Why the latest connection ended (kept after reconnecting, for the record)."""
        return self._last_error

    @property
    def seq(self) -> int:
        """Counts picture changes; :meth:`wait_for_frame` waits for it to pass a value."""
        return self._seq

    def latest_frame(self) -> Frame | None:
        if self._buffer is None or self._last_update is None:
            return None
        rgb = np.ascontiguousarray(self._buffer[:, :, self._rgb_index])
        return Frame(self._seq, rgb, self._last_update)

    async def wait_for_frame(self, after_seq: int) -> Frame:
        """Waits until a frame newer than ``after_seq`` has been seen (callers bound the wait)."""
        while self._seq <= after_seq or self._buffer is None:
            await self._frame_event.wait()
        frame = self.latest_frame()
        assert frame is not None
        return frame

    # -- the connection loop --------------------------------------------------------------

    async def run(self) -> None:
        """Runs until cancelled: connect, sample, and on any failure reconnect with backoff."""
        backoff = Backoff(BACKOFF_MIN, BACKOFF_MAX, jitter=False)
        while True:
            updates_before = self._updates
            try:
                await self._session()
            except PermissionError as exc:
                # asyncvnc's refusal of the password; a PermissionError is an OSError, so
                # this must come first to be told apart from a broken connection.
                message = f"VNC authentication failed: {exc}"
                if message != self._last_error:
                    log(logger, logging.WARNING, message, server=f"{self.host}:{self.port}")
                self._last_error = message
            except (OSError, EOFError, TimeoutError, ProtocolError, ValueError) as exc:
                message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if message != self._last_error:
                    log(
                        logger,
                        logging.INFO,
                        "vnc connection lost",
                        error=message,
                        server=f"{self.host}:{self.port}",
                    )
                self._last_error = message
            finally:
                if self._connected:
                    self._connected = False
                    self._changed()
            if self._updates > updates_before:
                backoff.reset()
            await asyncio.sleep(backoff.next_delay())

    async def _session(self) -> None:
        """One connection, until it fails (it never ends on its own)."""
        # asyncio.timeout rather than wait_for: on 3.11, wait_for can swallow a cancellation
        # that races with its inner task finishing, which would keep a stopped sampler alive.
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                client = await Client.create(reader, writer, password=self.password)
            video = client.video
            self._rgb_index = [video.mode.index(c) for c in "rgb"]
            writer.write(_set_encodings(ENC_RAW, ENC_DESKTOP_SIZE))
            self._resize(video.width, video.height)
            writer.write(_update_request(False, video.width, video.height))
            await writer.drain()
            self._connected = True
            self._connections += 1
            self._changed()
            log(
                logger,
                logging.INFO,
                "vnc connected",
                server=f"{self.host}:{self.port}",
                width=video.width,
                height=video.height,
                pixel_format=video.mode,
            )
            quiet_since = self._clock()
            while True:
                try:
                    async with asyncio.timeout(FULL_REFRESH_AFTER):
                        kind = await reader.readexactly(1)
                except TimeoutError:
                    if self._clock() - quiet_since >= DEAD_AFTER:
                        raise TimeoutError(
                            f"no VNC update for {DEAD_AFTER:.0f} s: QEMU is frozen or gone"
                        ) from None
                    height, width = self._shape()
                    writer.write(_update_request(False, width, height))
                    await writer.drain()
                    continue
                quiet_since = self._clock()
                await self._message(kind[0], reader, writer)
        finally:
            writer.close()
            # Not CancelledError: swallowing it here would keep a cancelled sampler running.
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _shape(self) -> tuple[int, int]:
        assert self._buffer is not None
        height, width = self._buffer.shape[:2]
        return height, width

    def _resize(self, width: int, height: int) -> None:
        if self._buffer is None or self._buffer.shape[:2] != (height, width):
            self._buffer = np.zeros((height, width, 4), np.uint8)

    async def _message(
        self, kind: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if kind == 0:
            await self._framebuffer_update(reader, writer)
        elif kind == 1:  # SetColourMapEntries: only for palette pixel formats, which we never ask
            _, _, count = struct.unpack(">BHH", await reader.readexactly(5))
            await reader.readexactly(6 * count)
        elif kind == 2:  # Bell: no payload
            pass
        elif kind == 3:  # ServerCutText
            _, length = struct.unpack(">3sI", await reader.readexactly(7))
            await reader.readexactly(length)
        else:
            raise ProtocolError(f"unknown VNC server message type {kind}")

    async def _framebuffer_update(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        (count,) = struct.unpack(">xH", await reader.readexactly(3))
        changed = False
        resized = False
        for _ in range(count):
            x, y, w, h, encoding = struct.unpack(">HHHHi", await reader.readexactly(12))
            if encoding == ENC_DESKTOP_SIZE:
                # Not a new frame yet: the picture in the new size follows in the next update.
                self._resize(w, h)
                resized = True
                continue
            if encoding != ENC_RAW:
                raise ProtocolError(f"VNC server used encoding {encoding}, which was not offered")
            assert self._buffer is not None
            height, width = self._buffer.shape[:2]
            if x + w > width or y + h > height:
                raise ProtocolError(
                    f"VNC rectangle {w}x{h}+{x}+{y} outside the {width}x{height} framebuffer"
                )
            data = await reader.readexactly(w * h * 4)
            pixels = np.frombuffer(data, np.uint8).reshape(h, w, 4)
            region = self._buffer[y : y + h, x : x + w]
            if not changed and not np.array_equal(region[:, :, :3], pixels[:, :, :3]):
                changed = True
            region[...] = pixels
        now = self._clock()
        # Updates arriving again after a pause make the display active again: news.
        revived = self._last_update is None or now - self._last_update > ACTIVE_WITHIN
        self._last_update = now
        self._updates += 1
        height, width = self._shape()
        if resized:
            log(logger, logging.INFO, "vnc resolution changed", width=width, height=height)
        # Ask for the next update straight away so QEMU can send each change as it happens.
        writer.write(_update_request(not resized, width, height))
        blank = self._blank
        # A change after a still spell is news (video.still_since ends); the spell's start
        # is found by the status stream's periodic recheck, as time alone brings it about.
        moved = changed and (self._changed_mono is None or now - self._changed_mono >= STILL_AFTER)
        if changed:
            self._changed_at = time.time()
            self._changed_mono = now
            self._seq += 1
            sample = self._buffer[::8, ::8, :3]
            self._blank = bool((sample == sample[0, 0]).all())
            self._frame_event.set()
            self._frame_event = asyncio.Event()
        if revived or resized or moved or blank != self._blank:
            self._changed()
