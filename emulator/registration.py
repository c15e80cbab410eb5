"""How a supervisor announces itself on the local machine, for local discovery.

Each running supervisor writes ``instance.json`` into its state directory and removes it on
exit. The backend's ``local`` discovery scans a root directory for ``*/instance.json``; a file
whose pid is gone is a leftover from a killed supervisor and is ignored. Defined here, next to
its producer, like every other wire contract.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

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
    """Writes the file atomically so a scanner never reads half of it."""
    target = state_dir / REGISTRATION_FILE
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".instance.", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        fh.write(registration.model_dump_json(indent=2))
    os.replace(tmp, target)
    return target


def remove_registration(state_dir: Path) -> None:
    (state_dir / REGISTRATION_FILE).unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_registrations(root: Path) -> list[LocalRegistration]:
    """Live registrations under ``root`` (one level deep), skipping stale or unreadable ones."""
    found: list[LocalRegistration] = []
    if not root.is_dir():
        return found
    for path in sorted(root.glob(f"*/{REGISTRATION_FILE}")):
        try:
            reg = LocalRegistration.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
        if pid_alive(reg.pid):
            found.append(reg)
    return found
