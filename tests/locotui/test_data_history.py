"""History: session ring buffers, and a real Prometheus scraping the project's exporters."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, start_http_server

from backend.models import InstanceEvent, InstanceStatus
from emulator.metrics import _StatusCollector
from emulator.models import EmulatorStatus, OverallStatus
from locotui.data.errors import ServerError, Unreachable
from locotui.data.fleet import FleetModel, Source
from locotui.data.history import (
    PreferPrometheus,
    PrometheusHistory,
    SessionHistory,
    make_history,
)
from locotui.data.link import LinkState
from tests.support.backend import CONSOLE_DATA_ARGS, BackendProcess
from tests.support.builders import health, instance
from tests.support.fake_emulator import FakeEmulators, write_static
from tests.support.ports import free_port
from tests.support.waiting import eventually


async def test_session_history_from_the_fleet_model() -> None:
    wall = [time.time() - 130]  # samples at -100, -70, -40 and -10 s
    fleet = FleetModel(wall_clock=lambda: wall[0])
    for i, status in enumerate(
        [
            InstanceStatus.HEALTHY,
            InstanceStatus.HEALTHY,
            InstanceStatus.DEGRADED,
            InstanceStatus.HEALTHY,
        ]
    ):
        wall[0] += 30
        fleet.apply_event(InstanceEvent(seq=i, instance=instance("a", status, fps=10.0 + i)))
    fleet.apply_event(InstanceEvent(seq=9, instance=instance("b", fps=None)))
    history = make_history(None, fleet)
    assert isinstance(history, SessionHistory) and history.name == "session"
    fps = await history.fps(window=3600)
    assert [v for _, v in fps["a"]] == [10.0, 11.0, 12.0, 13.0]
    assert fps["b"] == []  # unknown fps is not a point
    recent = await history.fps(["a"], window=50)
    assert [v for _, v in recent["a"]] == [12.0, 13.0] and "b" not in recent
    status = await history.status(["a"], window=3600)
    assert [s for _, s in status["a"]] == [
        InstanceStatus.HEALTHY,
        InstanceStatus.DEGRADED,
        InstanceStatus.HEALTHY,
    ]
    # A window starting after the last change still says what was current then.
    (only,) = (await history.status(["a"], window=5))["a"]
    assert only[1] is InstanceStatus.HEALTHY
    # A configured but dead Prometheus falls back to the session's history, visibly.
    preferred = make_history(f"http://127.0.0.1:{free_port()}", fleet)
    assert isinstance(preferred, PreferPrometheus)
    fallback = await preferred.fps(["a"], window=3600)
    assert [v for _, v in fallback["a"]] == [10.0, 11.0, 12.0, 13.0]
    assert preferred.name == "session" and "unreachable" in (preferred.last_error or "")
    link = fleet.links[Source.PROMETHEUS]
    assert link.state is LinkState.FAILED and link.error == preferred.last_error


@dataclass
class StubInstance:
    """Stands in for EmulatorInstance behind the emulator's real metrics collector."""

    current: EmulatorStatus

    def status(self) -> EmulatorStatus:
        return self.current


@pytest.fixture
def emulator_exporter() -> Iterator[tuple[int, StubInstance]]:
    stub = StubInstance(health("stub-0", fps=24.0))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(stub))  # type: ignore[arg-type]
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield port, stub
    server.shutdown()
    thread.join(5)


@pytest.fixture
async def prometheus(
    tmp_path: Path, emulator_exporter: tuple[int, StubInstance]
) -> AsyncIterator[tuple[str, StubInstance]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed")
    exporter_port, stub = emulator_exporter
    async with FakeEmulators(["loco-0", "loco-1"]) as fake:
        static = write_static(tmp_path / "s.yaml", fake)
        async with BackendProcess.static(static, timing=CONSOLE_DATA_ARGS) as backend:
            config = tmp_path / "prometheus.yml"
            config.write_text(
                f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: emulators
    static_configs: [{{targets: ["127.0.0.1:{exporter_port}"]}}]
  - job_name: backend
    static_configs: [{{targets: ["127.0.0.1:{backend.port}"]}}]
"""
            )
            port = free_port()
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / "prometheus.log").open("wb"),
            )
            url = f"http://127.0.0.1:{port}"
            try:
                async with httpx.AsyncClient(trust_env=False) as client:

                    async def ready() -> bool:
                        return (await client.get(f"{url}/-/ready")).status_code == 200

                    await eventually(ready, 20, "prometheus ready", interval=0.05)
                yield url, stub
            finally:
                proc.terminate()
                await asyncio.to_thread(proc.wait, 10)


async def test_prometheus_history_fps_and_status(prometheus: tuple[str, StubInstance]) -> None:
    url, stub = prometheus
    history = PrometheusHistory(url)
    await history.check()
    preferred = make_history(url, FleetModel())
    assert isinstance(preferred, PreferPrometheus)

    async def have_fps() -> dict:  # type: ignore[type-arg]
        got = await history.fps(window=120, step=1)
        return got if len(got.get("stub-0", [])) >= 2 else {}

    fps = await eventually(have_fps, 20, "Prometheus fps data", interval=0.25)
    # The supervisor's own gauge wins; the name comes from the exported instance label.
    assert set(fps) == {"stub-0"}
    assert all(v == 24.0 for _, v in fps["stub-0"])
    assert all(a[0] < b[0] for a, b in zip(fps["stub-0"], fps["stub-0"][1:], strict=False))

    # Without the emulator metric, the backend's per-instance gauge is used.
    backend_only = PrometheusHistory(
        url, fps_metrics=("loco_missing_metric", "loco_backend_instance_fps")
    )

    async def have_backend_fps() -> dict:  # type: ignore[type-arg]
        got = await backend_only.fps(["loco-0", "loco-1"], window=120, step=1)
        return got if {"loco-0", "loco-1"} <= set(got) else {}

    got = await eventually(
        have_backend_fps, 20, "Prometheus fps data of the backend", interval=0.25
    )
    assert all(v == 25.0 for _, v in got["loco-0"])

    stub.current = health("stub-0", OverallStatus.DEGRADED, fps=2.0)

    async def have_change() -> dict:  # type: ignore[type-arg]
        st = await history.status(["stub-0"], window=120, step=1)
        states = [s for _, s in st.get("stub-0", [])]
        return st if states[-2:] == [InstanceStatus.HEALTHY, InstanceStatus.DEGRADED] else {}

    status = await eventually(have_change, 20, "the status change in Prometheus", interval=0.25)
    times = [t for t, _ in status["stub-0"]]
    assert times == sorted(times)

    assert (await preferred.fps(["stub-0"], window=120, step=1))["stub-0"]
    assert preferred.name == "prometheus"
    assert preferred.session.fleet.links[Source.PROMETHEUS].state is LinkState.CONNECTED

    with pytest.raises(ServerError, match="Prometheus query failed"):
        await PrometheusHistory(url, fps_metrics=("bad{",)).fps()


async def test_unreachable_prometheus_is_one_line() -> None:
    port = free_port()
    with pytest.raises(Unreachable) as err:
        await PrometheusHistory(f"http://127.0.0.1:{port}", timeout=2).fps()
    assert str(err.value) == f"Prometheus http://127.0.0.1:{port} unreachable: connection refused"
    assert err.value.source == "prometheus"


async def test_slo_burn_from_the_backend_gauges(prometheus: tuple[str, StubInstance]) -> None:
    """Two instances at 25 fps: a 20 fps target is met (no burn), a 30 fps one is missed
    by all (the whole budget at 1 / (1 - 0.95) = 20 times its rate)."""
    url, _ = prometheus
    history = PrometheusHistory(url)
    windows = (("2m", 120.0),)

    async def burn(target: float) -> dict:  # type: ignore[type-arg]
        got = await history.slo_burn(target, 0.95, windows=windows, step=1)
        return got if got["2m"] is not None else {}

    over_20 = await eventually(lambda: burn(20), 20, "the burn over 20 s", interval=0.25)
    assert over_20 == {"2m": 0.0}
    over_30 = await eventually(lambda: burn(30), 20, "the burn over 30 s", interval=0.25)
    assert over_30["2m"] == pytest.approx(20.0)
    with pytest.raises(Unreachable):
        await PrometheusHistory(f"http://127.0.0.1:{free_port()}", timeout=2).slo_burn(20, 0.95)
