"""Connection state shared by every data source (backend, Kubernetes, Prometheus).

A source that streams (the backend's ``/api/events``, the Kubernetes pod watch) yields
:class:`LinkChange` items between its data items, so the fleet model can show "connected",
"reconnecting in 3 s: connection refused", etc. Reconnection delays come from
:class:`Backoff` (exponential, with jitter).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Backoff", "LinkChange", "LinkState"]


class LinkState(StrEnum):
    IDLE = "idle"
    """Not started, or not configured (e.g. no Prometheus URL)."""
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    """Lost; the next attempt is ``retry_in`` seconds away."""
    FAILED = "failed"
    """Gave up without automatic retry (e.g. credentials refused)."""
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class LinkChange:
    state: LinkState
    error: str | None = None
    retry_in: float | None = None
    """Seconds until the next attempt (RECONNECTING only)."""
    attempt: int = 0
    """Consecutive failed attempts so far (0 once connected)."""
    at: float = 0.0
    """``time.time()`` of the change."""
    detail: str | None = None
    """Where it connects (URL, API server and namespace), for the status bar."""


@dataclass
class Backoff:
    """Exponential backoff with jitter: attempt n waits uniform(cap/2, cap),
    cap = min(maximum, initial * factor**n)."""

    initial: float = 0.5
    maximum: float = 15.0
    factor: float = 2.0
    jitter: bool = True
    _attempt: int = 0

    def next_delay(self) -> float:
        cap = min(self.maximum, self.initial * self.factor**self._attempt)
        self._attempt += 1
        # Jitter spreads many consoles reconnecting to a restarted backend; the lower
        # bound of cap/2 keeps a crash-looping server from being hammered.
        return random.uniform(cap / 2, cap) if self.jitter else cap  # noqa: S311

    @property
    def attempt(self) -> int:
        return self._attempt

    def reset(self) -> None:
        self._attempt = 0
