"""How a supervisor announces itself on the local machine, for local discovery.

Each running supervisor writes ``instance.json`` into its state directory and removes it on
a clean exit. The backend's ``local`` discovery scans a root directory for
``*/instance.json``. Whether the supervisor behind a file is still alive is not read from
its pid (pids are reused, and a zombie still has one) but asked of the kernel: a running
supervisor holds the lock on its state directory (``emulator.statedir``) for its whole
life, and the kernel drops it when the process ends, however it ends. A file whose lock is
free belongs to a supervisor that died without cleaning up: it is reported as such, not
hidden. Defined here, next to its producer, like every other wire contract.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from emulator.atomicfile import write_atomic
from emulator.statedir import owner_alive

REGISTRATION_FILE = "instance.json"


class LocalRegistration(BaseModel):
    name: str = Field(description="Instance name, unique on this machine")
    health_url: str = Field(description="Base URL of the supervisor's HTTP server")
    vnc: str = Field(description="host:port of QEMU's VNC server")
    pid: int = Field(description="PID of the supervisor process")
    state_dir: str
    log_file: str | None = Field(None, description="Where the supervisor's log lines go")
    started_at: datetime


def write_registration(state_dir: Path, registration: LocalRegistration) -> Path:
    """Writes the file atomically so a scanner never reads half of it (``OSError`` on a full
    or read-only disk, with nothing left behind)."""
    data = registration.model_dump_json(indent=2).encode()
    return write_atomic(state_dir / REGISTRATION_FILE, data)


def remove_registration(state_dir: Path) -> None:
    (state_dir / REGISTRATION_FILE).unlink(missing_ok=True)


@dataclass(frozen=True)
class FoundRegistration:
    registration: LocalRegistration
    state_dir: Path
    """Where the file was found (the registration's own field may be stale or moved)."""
    alive: bool
    """Its supervisor still holds the state directory."""


def read_registrations(root: Path) -> list[FoundRegistration]:
    """Registrations under ``root`` (one level deep), alive or not; unreadable ones skipped."""
    found: list[FoundRegistration] = []
    if not root.is_dir():
        return found
    for path in sorted(root.glob(f"*/{REGISTRATION_FILE}")):
        try:
            reg = LocalRegistration.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
        found.append(FoundRegistration(reg, path.parent, owner_alive(path.parent)))
    return found
