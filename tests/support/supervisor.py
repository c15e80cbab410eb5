"""Runs real ``loco-emulator run`` processes on the test image, for any test that needs one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from emulator.testimage import write_test_image
from tests.support.paths import ROOT
from tests.support.ports import free_port, free_vnc_display
from tests.support.processes import alive
from tests.support.waiting import poll_until, wait_until


@dataclass
class SupervisorProcess:
    name: str
    proc: subprocess.Popen[bytes]
    health_port: int
    vnc_display: int
    state_dir: Path
    log_path: Path
    token: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    @property
    def vnc_port(self) -> int:
        return 5900 + self.vnc_display

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def health(self) -> dict:
        async with httpx.AsyncClient(timeout=3) as client:
            r = await client.get(f"{self.url}/health")
            return r.json()

    async def wait_status(self, accept, deadline: float = 30.0, what: str = "status") -> dict:
        return await wait_until(self.health, accept, deadline, what=f"{self.name}: {what}")

    async def wait_ready(self, deadline: float = 30.0) -> dict:
        return await self.wait_status(
            lambda h: h["overall_status"] == "healthy", deadline, "healthy"
        )

    def qemu_pid(self) -> int | None:
        try:
            h = httpx.get(f"{self.url}/health", timeout=3).json()
        except httpx.HTTPError:
            return None
        return h["qemu"]["pid"]

    async def freeze_picture(self, frozen: bool = True) -> None:
        """Tells the test guest, over its serial port, to stop (or resume) drawing."""
        _, writer = await asyncio.open_unix_connection(str(self.state_dir / "serial.sock"))
        try:
            writer.write(b"f" if frozen else b"g")
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def restart(self) -> None:
        """Runs the supervisor again after :meth:`stop`: same ports, state and log."""
        assert self.proc.poll() is not None, "still running"
        self.proc = _spawn(self.argv, self.env, self.log_path, "ab")

    def stop(self, sig: int = signal.SIGTERM, wait: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def audited(log: str, action: str) -> int:
    """How many times the supervisor's audit log lines (JSON, logger ``emulator.audit``) in
    ``log`` record ``action`` (``reset``, ``restart``): what it really carried out."""
    count = 0
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") == "emulator.audit" and entry.get("message") == action:
            count += 1
    return count


def make_image(
    directory: Path, fps: float = 30, mode_switch: bool = False, disk_write: bool = False
) -> Path:
    name = f"guest-{fps:g}{'-switch' if mode_switch else ''}{'-write' if disk_write else ''}.img"
    path = directory / name
    if not path.exists():
        write_test_image(path, fps=fps, mode_switch=mode_switch, disk_write=disk_write)
    return path


def start_supervisor(
    tmp: Path,
    name: str = "emu",
    image: Path | None = None,
    token: str | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    state_dir: Path | None = None,
) -> SupervisorProcess:
    image = image or make_image(tmp)
    state = state_dir or tmp / f"state-{name}"
    port = free_port()
    display = free_vnc_display()
    log_path = tmp / f"{name}.log"
    full_env = {**os.environ, "LOG_LEVEL": "debug", "PYTHONUNBUFFERED": "1"}
    full_env.pop("LOCO_CONTROL_TOKEN", None)
    if token:
        full_env["LOCO_CONTROL_TOKEN"] = token
    full_env.update(env or {})
    cmd = [
        sys.executable, "-m", "emulator.cli", "run",
        "--disk", str(image), "--state-dir", str(state),
        "--health-port", str(port), "--health-host", "127.0.0.1",
        "--vnc", f"127.0.0.1:{display}", "--name", name,
        # Fast like the backend's test settings: a silent status stream shows in ~1.5 s.
        "--status-heartbeat", "0.5", *(args or []),
    ]  # fmt: skip
    proc = _spawn(cmd, full_env, log_path, "wb")
    return SupervisorProcess(
        name, proc, port, display, state, log_path, token, argv=cmd, env=full_env
    )


def _spawn(
    argv: list[str], env: dict[str, str], log_path: Path, mode: str
) -> subprocess.Popen[bytes]:
    with log_path.open(mode) as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def qemu_processes_for(state_dir: Path) -> list[int]:
    """PIDs of QEMU processes whose command line mentions this state directory."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "qemu-system" in cmdline and str(state_dir) in cmdline:
            pids.append(int(entry.name))
    return pids


def wait_gone(pids: list[int], deadline: float = 10.0) -> list[int]:
    """Waits for the processes to end; those still alive after ``deadline`` s."""

    def living() -> list[int]:
        return [p for p in pids if alive(p)]

    try:
        poll_until(living, deadline, "processes gone", interval=0.05, accept=lambda a: not a)
    except AssertionError:
        return living()
    return []
