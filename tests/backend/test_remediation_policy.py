"""The remediation ladder as a pure function of history: rungs, budgets, determinism."""

from __future__ import annotations

from backend.remediation.policy import (
    Action,
    Budgets,
    Observation,
    Outcome,
    Policy,
    Rung,
)
from backend.remediation.profiles import PROFILES

# bad_for 10, frozen_for 10, watch_reset 20, watch_restart 30, recovered_for 30
T = PROFILES["testimage"]


def obs(name: str, problem: str | None = None, fps: float | None = 30.0) -> Observation:
    return Observation(name, running=True, problem=problem, fps=fps, profile="testimage")


def run(policy: Policy, until: float, state: dict[str, Observation], start: float = 0.0,
        **kw: bool) -> list[tuple[float, object]]:  # fmt: skip
    """Steps once a second from ``start`` to ``until``; (time, decision) of each decision."""
    out = []
    t = start
    while t <= until:
        for d in policy.step(t, list(state.values()), **kw):
            out.append((t, d))
        t += 1.0
    return out


def test_the_ladder_climbs_one_rung_at_a_time_then_gives_up() -> None:
    policy = Policy()
    state = {"a": obs("a", "guest is paused")}
    got = run(policy, 100, state)
    steps = [(t, d.action, d.outcome, d.rung) for t, d in got]
    assert steps == [
        (T.bad_for, Action.RESET, Outcome.ACTED, Rung.RESET),
        (T.bad_for + T.watch_reset, Action.RESTART, Outcome.ACTED, Rung.RESTART),
        (
            T.bad_for + T.watch_reset + T.watch_restart,
            Action.GIVE_UP,
            Outcome.ACTED,
            Rung.NEEDS_PERSON,
        ),
    ]
    assert policy.needing_a_person() == ["a"]
    assert "guest is paused" in got[-1][1].reason


def test_a_reset_that_works_closes_the_incident() -> None:
    policy = Policy()
    state = {"a": obs("a", "no VNC connection")}
    assert [d.action for _, d in run(policy, T.bad_for, state)] == [Action.RESET]
    state["a"] = obs("a")
    got = run(policy, T.bad_for + 1 + T.recovered_for, state, start=T.bad_for + 1)
    assert [(d.action, d.rung) for _, d in got] == [(Action.RECOVERED, Rung.IDLE)]
    assert policy.case("a").rung is Rung.IDLE


def test_a_short_still_spell_never_resets_a_healthy_guest() -> None:
    policy = Policy()
    # still for 9 s, moving, still again for 9 s: never frozen_for in a row
    state = {"a": obs("a", fps=0.0)}
    assert run(policy, 8, state) == []
    state["a"] = obs("a", fps=30.0)
    assert run(policy, 9, state, start=9) == []
    state["a"] = obs("a", fps=0.0)
    assert run(policy, 18, state, start=10) == []
    # a Windows desktop may hold still for minutes: three are fine there
    win = Policy()
    still = {"w": Observation("w", True, None, 0.0, "win98")}
    assert run(win, PROFILES["win98"].frozen_for - 1, still) == []


def test_a_frozen_guest_is_bad_after_its_profile_allows() -> None:
    policy = Policy()
    got = run(policy, 40, {"a": obs("a", fps=0.0)})
    first = got[0]
    assert first[0] == T.frozen_for + T.bad_for and first[1].action is Action.RESET
    assert "no new frame" in first[1].reason


def test_a_dead_guest_is_not_the_policys_business() -> None:
    policy = Policy()
    dead = {"a": Observation("a", running=False, problem="QEMU is not running", fps=0.0,
                             profile="testimage")}  # fmt: skip
    assert run(policy, 200, dead) == []


def test_a_correlated_failure_acts_on_a_bounded_share_of_the_fleet() -> None:
    policy = Policy(Budgets(max_fraction=0.25))
    state = {f"e{i:02}": obs(f"e{i:02}", "blank screen") for i in range(8)}
    got = run(policy, T.bad_for, state)
    acted = [d.instance for _, d in got if d.outcome is Outcome.ACTED]
    skipped = [d.instance for _, d in got if d.outcome is Outcome.SKIPPED_BUDGET]
    assert acted == ["e00", "e01"], "25 % of 8, in name order"
    assert len(skipped) == 6 and "already in remediation" in got[-1][1].reason
    assert run(policy, T.bad_for + 5, state, start=T.bad_for + 1) == [], "said once"
    # at no moment more than two in remediation
    for t in range(int(T.bad_for) + 1, 300):
        policy.step(float(t), list(state.values()))
        assert policy.in_remediation() <= 2


def test_the_hourly_budget_is_never_exceeded() -> None:
    """An instance that keeps coming back broken: reset, recovers, breaks again..."""
    policy = Policy(Budgets(max_actions_per_hour=2, cooldown=0.0))
    decisions = []
    t = 0.0
    for _ in range(3):  # three incidents within the hour, each mended by a reset
        decisions += run(policy, t + T.bad_for, {"a": obs("a", "degraded")}, start=t)
        t += T.bad_for + 1
        decisions += run(policy, t + T.recovered_for, {"a": obs("a")}, start=t)
        t += T.recovered_for + 1
    kinds = [(d.action, d.outcome) for _, d in decisions]
    assert kinds.count((Action.RESET, Outcome.ACTED)) == 2, "never more than the budget"
    assert (Action.GIVE_UP, Outcome.ACTED) in kinds
    give_up = next(d for _, d in decisions if d.action is Action.GIVE_UP)
    assert "2 actions in the last hour" in give_up.reason


def test_paused_and_dry_run() -> None:
    paused = Policy()
    got = run(paused, 60, {"a": obs("a", "degraded")}, paused=True)
    assert [(d.action, d.outcome) for _, d in got] == [(Action.RESET, Outcome.SKIPPED_PAUSED)]
    assert paused.case("a").rung is Rung.BAD
    dry = Policy()
    got = run(dry, 100, {"a": obs("a", "degraded")}, dry_run=True)
    assert [(d.action, d.outcome) for _, d in got][:2] == [
        (Action.RESET, Outcome.DRY_RUN),
        (Action.RESTART, Outcome.DRY_RUN),
    ]


def test_the_same_history_gives_the_same_decisions() -> None:
    def history() -> list[tuple[float, object]]:
        policy = Policy()
        state = {n: obs(n, "degraded" if n in ("b", "d") else None) for n in "abcde"}
        out = run(policy, 50, state)
        state["b"] = obs("b")
        return out + run(policy, 120, state, start=51)

    assert history() == history()


def down(name: str) -> Observation:
    return Observation(name, running=False, problem="QEMU exited", fps=None, profile="testimage")


def test_a_guest_that_is_not_running_is_left_to_its_supervisor() -> None:
    """Neither good nor bad: no action from idle, and no "recovered" while it restarts."""
    policy = Policy()
    assert run(policy, 100, {"a": down("a")}) == []
    state = {"a": obs("a", "guest is paused")}
    assert [d.action for _, d in run(policy, T.bad_for, state)] == [Action.RESET]
    # The guest reboots and is down for longer than recovered_for: not a recovery.
    got = run(policy, T.bad_for + T.watch_reset - 1, {"a": down("a")}, start=T.bad_for + 1)
    assert got == []
    assert policy.case("a").rung is Rung.RESET


def test_a_guest_that_stays_down_after_an_action_climbs() -> None:
    policy = Policy()
    run(policy, T.bad_for, {"a": obs("a", "guest is paused")})
    got = run(policy, 200, {"a": down("a")}, start=T.bad_for + 1)
    assert [(d.action, d.rung) for _, d in got] == [
        (Action.RESTART, Rung.RESTART),
        (Action.GIVE_UP, Rung.NEEDS_PERSON),
    ]
    assert "not running since the restart" in got[-1][1].reason


def test_a_successor_continues_where_the_leader_stopped() -> None:
    leader = Policy()
    state = {"a": obs("a", "guest is paused"), "b": obs("b")}
    run(leader, T.bad_for + 1, state)
    handed = leader.export()
    assert set(handed) == {"a"}, "only cases on a rung or with actions are handed on"
    successor = Policy()
    assert successor.adopt(handed) == []
    # The successor's next decision is the leader's next one: a restart, not a second reset.
    got = run(successor, 100, state, start=T.bad_for + 2)
    assert [d.action for _, d in got][:1] == [Action.RESTART]
    assert [d.action for _, d in got].count(Action.RESET) == 0
    assert len(successor.case("a").actions) == 2


def test_a_successor_skips_what_it_cannot_read() -> None:
    policy = Policy()
    skipped = policy.adopt(
        {"a": {"rung": "sideways", "since": 1}, "b": {"since": 1}, "c": "nonsense"}  # type: ignore[dict-item]
    )
    assert skipped == ["a", "b", "c"]
    assert policy.cases == {}


def desktop(name: str, still_for: float) -> Observation:
    """A Windows 98 guest whose sampled frame rate reads 0 (its bursts miss the clock)."""
    return Observation(
        name, running=True, problem=None, fps=0.0, profile="win98", still_for=still_for
    )


def test_an_idle_desktop_whose_clock_ticks_is_never_reset() -> None:
    """The taskbar clock redraws once a minute; the sampled rate may read 0 for hours."""
    policy = Policy()
    decisions = []
    for t in range(0, 3 * 3600, 5):
        decisions += policy.step(float(t), [desktop("w", float(t % 60))])
    assert decisions == []


def test_a_desktop_that_stops_changing_is_reset_after_its_profile_allows() -> None:
    w = PROFILES["win98"]
    policy = Policy()
    got = []
    for t in range(0, 600, 5):
        got += [(t, d) for d in policy.step(float(t), [desktop("w", float(t))])]
    first = got[0]
    assert first[1].action is Action.RESET
    assert w.frozen_for + w.bad_for <= first[0] < w.frozen_for + w.bad_for + 5
    assert "no new frame for" in first[1].reason


def test_the_engine_reads_stillness_from_still_since_not_the_changed_at_clock() -> None:
    """``video.changed_at`` is a clock: the instance's copy of it is as old as the last
    event, however busily the guest draws. Only ``still_since`` says the picture stopped."""
    from datetime import UTC, datetime

    from backend.models import Instance, InstanceSource, InstanceStatus
    from backend.remediation.engine import observe
    from emulator.models import EmulatorStatus, OverallStatus, QemuFacts, VideoFacts

    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    now = long_ago.timestamp() + 600

    def seen(video: VideoFacts) -> Observation:
        health = EmulatorStatus(
            instance="a",
            overall_status=OverallStatus.HEALTHY,
            qemu_healthy=True,
            timestamp=long_ago,
            supervisor_uptime_seconds=1,
            qemu=QemuFacts(running=True),
            video=video,
        )
        inst = Instance(
            name="a", source=InstanceSource.LOCAL, status=InstanceStatus.HEALTHY, health=health
        )
        return observe(inst, now)

    assert seen(VideoFacts(changed_at=long_ago)).still_for == 0.0, "drawing"
    still = seen(VideoFacts(changed_at=long_ago, still_since=long_ago))
    assert still.still_for == 600.0
    assert seen(VideoFacts(estimated_frame_rate=0.0)).still_for is None, "no picture yet"
