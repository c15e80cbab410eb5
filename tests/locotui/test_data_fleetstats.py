"""Frame rate by node and accelerator, the fleet SLO and its burn, and the pace ladder."""

from __future__ import annotations

import pytest

from backend.models import InstanceStatus
from locotui.data.fleetstats import (
    burn_rate,
    fleet_slo,
    percentile,
    rates_by_accel,
    rates_by_node,
)
from locotui.data.pace import STEPS, Pace
from tests.support.builders import demo_instances, frozen_model, instance


def entries(spec: list[tuple[str, str, float | None]]) -> list[object]:
    model = frozen_model(
        [instance(name, fps=fps, node=node) for name, node, fps in spec]  # type: ignore[arg-type]
    )
    return list(model.entries.values())


def test_percentile_interpolates() -> None:
    assert percentile([10.0], 10) == 10.0
    assert percentile([0.0, 10.0], 10) == pytest.approx(1.0)
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    with pytest.raises(ValueError):
        percentile([], 10)


def test_one_stuck_guest_is_not_a_slow_node() -> None:
    fleet = entries(
        [("a0", "node-a", 25.0), ("a1", "node-a", 24.0), ("a2", "node-a", 2.0),
         ("b0", "node-b", 6.0), ("b1", "node-b", 7.0), ("b2", "node-b", 5.5),
         ("c0", "node-c", None)]
    )  # fmt: skip
    rows = {g.key: g for g in rates_by_node(fleet, target_fps=10)}
    assert rows["node-a"].median == 24.0 and rows["node-a"].stuck == ("a2",)
    assert rows["node-a"].verdict == "1 stuck"
    assert rows["node-b"].median == 6.0 and rows["node-b"].stuck == ()
    assert rows["node-b"].verdict == "node slow"
    assert rows["node-b"].p10 == pytest.approx(5.6)
    assert rows["node-c"].measured == 0 and rows["node-c"].verdict == "no frame rates"
    # Worst median first, unmeasured last.
    assert [g.key for g in rates_by_node(fleet, 10)] == ["node-b", "node-a", "node-c"]


def test_below_target_without_outliers_and_by_accelerator() -> None:
    fleet = entries([("a0", "node-a", 12.0), ("a1", "node-a", 9.0), ("a2", "node-a", 11.0)])
    (row,) = rates_by_node(fleet, 10)
    assert row.verdict == "1 below target"
    (accel,) = rates_by_accel(fleet, 10)
    assert accel.key == "tcg" and accel.instances == 3


def test_slo_share_state_and_burn() -> None:
    fleet = list(frozen_model(demo_instances(9)).entries.values())
    slo = fleet_slo(fleet, target_fps=10, objective=0.95)
    # healthy at >= 10 fps: not loco-2 (degraded, 4), loco-4 (unhealthy), loco-6 (starting)
    assert (slo.good, slo.total) == (6, 9) and slo.state() == "breached"
    healthy = [e for e in fleet if e.status is InstanceStatus.HEALTHY]
    ok = fleet_slo(healthy, 10, 0.95)
    assert ok.share == 1.0 and ok.state() == "ok" and ok.state(burn_1h=2.0) == "burning"
    assert fleet_slo([], 10, 0.95).state() == "unknown"
    assert burn_rate(1.0, 0.95) == 0.0
    assert burn_rate(0.9, 0.95) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        burn_rate(0.9, 1.0)


def test_pace_steps_faster_and_slower_from_any_start() -> None:
    pace = Pace.starting_at(1.0)
    assert (pace.refresh, pace.pictures) == (0.1, 1.0) and pace.text() == "⟳10/s ▣1s"
    assert pace.faster() and pace.pictures == 0.5
    assert pace.faster() and pace.pictures == 0.2
    assert not pace.faster() and pace.pictures == 0.2  # the fastest
    odd = Pace.starting_at(1.5)  # between two steps: the next one either way
    assert odd.faster() and odd.pictures == 1.0
    odd = Pace.starting_at(1.5)
    assert odd.slower() and (odd.refresh, odd.pictures) == (0.25, 2.0)
    while odd.slower():
        pass
    assert (odd.refresh, odd.pictures) == STEPS[-1] and odd.text() == "⟳1/5s ▣60s"
