"""At most one mutation per instance every ``interval`` seconds.

A reset or restart takes the emulator down for seconds; a second one right after is almost
always a double key press or a script loop, and it would only prolong the outage. Refused
requests get 429 with ``Retry-After``. Keys are instance names that exist, so the table
stays as small as the fleet; entries older than the interval are pruned as it grows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class ActionRateLimiter:
    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}

    def acquire(self, key: str) -> float | None:
        """Records an action on ``key``; returns None, or the seconds to wait if too soon."""
        if self.interval <= 0:
            return None
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return self.interval - (now - last)
        self._last[key] = now
        if len(self._last) > 1024:
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
        return None

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
