"""Local discovery: supervisors on this machine announce themselves with registration files.

Each ``loco-emulator run`` writes ``<root>/<instance>/instance.json`` (see
``emulator/registration.py``) and removes it on a clean exit. The directory is rescanned
every ``scan_interval`` seconds: a handful of small files, and a scan is the only portable
way to notice a supervisor that was killed without cleaning up.

Such a supervisor is not dropped from the fleet: an instance that was there and vanished
is exactly what an operator must see. Its registration stays, the kernel says its owner is
gone (the state-directory lock is free), and it is reported *lost*, with why and since
when, until someone forgets it (``DELETE /api/instances/{name}``, which removes the file)
or a new supervisor takes the directory again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from backend.discovery.base import Discovery, DiscoverySink, Target
from backend.logs import tail_lines
from backend.models import DiscoveryState, InstanceSource
from emulator.jsonlog import log
from emulator.registration import FoundRegistration, read_registrations, remove_registration
from emulator.statedir import owner_alive

logger = logging.getLogger("backend.discovery.local")


class StillAlive(Exception):
    """Asked to forget an instance whose supervisor is running."""


def _last_words(log_file: str | None) -> str | None:
    """The message of the supervisor's last log line, if it left one."""
    if not log_file:
        return None
    try:
        lines, _ = tail_lines(Path(log_file), 1)
    except OSError:
        return None
    if not lines:
        return None
    try:
        message = str(json.loads(lines[0]).get("message", lines[0]))
    except (ValueError, AttributeError):
        message = lines[0]
    return message[:160]


class LocalDiscovery(Discovery):
    source = InstanceSource.LOCAL

    def __init__(self, root: Path, scan_interval: float = 1.0) -> None:
        self.root = root
        self.scan_interval = scan_interval
        self._lost: dict[str, tuple[datetime, str]] = {}  # name -> since, why

    def initial_state(self) -> DiscoveryState:
        return DiscoveryState(source=self.source, ok=True, detail=str(self.root))

    def _target(self, found: FoundRegistration) -> Target:
        reg = found.registration
        lost = lost_since = None
        if found.alive:
            self._lost.pop(reg.name, None)
        else:
            if reg.name not in self._lost:
                why = f"its supervisor (pid {reg.pid}) ended without unregistering"
                if (words := _last_words(reg.log_file)) is not None:
                    why += f"; its last log line: {words}"
                self._lost[reg.name] = (datetime.now(UTC), why)
                log(
                    logger,
                    logging.WARNING,
                    "instance lost: supervisor gone without unregistering",
                    instance=reg.name,
                    pid=reg.pid,
                    state_dir=str(found.state_dir),
                )
            lost_since, lost = self._lost[reg.name]
        return Target(
            name=reg.name,
            source=InstanceSource.LOCAL,
            health_url=reg.health_url.rstrip("/"),
            vnc=reg.vnc,
            log_file=reg.log_file,
            lost=lost,
            lost_since=lost_since,
            extra={"pid": str(reg.pid), "state_dir": str(found.state_dir)},
        )

    def scan(self) -> list[Target]:
        targets: dict[str, Target] = {}
        # Live ones first: when a name is registered twice (a leftover beside a running
        # supervisor), the running one is the instance.
        found = sorted(read_registrations(self.root), key=lambda f: not f.alive)
        for entry in found:
            if entry.registration.name not in targets:
                targets[entry.registration.name] = self._target(entry)
        for name in set(self._lost) - set(targets):
            del self._lost[name]
        return sorted(targets.values(), key=lambda t: t.name)

    def forget(self, target: Target) -> None:
        """Removes a lost instance's registration; its state directory (overlay, logs)
        stays. Raises :class:`StillAlive` if a supervisor holds it after all."""
        state_dir = Path(target.extra.get("state_dir", ""))
        if not state_dir.is_dir() or owner_alive(state_dir):
            raise StillAlive(target.name)
        remove_registration(state_dir)

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
