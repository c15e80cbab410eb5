"""End to end with a real ``loco-emulator run`` (QEMU with the test guest).

Local discovery finds the supervisor through its registration file; the backend proxies
its thumbnail, reset and log. Then a static backend watches the same supervisor while it
is stopped and started again: its breaker goes closed → open → half-open → closed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from backend.models import BreakerState, InstanceSource, InstanceStatus
from tests.backend.helpers import backend_for, instance_history
from tests.support.sse import SseReader
from tests.support.supervisor import SupervisorProcess, start_supervisor
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed"),
]

TOKEN = "e2e-token"


def start(tmp: Path) -> SupervisorProcess:
    """The supervisor of one test guest, found by local discovery in ``tmp/state``."""
    return start_supervisor(
        tmp,
        "e2e-0",
        token=TOKEN,
        args=["--accel", "tcg", "--log-file", str(tmp / "e2e-0.jsonl")],
        state_dir=tmp / "state" / "e2e-0",
    )


async def test_real_supervisor_through_the_backend(tmp_path: Path) -> None:
    sup = start(tmp_path)
    try:
        async with backend_for(
            tmp_path / "unused.yaml",
            discovery=InstanceSource.LOCAL,
            local_dir=sup.state_dir.parent,
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
            await asyncio.to_thread(sup.stop)
            await eventually(
                lambda: breaker() is BreakerState.OPEN, fleet=fleet, timeout=30, what="breaker open"
            )
            assert status() is InstanceStatus.UNHEALTHY
            sup.restart()
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
        await asyncio.to_thread(sup.stop)
