"""End to end with a real ``loco-emulator run`` (QEMU with the test guest).

Local discovery finds the supervisor through its registration file; the backend proxies
its thumbnail, reset and log. Then a static backend watches the same supervisor while it
is stopped and started again: its breaker goes closed → open → half-open → closed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from backend.models import BreakerState, InstanceSource, InstanceStatus
from tests.backend.helpers import SseReader, backend_for, eventually, instance_history

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed"),
]

TOKEN = "e2e-token"
ROOT = Path(__file__).resolve().parents[2]


def free_tcp_port(low: int = 6000, high: int = 10000) -> int:
    """A free port in [low, high) (VNC ports are 5900 + display, so a range is needed)."""
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class Supervisor:
    def __init__(self, tmp: Path) -> None:
        self.image = tmp / "guest.img"
        self.state = tmp / "state" / "e2e-0"
        self.log_file = tmp / "e2e-0.log"
        self.port = free_tcp_port()
        self.vnc_display = free_tcp_port(6000, 9000) - 5900
        self.proc: subprocess.Popen[bytes] | None = None
        subprocess.run(
            [sys.executable, "-m", "emulator.cli", "make-test-image", str(self.image)],
            check=True,
            capture_output=True,
            cwd=ROOT,
            timeout=60,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "LOCO_CONTROL_TOKEN": TOKEN}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emulator.cli",
                "run",
                "--disk",
                str(self.image),
                "--state-dir",
                str(self.state),
                "--health-host",
                "127.0.0.1",
                "--health-port",
                str(self.port),
                "--vnc",
                f"127.0.0.1:{self.vnc_display}",
                "--name",
                "e2e-0",
                "--accel",
                "tcg",
                "--log-file",
                str(self.log_file),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                while self.proc.poll() is None:
                    await asyncio.sleep(0.05)
        self.proc = None


async def test_real_supervisor_through_the_backend(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    sup.start()
    try:
        async with backend_for(
            tmp_path / "unused.yaml",
            discovery=InstanceSource.LOCAL,
            local_dir=sup.state.parent,
            control_token=TOKEN,
            probe_timeout=5.0,
        ) as (runtime, client):
            fleet = runtime.fleet

            def healthy() -> bool:
                inst = fleet.get("e2e-0")
                return inst is not None and inst.status is InstanceStatus.HEALTHY

            await eventually(healthy, fleet=fleet, timeout=60, what="real emulator healthy")
            inst = fleet.get("e2e-0")
            assert inst is not None and inst.health is not None
            assert inst.health.qemu.running and inst.health_url == sup.url
            thumb = await client.get("/api/instances/e2e-0/thumbnail.png", params={"width": 64})
            assert thumb.status_code == 200 and thumb.content.startswith(b"\x89PNG")
            reset = await client.post(
                "/api/instances/e2e-0/reset", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert reset.status_code == 200, reset.text
            logs = await client.get("/api/instances/e2e-0/logs", params={"tail": 5})
            assert logs.status_code == 200 and logs.text.count("\n") >= 1

            # Watched through its status stream: a killed QEMU reaches /api/events by itself
            # (how fast is bench/bench_backend.py's business; here only that it arrives).
            inst = fleet.get("e2e-0")
            assert inst is not None and inst.link == "stream" and inst.health is not None
            assert inst.health.qemu.pid is not None
            async with client.stream("GET", "/api/events", timeout=30) as events:
                reader = SseReader(events)
                await reader.next_event()  # the snapshot
                os.kill(inst.health.qemu.pid, signal.SIGKILL)
                async with asyncio.timeout(15):
                    while True:
                        _, _, data = await reader.next_event()
                        changed = json.loads(data).get("instance") or {}
                        if changed.get("status") == "unhealthy":
                            break
            assert "QEMU is not running" in (changed.get("status_reason") or "")
            assert changed["link"] == "stream" and not changed["stale"]

        static = tmp_path / "static.yaml"
        static.write_text(f"- name: e2e-0\n  health_url: {sup.url}\n")
        async with backend_for(
            static, breaker_threshold=2, breaker_reset=0.5, probe_timeout=5.0
        ) as (runtime, _client):
            fleet = runtime.fleet
            seen: list[BreakerState] = []

            def breaker() -> BreakerState | None:
                inst = fleet.get("e2e-0")
                if inst is None:
                    return None
                if not seen or seen[-1] is not inst.breaker.state:
                    seen.append(inst.breaker.state)
                return inst.breaker.state

            def status() -> InstanceStatus | None:
                inst = fleet.get("e2e-0")
                return inst.status if inst else None

            await eventually(
                lambda: breaker() and status() is InstanceStatus.HEALTHY,
                fleet=fleet,
                timeout=30,
                what="healthy via static",
            )
            await sup.stop()
            await eventually(
                lambda: breaker() is BreakerState.OPEN, fleet=fleet, timeout=30, what="breaker open"
            )
            assert status() is InstanceStatus.UNHEALTHY
            sup.start()
            await eventually(
                lambda: breaker() is BreakerState.CLOSED and status() is InstanceStatus.HEALTHY,
                fleet=fleet,
                timeout=60,
                what="closed again after restart",
            )
            states = []
            for inst in instance_history(fleet, "e2e-0"):
                if not states or states[-1] is not inst.breaker.state:
                    states.append(inst.breaker.state)
            # open → closed as published: the half-open trial itself is not news
            i_open = states.index(BreakerState.OPEN)
            assert BreakerState.CLOSED in states[i_open:], states
            assert BreakerState.HALF_OPEN not in states, states
    finally:
        await sup.stop()
