"""Local discovery: supervisors on this machine announce themselves with registration files.

Each ``loco-emulator run`` writes ``<root>/<instance>/instance.json`` (see
``emulator/registration.py``) and removes it on exit; files whose pid is gone are ignored
by :func:`emulator.registration.read_registrations`. The directory is rescanned every
``scan_interval`` seconds: a handful of small files, and a scan is the only portable way
to notice a supervisor that was killed without cleaning up.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

from backend.discovery.base import Discovery, DiscoverySink, Target
from backend.models import DiscoveryState, InstanceSource
from emulator.jsonlog import log
from emulator.registration import LocalRegistration, read_registrations

logger = logging.getLogger("backend.discovery.local")


def _target(reg: LocalRegistration) -> Target:
    return Target(
        name=reg.name,
        source=InstanceSource.LOCAL,
        health_url=reg.health_url.rstrip("/"),
        vnc=reg.vnc,
        log_file=reg.log_file,
        extra={"pid": str(reg.pid), "state_dir": reg.state_dir},
    )


class LocalDiscovery(Discovery):
    source = InstanceSource.LOCAL

    def __init__(self, root: Path, scan_interval: float = 1.0) -> None:
        self.root = root
        self.scan_interval = scan_interval

    def initial_state(self) -> DiscoveryState:
        return DiscoveryState(source=self.source, ok=True, detail=str(self.root))

    def scan(self) -> list[Target]:
        targets: dict[str, Target] = {}
        for reg in read_registrations(self.root):
            # Two live files with one name would be a setup error; the first (sorted by
            # path) wins so the view is at least deterministic.
            targets.setdefault(reg.name, _target(reg))
        return list(targets.values())

    async def run(self, sink: DiscoverySink) -> None:
        previous: tuple[bool, list[Target]] | None = None
        while True:
            exists = await asyncio.to_thread(self.root.is_dir)
            targets = await asyncio.to_thread(self.scan)
            # Report only changes: a rescan that finds the same set is not news, and
            # publishing it would change the list's ETag every scan for nothing.
            if (exists, targets) != previous:
                if not exists:
                    log(
                        logger,
                        logging.WARNING,
                        "local directory does not exist (yet)",
                        path=str(self.root),
                    )
                sink.sync(targets)
                sink.discovery_state(
                    DiscoveryState(
                        source=self.source,
                        ok=True,
                        synced=True,
                        last_sync=datetime.now(UTC),
                        error=None if exists else f"{self.root} does not exist (no instances yet)",
                        detail=str(self.root),
                    )
                )
                previous = (exists, targets)
            await asyncio.sleep(self.scan_interval)
