"""Circuit breakers: closed → open → half-open → closed, driven by a real target."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from backend.breaker import BreakerOpenError, TargetBreaker
from backend.models import (
    FLEET_EVENT_ADAPTER,
    BreakerInfo,
    BreakerState,
    InstanceEvent,
    InstanceStatus,
)
from backend.runtime import build_runtime
from tests.backend.helpers import settings
from tests.support.fake_emulator import FakeEmulators, write_static
from tests.support.waiting import eventually


async def test_breaker_counts_consecutive_failures_and_reports_retry() -> None:
    changes: list[tuple[BreakerState, int]] = []
    brk = TargetBreaker(
        "t",
        threshold=2,
        reset_seconds=0.3,
        on_change=lambda _n, i: changes.append((i.state, i.failures)),
    )

    async def fail() -> None:
        raise httpx.ConnectError("refused")

    async def succeed() -> str:
        return "ok"

    with pytest.raises(httpx.ConnectError):
        await brk.call(fail)
    assert await brk.call(succeed) == "ok"  # a success resets the count
    assert brk.info().failures == 0
    for _ in range(2):
        with pytest.raises(httpx.ConnectError):
            await brk.call(fail)
    info = brk.info()
    assert info.state is BreakerState.OPEN and info.failures == 2 and info.retry_at is not None
    with pytest.raises(BreakerOpenError) as opened:
        await brk.call(succeed)  # not attempted
    assert 0 < opened.value.retry_after_seconds <= 0.3
    assert (BreakerState.OPEN, 2) in changes


async def test_cancelled_call_is_not_a_failure() -> None:
    brk = TargetBreaker("t", threshold=1, reset_seconds=10)
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(0.2)
        return "done"

    task = asyncio.get_running_loop().create_task(brk.call(slow))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)  # the shielded inner call finishes by itself
    assert brk.state is BreakerState.CLOSED and brk.info().failures == 0


async def test_transitions_with_a_real_target_stopped_and_started(tmp_path: Path) -> None:
    async with FakeEmulators(["e0"]) as fake:
        runtime = build_runtime(
            settings(
                static_config=write_static(tmp_path / "f.yaml", fake),
                breaker_threshold=2,
                breaker_reset=0.4,
                probe_interval=0.05,
            )
        )
        fleet = runtime.fleet
        seen: list[tuple[BreakerState, InstanceStatus, bool]] = []
        seq = 0

        def record() -> None:
            nonlocal seq
            for s, chunk in fleet.events_after(seq) or []:
                seq = s
                data = chunk.decode().split("data: ", 1)[1]
                event = FLEET_EVENT_ADAPTER.validate_json(data)
                if isinstance(event, InstanceEvent):
                    i = event.instance
                    step = (i.breaker.state, i.status, i.stale)
                    if not seen or seen[-1] != step:
                        seen.append(step)

        def state() -> BreakerState | None:
            record()
            inst = fleet.get("e0")
            return inst.breaker.state if inst else None

        def status() -> InstanceStatus | None:
            inst = fleet.get("e0")
            return inst.status if inst else None

        # Every breaker transition, as the breakers report them (the fleet publishes only
        # those that change what an operator sees).
        transitions: list[BreakerState] = []
        report = runtime.breakers._on_change
        assert report is not None

        def spy(name: str, info: BreakerInfo) -> None:
            transitions.append(info.state)
            report(name, info)

        runtime.breakers._on_change = spy
        await runtime.start()
        try:
            await eventually(
                lambda: state() and status() is InstanceStatus.HEALTHY, fleet=fleet, what="healthy"
            )
            await fake.stop()
            await eventually(lambda: state() is BreakerState.OPEN, fleet=fleet, what="open")
            inst = fleet.get("e0")
            assert inst is not None
            assert inst.status is InstanceStatus.UNHEALTHY and inst.stale
            assert inst.health is not None, "last-known health is kept"
            assert "cannot connect" in (inst.last_error or "")
            opened_since = inst.breaker.since
            # While the target stays down, half-open trials fail and it opens again, twice;
            # none of that flickers the instance: still open since the first failure,
            # unhealthy, and no event for the trials themselves.
            events_when_open = len(seen)
            trials = transitions.count(BreakerState.HALF_OPEN) + 2
            await eventually(
                lambda: (
                    transitions.count(BreakerState.HALF_OPEN) >= trials
                    and transitions[-1] is BreakerState.OPEN
                ),
                timeout=5,
                what="two failed half-open trials",
            )
            record()
            assert len(seen) == events_when_open, f"trials changed the view: {seen}"
            again = fleet.get("e0")
            assert again is not None and again.breaker.since == opened_since
            assert again.status is InstanceStatus.UNHEALTHY
            await fake.start()
            await eventually(
                lambda: state() is BreakerState.CLOSED and status() is InstanceStatus.HEALTHY,
                fleet=fleet,
                what="closed again",
            )
            record()
            states = [s for s, _, _ in seen]
            # closed → open → closed as published; closed → open → half_open → closed as lived
            i_open = states.index(BreakerState.OPEN)
            assert BreakerState.CLOSED in states[i_open:]
            assert BreakerState.HALF_OPEN not in states
            i_open = transitions.index(BreakerState.OPEN)
            i_half = transitions.index(BreakerState.HALF_OPEN, i_open)
            assert BreakerState.CLOSED in transitions[i_half:]
            # on the way down: degraded (one failure, last-known data) before unhealthy
            statuses = [st for _, st, _ in seen]
            assert statuses.index(InstanceStatus.DEGRADED) < statuses.index(
                InstanceStatus.UNHEALTHY
            )
            assert any(stale for _, st, stale in seen if st is InstanceStatus.DEGRADED)
            value = runtime.metrics.registry.get_sample_value(
                "loco_backend_circuit_breaker_state",
                {"target": "e0", "loco_backend_circuit_breaker_state": "closed"},
            )
            assert value == 1.0
            final = fleet.get("e0")
            assert final is not None and not final.stale and final.last_error is None
        finally:
            await runtime.stop()
