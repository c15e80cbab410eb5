"""The cluster's daemons: started detached, recorded in pid files, stopped by pid.

A pid file holds the pid and the process's start time (from /proc), so a stop never
signals an unrelated process that happens to reuse the pid after a reboot or a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def children(pid: int) -> list[int]:
    """The process's children (of all its threads), or [] when it is gone."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended meanwhile
    return found


def pids_where(match: str) -> list[int]:
    """Processes whose command line contains ``match`` (e.g. a socket path of ours)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and match in " ".join(cmdline(int(entry.name))):
            found.append(int(entry.name))
    return [p for p in found if p != os.getpid()]


@dataclass
class Daemon:
    name: str
    pid_dir: Path
    log: Path

    @property
    def pid_file(self) -> Path:
        return self.pid_dir / f"{self.name}.pid"

    def start(
        self, argv: Sequence[str | os.PathLike[str]], env: Mapping[str, str] | None = None
    ) -> int:
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                # Its own session: a Ctrl-C in the terminal that ran `up` does not reach it.
                start_new_session=True,
                close_fds=True,
            )
        self.pid_file.write_text(json.dumps({"pid": proc.pid, "start": start_time(proc.pid)}))
        return proc.pid

    def pid(self) -> int | None:
        """The daemon's pid while it runs (and is still the process we started)."""
        try:
            record = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        pid = int(record["pid"])
        started = start_time(pid)
        if started is None or (record.get("start") is not None and started != record["start"]):
            return None
        return pid

    @property
    def running(self) -> bool:
        return self.pid() is not None

    def exited(self) -> bool:
        """True when it was started and has died (reaps it if it was our child)."""
        with contextlib.suppress(ChildProcessError, OSError):
            record = json.loads(self.pid_file.read_text())
            os.waitpid(int(record["pid"]), os.WNOHANG)
        return self.pid_file.exists() and not self.running

    def signal(self, sig: int) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        return True

    def stop(self, timeout: float = 15.0) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
                os.kill(pid, signal.SIGTERM)
            if not wait_gone([pid], timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                wait_gone([pid], 10.0)
        self.pid_file.unlink(missing_ok=True)


def wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        for pid in pids:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        if all(start_time(p) is None for p in pids):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def kill_all(pids: list[int], timeout: float = 10.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if wait_gone(pids, timeout):
            return
