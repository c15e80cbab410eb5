"""What every discovery source produces, and the sink it hands its findings to.

A discovery source runs as one long-lived task. It reports *full syncs* (the complete
current list, after which anything not listed is gone), single upserts and removals, and
its own health (in contact or not). The fleet (``backend/fleet.py``) is the sink; it keeps
instances it already knows when a source reports trouble, marking them stale, because
last-known data is more useful to an operator than an empty screen.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from backend.models import DiscoveryState, InstanceSource, PodFacts


@dataclass(frozen=True, slots=True)
class Target:
    """One emulator as discovery knows it (before any probing)."""

    name: str
    source: InstanceSource
    health_url: str | None
    """Base URL of the supervisor (``/health`` etc. are appended); None while unknown."""
    vnc: str | None = None
    pod: PodFacts | None = None
    log_file: str | None = None
    namespace: str | None = None
    lost: str | None = None
    """Set when the supervisor is known to be gone without having said goodbye: why."""
    lost_since: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


class DiscoverySink(Protocol):
    def sync(self, targets: list[Target]) -> None:
        """A complete list: upsert all of these and remove every other instance."""

    def upsert(self, target: Target) -> None: ...

    def remove(self, name: str) -> None: ...

    def discovery_state(self, state: DiscoveryState) -> None:
        """Discovery's own condition (ok, error, last sync); ok=False marks data stale."""


class Discovery(abc.ABC):
    """A source of targets; ``run`` returns only when cancelled."""

    source: InstanceSource

    @abc.abstractmethod
    def initial_state(self) -> DiscoveryState:
        """The state to show before the first sync."""

    @abc.abstractmethod
    async def run(self, sink: DiscoverySink) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Releases resources (threads, clients) after ``run`` was cancelled."""
