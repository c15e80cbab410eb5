"""Connection state shared by every data source (backend, Kubernetes, Prometheus).

A source that streams (the backend's ``/api/events``, the Kubernetes pod watch) yields
:class:`LinkChange` items between its data items, so the fleet model can show "connected",
"reconnecting in 3 s: connection refused", etc. Reconnection delays come from
:class:`Backoff` (exponential, with jitter): the project's one backoff, from
``emulator.backoff``, re-exported here for the data sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from emulator.backoff import Backoff

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
