"""Time as the UI sees it: injectable, so snapshot tests can freeze it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Clock", "FrozenClock"]


class Clock:
    """Wall time for ages, monotonic time for countdowns (the fleet model's clock)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


@dataclass
class FrozenClock(Clock):
    """A clock that only moves when told to (tests, snapshots)."""

    wall: datetime
    mono: float = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall.timestamp()
