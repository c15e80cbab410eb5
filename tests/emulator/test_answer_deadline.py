"""The wait for QMP's answer: short while answers are quick, longer when they are not."""

from __future__ import annotations

import pytest

from emulator.answer_deadline import AnswerDeadline


def test_before_any_answer_the_wait_is_the_ceiling() -> None:
    assert AnswerDeadline(0.25, 1.0).limit == 1.0


def test_quick_answers_give_the_floor() -> None:
    d = AnswerDeadline(0.25, 1.0)
    for _ in range(20):
        d.answered(0.0008)
    assert d.limit == 0.25


def test_slow_and_jittery_answers_lengthen_the_wait() -> None:
    d = AnswerDeadline(0.25, 1.0)
    for seconds in (0.05, 0.2, 0.08, 0.3, 0.06, 0.25) * 3:
        d.answered(seconds)
    assert 0.25 < d.limit < 1.0
    for _ in range(100):
        d.answered(2.0)
    assert d.limit == 1.0, "never beyond the ceiling"


def test_a_missed_answer_doubles_the_next_wait_until_one_comes() -> None:
    d = AnswerDeadline(0.25, 1.0)
    d.answered(0.001)
    assert d.limit == 0.25
    d.missed()
    assert d.limit == 0.5
    d.missed()
    d.missed()
    assert d.limit == 1.0
    d.answered(0.001)
    assert d.limit == 0.25


def test_a_new_qemu_starts_afresh() -> None:
    d = AnswerDeadline(0.25, 1.0)
    d.answered(0.001)
    d.missed()
    d.reset()
    assert d.limit == 1.0


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="floor"):
        AnswerDeadline(0.0, 1.0)
    with pytest.raises(ValueError, match="floor"):
        AnswerDeadline(2.0, 1.0)
