"""Frame rates: measured over a sliding window, and capped; fed from GStreamer's threads.

The streaming thread appends (one ``deque.append`` per encoded frame, atomic under the GIL);
the event loop reads. The rate is what came out, counted, never the configured cap.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW = 5.0
# Below this much observation a rate would be one or two frames' worth of noise.
MIN_SPAN = 1.0


class RateMeter:
    def __init__(self, window: float = WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._events: deque[tuple[float, int]] = deque()
        self._started = clock()
        self.count = 0
        self.total_bytes = 0
        self.last_at: float | None = None

    def add(self, size: int) -> None:
        """One frame of ``size`` bytes came out now (called from a streaming thread)."""
        now = self._clock()
        self._events.append((now, size))
        self.count += 1
        self.total_bytes += size
        self.last_at = now

    def _recent(self) -> tuple[list[tuple[float, int]], float] | None:
        now = self._clock()
        # Old entries leave on read: the reader is the event loop, once per status.
        while self._events and self._events[0][0] < now - self.window:
            self._events.popleft()
        span = min(self.window, now - self._started)
        if span < MIN_SPAN:
            return None
        return list(self._events), span

    def rate(self) -> float | None:
        """Frames per second over the window; None until a second has been watched."""
        recent = self._recent()
        return None if recent is None else len(recent[0]) / recent[1]

    def bits_per_second(self) -> float | None:
        recent = self._recent()
        return None if recent is None else sum(s for _, s in recent[0]) * 8 / recent[1]


BUCKET = 2.0


class FrameRateCap:
    """Passes at most ``fps`` frames per second on average, dropping the rest before they
    cost conversion and encoding. A token bucket holding two frames: VNC updates arrive
    unevenly (QEMU refreshes on a 30 ms timer), and a bucket of one would drop the second
    of two close updates from a guest drawing below the cap."""

    def __init__(self, fps: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.fps = fps
        self._clock = clock
        self._credit = BUCKET
        self._last: float | None = None
        self.dropped = 0

    def admit(self) -> bool:
        now = self._clock()
        if self._last is not None:
            self._credit = min(BUCKET, self._credit + (now - self._last) * self.fps)
        self._last = now
        if self._credit >= 1.0:
            self._credit -= 1.0
            return True
        self.dropped += 1
        return False
