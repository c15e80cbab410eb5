"""A real ``loco-backend`` process for tests, with fast probe settings."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import httpx

from tests.support.paths import BIN, ROOT
from tests.support.ports import free_port
from tests.support.waiting import GiveUp, poll_until

_PROBES = [
    "--probe-interval", "0.2", "--probe-timeout", "1", "--breaker-threshold", "2",
    "--breaker-reset", "0.5",
]  # fmt: skip
# Fast enough that a fault shows within a second or two, slow enough for a busy 2-core CI.
FAST_ARGS = [
    *_PROBES, "--sse-keepalive", "1", "--action-interval", "0.1", "--thumbnail-ttl", "0.2",
    "--no-access-log",
]  # fmt: skip
# The console data-layer tests' timing: at most one action per instance a second (their
# rate-limit test needs the second refused), keep-alives every half second.
CONSOLE_DATA_ARGS = [
    *_PROBES, "--sse-keepalive", "0.5", "--action-interval", "1", "--no-access-log",
]  # fmt: skip


class BackendProcess:
    """``loco-backend`` with the given discovery arguments, on its own port.

    ``discovery`` is e.g. ``["--discovery", "local", "--local-dir", DIR]``; see
    :meth:`static` for static discovery over a file. The port stays the same across
    :meth:`stop` and :meth:`start`, as a restarted service's would. Tests in an event loop
    use the ``a``-methods (or ``async with``), so the loop (e.g. fake emulators served in
    it) keeps running while the backend starts and stops.
    """

    def __init__(
        self,
        discovery: list[str],
        log_path: Path,
        *,
        token: str | None = None,
        port: int | None = None,
        extra: list[str] | None = None,
        timing: list[str] = FAST_ARGS,
    ) -> None:
        self.discovery = discovery
        self.log_path = log_path
        self.token = token
        self.port = port or free_port()
        self.extra = extra or []
        self.timing = timing
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def static(
        cls,
        static_file: Path,
        *,
        token: str | None = None,
        port: int | None = None,
        extra: list[str] | None = None,
        log_path: Path | None = None,
        timing: list[str] = FAST_ARGS,
    ) -> BackendProcess:
        """Static discovery of ``static_file``; the log next to it unless given."""
        return cls(
            ["--discovery", "static", "--static-config", str(static_file)],
            log_path or static_file.with_suffix(".backend.log"),
            token=token,
            port=port,
            extra=extra,
            timing=timing,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def argv(self) -> list[str]:
        return [
            str(BIN / "loco-backend"), "--host", "127.0.0.1", "--port", str(self.port),
            *self.discovery, *self.timing, *self.extra,
        ]  # fmt: skip

    def start(self, timeout: float = 30.0) -> BackendProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCO_")}
        env["LOG_LEVEL"] = "info"
        if self.token:
            env["LOCO_CONTROL_TOKEN"] = self.token
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                self.argv(), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        self.proc = proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise GiveUp(
                    f"loco-backend exited {proc.returncode}: "
                    + self.log_path.read_text(errors="replace")[-2000:]
                )
            return httpx.get(f"{self.url}/ready", timeout=1, trust_env=False).status_code == 200

        poll_until(ready, timeout, "loco-backend ready", interval=0.05)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def kill(self) -> None:
        """An abrupt death (SIGKILL): connections are reset, not closed politely."""
        self.stop(signal.SIGKILL)

    async def astart(self, timeout: float = 30.0) -> BackendProcess:
        return await asyncio.to_thread(self.start, timeout)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    async def akill(self) -> None:
        await asyncio.to_thread(self.kill)

    def __enter__(self) -> BackendProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> BackendProcess:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()

    def instances(self) -> dict[str, dict]:
        """The fleet as the backend serves it now, by name."""
        items = httpx.get(f"{self.url}/api/instances", timeout=5, trust_env=False).json()["items"]
        return {i["name"]: i for i in items}

    def rss_bytes(self) -> int:
        assert self.proc is not None
        return rss_bytes(self.proc.pid)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")
