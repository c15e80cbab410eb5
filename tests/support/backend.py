"""A real ``loco-backend`` process for tests, with fast probe settings."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Fast enough that a fault shows within a second or two, slow enough for a busy 2-core CI.
FAST_ARGS = [
    "--probe-interval", "0.2", "--probe-timeout", "1", "--breaker-threshold", "2",
    "--breaker-reset", "0.5", "--sse-keepalive", "1", "--action-interval", "0.1",
    "--thumbnail-ttl", "0.2", "--no-access-log",
]  # fmt: skip


class BackendProcess:
    """``loco-backend`` with the given discovery arguments, on its own port.

    ``discovery`` is e.g. ``["--discovery", "local", "--local-dir", DIR]``. The port stays
    the same across :meth:`stop` and :meth:`start`, as a restarted service's would.
    """

    def __init__(
        self,
        discovery: list[str],
        log_path: Path,
        *,
        token: str | None = None,
        port: int | None = None,
        extra: list[str] | None = None,
    ) -> None:
        self.discovery = discovery
        self.log_path = log_path
        self.token = token
        self.port = port or free_port()
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None

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
            *self.discovery, *FAST_ARGS, *self.extra,
        ]  # fmt: skip

    def start(self, timeout: float = 30.0) -> BackendProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCO_")}
        env["LOG_LEVEL"] = "info"
        if self.token:
            env["LOCO_CONTROL_TOKEN"] = self.token
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"loco-backend exited {self.proc.returncode}: "
                    + self.log_path.read_text(errors="replace")[-2000:]
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/ready", timeout=1, trust_env=False).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                raise RuntimeError("loco-backend did not become ready")
            time.sleep(0.05)

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
