"""The backend watching supervisors' status streams, and falling back to probing.

Stand-in supervisors (tests/support/fake_emulator.py) serve the supervisor's own stream
code; the backend's probe interval is long in most of these tests, so whatever arrives
quickly was pushed, not polled.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from backend.models import BreakerState, InstanceStatus
from backend.runtime import BackendRuntime, build_runtime
from backend.streams import silence_bound
from emulator.models import OverallStatus
from tests.backend.helpers import instance_history, settings
from tests.support.fake_emulator import FakeEmulators, write_static
from tests.support.waiting import eventually


@contextlib.asynccontextmanager
async def watching(
    tmp_path: Path, fake: FakeEmulators, names: list[str] | None = None, **changes: Any
) -> AsyncIterator[BackendRuntime]:
    options: dict[str, Any] = {"probe_interval": 30.0, "breaker_reset": 0.3} | changes
    static = write_static(tmp_path / "fleet.yaml", fake, names)
    runtime = build_runtime(settings(static_config=static, **options))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


FAILURES = "loco_backend_status_stream_failures_total"


def link_of(runtime: BackendRuntime, name: str) -> str | None:
    inst = runtime.fleet.get(name)
    return inst.link if inst is not None else None


def status_of(runtime: BackendRuntime, name: str) -> InstanceStatus | None:
    inst = runtime.fleet.get(name)
    return inst.status if inst is not None else None


def sample(runtime: BackendRuntime, metric: str, **labels: str) -> float:
    return runtime.metrics.registry.get_sample_value(metric, labels) or 0.0


async def test_changes_are_pushed_and_nothing_is_polled(tmp_path: Path) -> None:
    async with FakeEmulators(["a", "b"]) as fake, watching(tmp_path, fake) as runtime:
        fleet = runtime.fleet
        await eventually(
            lambda: all(link_of(runtime, n) == "stream" for n in "ab"), fleet=fleet, what="streams"
        )
        assert status_of(runtime, "a") is InstanceStatus.HEALTHY
        assert sample(runtime, "loco_backend_status_links", mode="stream") == 2
        seq = fleet.seq
        fake.instances["b"].overall_status = OverallStatus.DEGRADED
        fake.instances["b"].reasons = ["the screen is blank (one colour)"]
        await eventually(
            lambda: status_of(runtime, "b") is InstanceStatus.DEGRADED,
            timeout=5,
            fleet=fleet,
            what="the change pushed (the probe interval is 30 s)",
        )
        inst = fleet.get("b")
        assert inst is not None and inst.status_reason == "the screen is blank (one colour)"
        assert not inst.stale
        assert all(i.probes == 0 for i in fake.instances.values()), "nothing was polled"
        # Only what changed was published: b, once or twice (status, then reasons).
        assert 1 <= len(instance_history(fleet, "b", seq)) <= 2
        assert instance_history(fleet, "a", seq) == []


async def test_a_supervisor_without_the_stream_is_probed(tmp_path: Path) -> None:
    async with (
        FakeEmulators(["old"], streams=False) as fake,
        watching(tmp_path, fake, probe_interval=0.1) as runtime,
    ):
        await eventually(
            lambda: status_of(runtime, "old") is InstanceStatus.HEALTHY,
            fleet=runtime.fleet,
            what="healthy by probing",
        )
        assert link_of(runtime, "old") == "probe"
        probes = fake.instances["old"].probes
        await eventually(lambda: fake.instances["old"].probes >= probes + 3, what="probed on")
        fake.instances["old"].overall_status = OverallStatus.UNHEALTHY
        await eventually(
            lambda: status_of(runtime, "old") is InstanceStatus.UNHEALTHY,
            fleet=runtime.fleet,
            what="a change seen by a probe",
        )
        inst = runtime.fleet.get("old")
        assert inst is not None and inst.breaker.failures == 0, "a 404 is not a failure"
        assert sample(runtime, FAILURES, reason="unsupported")
        assert fake.instances["old"].streams_opened == 1, "asked once, not at every probe"


async def test_refused_stream_counts_on_the_breaker_falls_back_and_is_restored(
    tmp_path: Path,
) -> None:
    async with (
        FakeEmulators(["e"]) as fake,
        watching(tmp_path, fake, probe_interval=0.1, breaker_threshold=2) as runtime,
    ):
        fleet = runtime.fleet
        await eventually(lambda: link_of(runtime, "e") == "stream", fleet=fleet, what="open")
        await fake.stop()
        await eventually(
            lambda: (i := fleet.get("e")) is not None and i.breaker.state is BreakerState.OPEN,
            fleet=fleet,
            what="the circuit opens",
        )
        inst = fleet.get("e")
        assert inst is not None
        assert inst.status is InstanceStatus.UNHEALTHY and inst.stale
        assert inst.link == "probe" and inst.health is not None
        assert "cannot connect" in (inst.last_error or "")
        states = [i.status for i in instance_history(fleet, "e")]
        assert states.index(InstanceStatus.DEGRADED) < states.index(InstanceStatus.UNHEALTHY)

        await fake.start()
        await eventually(
            lambda: (
                (i := fleet.get("e")) is not None
                and i.link == "stream"
                and i.status is InstanceStatus.HEALTHY
                and i.breaker.state is BreakerState.CLOSED
            ),
            timeout=20,
            fleet=fleet,
            what="the stream restored",
        )


async def test_a_stream_refused_from_the_start_is_counted_then_opened(tmp_path: Path) -> None:
    fake = FakeEmulators(["late"])
    await fake.start()
    await fake.stop()  # its port is known, nobody listens there yet
    async with watching(tmp_path, fake, probe_interval=0.1) as runtime:
        fleet = runtime.fleet
        await eventually(
            lambda: sample(runtime, FAILURES, reason="refused") >= 1, what="a refused stream"
        )
        await eventually(
            lambda: status_of(runtime, "late") is InstanceStatus.UNHEALTHY,
            fleet=fleet,
            what="unreachable",
        )
        await fake.start()
        try:
            await eventually(
                lambda: (
                    link_of(runtime, "late") == "stream"
                    and status_of(runtime, "late") is InstanceStatus.HEALTHY
                ),
                timeout=40,
                fleet=fleet,
                what="streaming once it is there",
            )
        finally:
            await fake.stop()


async def test_a_silent_stream_is_a_failure_and_probing_takes_over(tmp_path: Path) -> None:
    async with FakeEmulators(["hung"], heartbeat=0.2) as fake:
        fake.instances["hung"].silent = True
        async with watching(tmp_path, fake, probe_interval=0.2) as runtime:
            fleet = runtime.fleet
            await eventually(
                lambda: sample(runtime, FAILURES, reason="silent"),
                what="the stream declared silent",
            )
            failed = [i for i in instance_history(fleet, "hung") if i.stale]
            assert failed, "published as a failure: last-known health, stale"
            assert "silent for 0.6 s" in (failed[0].last_error or "")
            assert failed[0].breaker.failures == 1, "counted on the breaker"
            await eventually(
                lambda: (
                    (i := fleet.get("hung")) is not None
                    and i.link == "probe"
                    and i.status is InstanceStatus.HEALTHY
                ),
                fleet=fleet,
                what="probed and healthy",
            )
            assert fake.instances["hung"].probes > 0
            fake.instances["hung"].silent = False
            await eventually(
                lambda: link_of(runtime, "hung") == "stream",
                timeout=20,
                fleet=fleet,
                what="a working stream again",
            )


async def test_a_target_gone_from_discovery_has_its_stream_closed(tmp_path: Path) -> None:
    async with FakeEmulators(["a", "b"]) as fake, watching(tmp_path, fake) as runtime:
        await eventually(
            lambda: all(link_of(runtime, n) == "stream" for n in "ab"),
            fleet=runtime.fleet,
            what="streams",
        )
        assert fake.instances["b"].feed.subscribers == 1
        write_static(tmp_path / "fleet.yaml", fake, ["a"])
        await eventually(lambda: runtime.fleet.get("b") is None, what="b removed")
        await eventually(lambda: fake.instances["b"].feed.subscribers == 0, what="closed")
        assert fake.instances["a"].feed.subscribers == 1


async def test_polling_only_when_asked(tmp_path: Path) -> None:
    async with (
        FakeEmulators(["p"]) as fake,
        watching(tmp_path, fake, probe_interval=0.1, streaming=False) as runtime,
    ):
        await eventually(lambda: fake.instances["p"].probes >= 3, what="probes")
        assert link_of(runtime, "p") == "probe"
        assert fake.instances["p"].streams_opened == 0


@pytest.mark.parametrize(
    ("header", "bound"), [("5", 15.0), ("0.5", 1.5), (None, 15.0), ("junk", 15.0), ("0", 0.3)]
)
def test_silence_bound_is_a_few_heartbeats(header: str | None, bound: float) -> None:
    assert silence_bound(header) == pytest.approx(bound)
