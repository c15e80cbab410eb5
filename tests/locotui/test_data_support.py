"""Shared helpers for the locotui data-layer tests (no tests here).

* :class:`BackendProcess` runs the real ``loco-backend`` console script as a subprocess
  (static discovery), restartable on the same port, so SSE reconnection is tested against
  a backend that really goes away.
* :func:`eventually` is deadline-bounded waiting (never a fixed sleep that hopes).
* Instance builders for model tests use the real wire models.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from backend.models import (
    DiscoveryState,
    Instance,
    InstanceList,
    InstanceSource,
    InstanceStatus,
    PodFacts,
)
from emulator.models import EmulatorStatus, OverallStatus, QemuFacts, VideoFacts
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


async def eventually(
    check: Callable[[], Any], timeout: float = 10.0, what: str = "condition", step: float = 0.02
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(step)


class BackendProcess:
    """``loco-backend --discovery static`` in a subprocess, on a fixed port."""

    def __init__(
        self,
        static_file: Path,
        *,
        token: str | None = None,
        port: int | None = None,
        extra: list[str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.static_file = static_file
        self.token = token
        self.port = port or free_port()
        self.extra = extra or []
        self.log_path = log_path or static_file.with_suffix(".backend.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 20.0) -> BackendProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCO_")}
        env["LOG_LEVEL"] = "warning"
        if self.token:
            env["LOCO_CONTROL_TOKEN"] = self.token
        argv = [
            str(BIN / "loco-backend"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--discovery",
            "static",
            "--static-config",
            str(self.static_file),
            "--probe-interval",
            "0.2",
            "--probe-timeout",
            "1",
            "--breaker-threshold",
            "2",
            "--breaker-reset",
            "0.5",
            "--sse-keepalive",
            "0.5",
            "--action-interval",
            "1",
            "--no-access-log",
            *self.extra,
        ]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(trust_env=False) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"loco-backend exited {self.proc.returncode}: "
                        + self.log_path.read_text(errors="replace")[-2000:]
                    )
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(f"{self.url}/ready", timeout=1)
                    if r.status_code == 200:
                        return self
                if time.monotonic() > deadline:
                    raise RuntimeError("loco-backend did not become ready")
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 10)

    async def kill(self) -> None:
        """An abrupt death (SIGKILL): connections are reset, not closed politely."""
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        proc.kill()
        await asyncio.to_thread(proc.wait, 10)

    async def __aenter__(self) -> BackendProcess:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# --------------------------------------------------------------------------- builders

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def health(
    name: str, status: OverallStatus = OverallStatus.HEALTHY, fps: float = 25.0
) -> EmulatorStatus:
    return EmulatorStatus(
        instance=name,
        overall_status=status,
        qemu_healthy=status is OverallStatus.HEALTHY,
        timestamp=NOW,
        supervisor_uptime_seconds=60.0,
        qemu=QemuFacts(pid=100, running=True, qmp_status="running", uptime_seconds=50.0),
        video=VideoFacts(display_active=True, estimated_frame_rate=fps),
    )


def instance(
    name: str,
    status: InstanceStatus = InstanceStatus.HEALTHY,
    *,
    fps: float | None = 25.0,
    node: str | None = "node-a",
    restarts: int = 0,
    started: datetime | None = None,
    reason: str | None = None,
    source: InstanceSource = InstanceSource.KUBERNETES,
) -> Instance:
    return Instance(
        name=name,
        source=source,
        status=status,
        status_reason=reason,
        pod=PodFacts(
            phase="Running",
            ready=True,
            restarts=restarts,
            node=node,
            start_time=started or NOW,
        )
        if source is InstanceSource.KUBERNETES
        else None,
        health=health(name, fps=fps or 0.0),
        fps=fps,
    )


def fleet_list(items: list[Instance], revision: int = 1, ok: bool = True) -> InstanceList:
    return InstanceList(
        items=items,
        generated_at=NOW,
        revision=revision,
        discovery=DiscoveryState(source=InstanceSource.KUBERNETES, ok=ok, synced=True),
    )
