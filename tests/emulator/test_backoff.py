"""The one backoff every retry loop uses (emulator.backoff)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from emulator import supervisor, vnc
from emulator.backoff import Backoff
from locotui.data import link


def caps(b: Backoff, n: int) -> list[float]:
    return [b.next_delay() for _ in range(n)]


def test_without_jitter_doubles_up_to_the_maximum() -> None:
    assert caps(Backoff(1, 30, jitter=False), 7) == [1, 2, 4, 8, 16, 30, 30]
    assert caps(Backoff(0.5, 2, factor=3, jitter=False), 3) == [0.5, 1.5, 2]


def test_the_loops_keep_their_schedules() -> None:
    """The timings the supervisor and the VNC sampler had before they shared this class."""
    sup = supervisor.Supervisor(["true"], Path("/nonexistent"), "tcg", "x", 1.0)
    restart = [sup.restart_backoff.delay(failures - 1) for failures in range(1, 8)]
    assert restart == [1, 2, 4, 8, 16, 30, 30]

    err = supervisor.DiskError("nospace", None, since=100.0)
    resume = []
    for _ in range(6):
        err.back_off(100.0)
        resume.append(err.next_resume_at - 100.0)
    assert resume == [2, 4, 8, 16, 30, 30]
    assert err.delay == 30

    sampler = Backoff(vnc.BACKOFF_MIN, vnc.BACKOFF_MAX, jitter=False)
    assert caps(sampler, 7) == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])


def test_jitter_draws_between_half_the_cap_and_the_cap_from_the_given_source() -> None:
    b = Backoff(initial=1.0, maximum=8.0, rng=random.Random(7))
    delays = caps(b, 6)
    expected_rng = random.Random(7)
    expected = [expected_rng.uniform(c / 2, c) for c in (1, 2, 4, 8, 8, 8)]
    assert delays == expected  # deterministic with a seeded source
    assert all(c / 2 <= d <= c for d, c in zip(delays, (1, 2, 4, 8, 8, 8), strict=True))


def test_reset_starts_over_and_attempt_counts_failures() -> None:
    b = Backoff(1, 4, jitter=False)
    caps(b, 5)
    assert b.attempt == 5
    b.reset()
    assert b.attempt == 0
    assert b.next_delay() == 1
    assert b.attempt == 1


def test_delay_of_an_attempt_keeps_no_state() -> None:
    b = Backoff(1, 30, jitter=False)
    assert b.delay(3) == 8
    assert b.delay(-1) == 1  # nothing failed yet: the initial wait
    assert b.attempt == 0


def test_a_very_long_outage_stays_at_the_maximum() -> None:
    b = Backoff(0.5, 15, jitter=False)
    assert b.delay(5000) == 15  # 2.0 ** 5000 is past float's range
    jittered = Backoff(0.5, 15, rng=random.Random(1))
    assert 7.5 <= jittered.delay(10**6) <= 15


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": 0}, "initial"),
        ({"initial": 5, "maximum": 1}, "initial <= maximum"),
        ({"factor": 0.5}, "factor"),
    ],
)
def test_nonsense_is_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)


def test_the_console_uses_the_same_class() -> None:
    assert link.Backoff is Backoff
