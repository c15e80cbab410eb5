"""The local demo fleet: N emulator supervisors, the backend, and optionally Prometheus.

Every process is started with its own session (a Ctrl-C reaches only the demo, which then
stops them in order) and a parent-death signal (a demo killed with SIGKILL takes them all
with it). Nothing secret goes on a command line: the control token is a 0600 file whose
path is handed over in the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from emulator.childproc import describe_exit, die_with_parent
from emulator.errors import ExitCode
from emulator.statedir import AlreadyLocked, take_lock
from emulator.testimage import write_test_image
from locotui.demo.ports import free_port, free_udp_port, free_vnc_display

Progress = Callable[[str], None]

START_LIMIT = 90.0  # first boot on a loaded 2-core machine, with margin
STOP_LIMIT = 20.0
PORT_RETRIES = 3


class DemoError(Exception):
    """The demo could not start; the message says which part and why."""


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str]
    url: str | None = None
    # Popen, not an asyncio process: the demo starts the fleet in one event loop and the
    # console runs in another, and asyncio processes belong to the loop that made them.
    proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def console_path(self) -> Path:
        """stderr of the process: what it says when it cannot even start logging."""
        return self.log_path.with_suffix(".stderr")

    def log_tail(self, lines: int = 5) -> str:
        text: list[str] = []
        for path in dict.fromkeys((self.log_path, self.console_path)):
            try:
                text += path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
        return "\n".join(text[-2 * lines :]) or "(nothing logged)"


@dataclass
class DemoStack:
    instances: int = 3
    state_dir: Path | None = None
    prometheus: bool | None = None  # None: when the prometheus binary is installed
    fps: float = 30.0
    stream: bool = False
    """Each emulator streams its display (``--stream``), its RTP to a port nobody reads:
    the demo's viewers are browsers, on the backend's watch page."""
    children: list[Child] = field(default_factory=list)
    token: str = ""
    backend_url: str = ""
    prometheus_url: str | None = None
    _owns_state_dir: bool = False
    _lock_fd: int | None = None

    @property
    def token_file(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / "control-token"

    @property
    def emulators(self) -> list[Child]:
        return [c for c in self.children if c.name.startswith("loco-")]

    # -- start ----------------------------------------------------------------------------

    async def start(self, progress: Progress) -> None:
        if not 1 <= self.instances <= 32:
            raise DemoError(f"--instances {self.instances}: choose between 1 and 32")
        for tool in ("qemu-system-x86_64", "qemu-img"):
            if shutil.which(tool) is None:
                raise DemoError(f"{tool} is not installed; run 'make setup' (or make demo)")
        self._prepare_state_dir()
        assert self.state_dir is not None
        progress(f"state and logs in {self.state_dir}")
        image = self.state_dir / f"test-guest-{self.fps:g}fps.img"
        write_test_image(image, fps=self.fps)
        self.token = secrets.token_urlsafe(32)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.token)

        taken: set[int] = set()
        for i in range(1, self.instances + 1):
            child = await self._start_emulator(f"loco-{i}", image, taken)
            progress(f"started emulator {child.name} ({child.url})")
        backend = await self._start_with_port(self._backend_child)
        self.backend_url = backend.url or ""
        progress(f"started backend ({self.backend_url})")
        if self.prometheus is not False:
            if shutil.which("prometheus") is None:
                if self.prometheus:
                    raise DemoError(
                        "--prometheus given but prometheus is not installed; run 'make setup'"
                    )
            else:
                prom = await self._start_with_port(self._prometheus_child)
                self.prometheus_url = prom.url
                progress(f"started Prometheus ({prom.url})")
        await self._wait_ready(progress)

    def _prepare_state_dir(self) -> None:
        if self.state_dir is None:
            base = Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp")  # noqa: S108
            self.state_dir = Path(tempfile.mkdtemp(prefix="locotui-demo-", dir=base))
            self._owns_state_dir = True
        self.state_dir = self.state_dir.absolute()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        (self.state_dir / "emulators").mkdir(exist_ok=True)
        try:
            self._lock_fd = take_lock(self.state_dir / ".demo.lock")
        except AlreadyLocked as exc:
            raise DemoError(
                f"state dir {self.state_dir} is in use by another demo (pid {exc.holder or '?'}); "
                "give another --state-dir or stop that demo"
            ) from None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "LOCO_CONTROL_TOKEN"}
        env["LOCO_CONTROL_TOKEN_FILE"] = str(self.token_file)
        env.setdefault("LOG_LEVEL", "info")
        return env

    def _spawn(self, child: Child) -> None:
        # Log lines go to the --log-file (which the console's log view reads); stdout would
        # only repeat them, and stderr keeps what a process says before logging starts.
        with child.console_path.open("ab") as console:
            child.proc = subprocess.Popen(
                child.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=console,
                env=child.env,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.children.append(child)

    @staticmethod
    async def _exited_within(child: Child, seconds: float) -> int | None:
        """The exit status if the child ends within ``seconds`` (a failed start), else None."""
        assert child.proc is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                return child.proc.returncode
            await asyncio.sleep(0.05)
        return child.proc.poll()

    async def _start_emulator(self, name: str, image: Path, taken: set[int]) -> Child:
        assert self.state_dir is not None
        for _ in range(PORT_RETRIES):
            port, display = free_port(), free_vnc_display(taken)
            taken.add(display)
            child = Child(
                name,
                [
                    sys.executable,
                    "-m",
                    "emulator.cli",
                    "run",
                    "--disk",
                    str(image),
                    "--state-dir",
                    str(self.state_dir / "emulators" / name),
                    "--health-host",
                    "127.0.0.1",
                    "--health-port",
                    str(port),
                    "--vnc",
                    f"127.0.0.1:{display}",
                    "--name",
                    name,
                    "--log-file",
                    str(self.state_dir / "logs" / f"{name}.log"),
                    *self._stream_args(),
                ],
                self.state_dir / "logs" / f"{name}.log",
                self._env(),
                url=f"http://127.0.0.1:{port}",
            )
            self._spawn(child)
            if await self._exited_within(child, 0.3) != ExitCode.PORT_IN_USE:
                return child
            self.children.remove(child)
        raise DemoError(f"{name}: no free port after {PORT_RETRIES} tries:\n{child.log_tail()}")

    def _stream_args(self) -> list[str]:
        if not self.stream:
            return []
        return ["--stream", "--stream-dest", f"127.0.0.1:{free_udp_port()}"]

    async def _start_with_port(self, make: Callable[[int], Child]) -> Child:
        for _ in range(PORT_RETRIES):
            child = make(free_port())
            self._spawn(child)
            await self._exited_within(child, 0.3)
            if child.running:
                return child
            self.children.remove(child)
            if "in use" not in child.log_tail(20):
                raise DemoError(f"{child.name} exited at start:\n{child.log_tail()}")
        raise DemoError(f"{child.name}: no free port after {PORT_RETRIES} tries")

    def _backend_child(self, port: int) -> Child:
        assert self.state_dir is not None
        return Child(
            "backend",
            [
                sys.executable,
                "-m",
                "backend.cli",
                "--discovery",
                "local",
                "--local-dir",
                str(self.state_dir / "emulators"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-file",
                str(self.state_dir / "logs" / "backend.log"),
            ],
            self.state_dir / "logs" / "backend.log",
            self._env(),
            url=f"http://127.0.0.1:{port}",
        )

    def _prometheus_child(self, port: int) -> Child:
        assert self.state_dir is not None
        config = self.state_dir / "prometheus.yml"
        emulator_targets = [c.url.removeprefix("http://") for c in self.emulators if c.url]
        backend = self.backend_url.removeprefix("http://")
        config.write_text(
            "global:\n  scrape_interval: 2s\n  evaluation_interval: 2s\n"
            "scrape_configs:\n"
            "  - job_name: loco-emulator\n"
            f"    static_configs:\n      - targets: {emulator_targets!r}\n"
            "  - job_name: loco-backend\n"
            f"    static_configs:\n      - targets: ['{backend}']\n"
        )
        return Child(
            "prometheus",
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={self.state_dir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            self.state_dir / "logs" / "prometheus.stderr",
            self._env(),
            url=f"http://127.0.0.1:{port}",
        )

    async def _wait_ready(self, progress: Progress) -> None:
        """Until every emulator reports healthy and the backend is ready, or a clear error."""
        deadline = time.monotonic() + START_LIMIT
        pending = {c.name: c for c in self.emulators}
        last: dict[str, str] = {}
        async with httpx.AsyncClient(timeout=2) as client:
            while pending or not await self._backend_ready(client):
                for child in list(self.children):
                    if not child.running:
                        raise DemoError(
                            f"{child.name} exited (status {child.proc and child.proc.returncode})"
                            f"; its log ends with:\n{child.log_tail()}"
                        )
                for name, child in list(pending.items()):
                    state = await self._emulator_state(client, child)
                    if state != last.get(name):
                        progress(f"{name}: {state}")
                        last[name] = state
                    if state == "healthy":
                        del pending[name]
                if time.monotonic() > deadline:
                    waiting = ", ".join(f"{n} ({last.get(n, '?')})" for n in pending)
                    raise DemoError(f"not ready after {START_LIMIT:.0f} s: {waiting or 'backend'}")
                await asyncio.sleep(0.25)
        progress("all emulators healthy; backend ready")

    async def _emulator_state(self, client: httpx.AsyncClient, child: Child) -> str:
        try:
            body = (await client.get(f"{child.url}/health")).json()
        except (httpx.HTTPError, ValueError):
            return "starting supervisor"
        status = str(body.get("overall_status"))
        reasons = body.get("reasons") or []
        return f"{status} ({reasons[0]})" if reasons and status != "healthy" else status

    async def _backend_ready(self, client: httpx.AsyncClient) -> bool:
        """The backend answers /ready and already lists every emulator the demo started
        (local discovery finds a supervisor's registration a moment after it starts)."""
        try:
            if (await client.get(f"{self.backend_url}/ready")).status_code != 200:
                return False
            items = (await client.get(f"{self.backend_url}/api/instances")).json()["items"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return False
        return {c.name for c in self.emulators} <= {i.get("name") for i in items}

    # -- watch ----------------------------------------------------------------------------

    async def deaths(self) -> AsyncIterator[str]:
        """One line for each of the demo's processes that ends while this is iterated.

        Event-driven: a pidfd per process becomes readable when it exits, so nothing is
        polled. Meant for the console, which says so on screen: a demo whose backend or
        emulator died must not just look quiet.
        """
        loop = asyncio.get_running_loop()
        ended: asyncio.Queue[Child] = asyncio.Queue()
        watched: dict[int, Child] = {}
        for child in self.children:
            if child.proc is None or not child.running:
                continue
            try:
                fd = os.pidfd_open(child.proc.pid)
            except OSError:  # already gone (and reaped) or pidfds unsupported
                continue
            watched[fd] = child
            loop.add_reader(fd, self._ended, fd, watched, ended)
        try:
            while watched or not ended.empty():
                child = await ended.get()
                assert child.proc is not None
                code = child.proc.wait()
                last = child.log_tail(1).splitlines()[-1:] or []
                yield (
                    f"demo: {child.name} (pid {child.proc.pid}) "
                    f"{describe_exit(code, deque(last))}; log {child.log_path}"
                )
        finally:
            for fd in list(watched):
                loop.remove_reader(fd)
                os.close(fd)

    @staticmethod
    def _ended(fd: int, watched: dict[int, Child], ended: asyncio.Queue[Child]) -> None:
        child = watched.pop(fd)
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        ended.put_nowait(child)

    # -- stop -----------------------------------------------------------------------------

    def stop(self, progress: Progress | None = None) -> None:
        """Stops everything started, newest first, and waits until each process is gone.

        SIGTERM to all at once (each supervisor powers its guest down in parallel), then
        SIGKILL for whatever has not ended within ``STOP_LIMIT``."""
        for child in reversed(self.children):
            if child.running:
                assert child.proc is not None
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)
        # One deadline for all of them, as the docstring says: waiting STOP_LIMIT for each in
        # turn made a slow machine's stop take three times as long.
        deadline = time.monotonic() + STOP_LIMIT
        for child in reversed(self.children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                child.proc.wait()
            if progress:
                progress(f"stopped {child.name}")
        self.children.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def cleanup(self) -> None:
        """Removes a state dir the demo created itself (the caller's own dir is kept)."""
        if self._owns_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
