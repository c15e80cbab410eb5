"""How fast simulated time runs: pod phase transitions, graceful deletion, bookmarks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Delays (seconds) of the simulated kubelet, controller and watch cache.

    Real clusters take seconds to minutes for each of these; tests want the same sequence
    of states in tens of milliseconds, so the defaults are tiny but non-zero: every state
    (Pending, Running-not-ready, Ready, Terminating) is observable by a watcher.
    """

    schedule: float = 0.01  # Pending (unscheduled) -> scheduled onto a node
    start: float = 0.02  # scheduled -> container running (phase Running, not ready)
    ready: float = 0.03  # running -> Ready condition True
    # Cap on how long a graceful delete keeps the pod Terminating; the real kubelet waits
    # for the container to stop (up to terminationGracePeriodSeconds).
    terminate: float = 0.03
    # Real API servers send a BOOKMARK about once a minute; tests need to see one quickly.
    bookmark_interval: float = 0.5
