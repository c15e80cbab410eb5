"""One backoff for every retry loop: exponential up to a maximum, optionally with jitter.

Used by the supervisor (restarting a failed QEMU, resuming a guest paused on a disk error),
the VNC sampler (reconnecting), the backend's Kubernetes discovery and the console's data
links (``locotui.data.link`` re-exports it). It lives in ``emulator`` because that is the
base package the backend and the console already take utilities from.

Attempt ``n`` (counted from 0) waits ``cap(n) = min(maximum, initial * factor**n)``; with
jitter, a uniform draw from ``[cap(n) / 2, cap(n)]`` instead. The lower bound of half the
cap keeps a crash-looping server from being hammered while the spread keeps many clients
that lost one server from reconnecting in step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Backoff"]


class Uniform(Protocol):
    """What jitter needs of a random source: ``random.Random`` or the ``random`` module."""

    def uniform(self, a: float, b: float, /) -> float: ...


@dataclass
class Backoff:
    """Delays for consecutive failed attempts; :meth:`reset` after a success.

    ``rng`` is the random source for jitter (the ``random`` module when not given); a
    seeded ``random.Random`` makes the delays reproducible.
    """

    initial: float = 0.5
    maximum: float = 15.0
    factor: float = 2.0
    jitter: bool = True
    rng: Uniform | None = field(default=None, repr=False, compare=False)
    _attempt: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(
                f"backoff needs 0 < initial <= maximum (got {self.initial}, {self.maximum})"
            )
        if self.factor < 1:
            raise ValueError(f"backoff factor must be at least 1 (got {self.factor})")

    def cap(self, attempt: int) -> float:
        """The longest wait after ``attempt`` failures before it (0: the first retry)."""
        try:
            return min(self.maximum, self.initial * self.factor ** max(0, attempt))
        except OverflowError:  # a very long outage: the exponent has left float's range
            return self.maximum

    def delay(self, attempt: int) -> float:
        """The wait for ``attempt`` (the cap, or a draw below it with jitter); no state."""
        cap = self.cap(attempt)
        if not self.jitter:
            return cap
        return (self.rng or random).uniform(cap / 2, cap)

    def next_delay(self) -> float:
        """The wait before the next attempt; counts one more failed attempt."""
        value = self.delay(self._attempt)
        self._attempt += 1
        return value

    @property
    def attempt(self) -> int:
        """Failed attempts since the last :meth:`reset`."""
        return self._attempt

    def reset(self) -> None:
        self._attempt = 0
