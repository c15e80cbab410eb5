"""Runs real ``loco-emulator run`` processes on the test image, for any test that needs one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from emulator.testimage import write_test_image
from tests.support.ports import free_port, free_vnc_display
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


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

    def stop(self, sig: int = signal.SIGTERM, wait: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


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
        "--stream-heartbeat", "0.5", *(args or []),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT)
    return SupervisorProcess(name, proc, port, display, state, log_path, token)


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
    end = time.monotonic() + deadline
    alive = pids
    while time.monotonic() < end:
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
