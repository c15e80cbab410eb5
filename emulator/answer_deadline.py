"""How long to wait for QEMU's answer on QMP before calling it silent.

A hung QEMU is seen when a probe gets no answer in time, so the wait bounds how soon a hang
is news. ``query-status`` answers in under a millisecond on an idle machine, but a loaded
one (two shared cores, a TCG guest, the frame counter's screendumps on the same socket) has
spikes, and a fixed short wait would turn them into false "not answering" alarms. So the
wait follows what this QEMU's answers have taken, the way TCP sets its retransmission
timeout (RFC 6298): a smoothed round trip plus four times its smoothed variation, never
below ``floor`` (the normal case: a few hundred times a normal answer) and never above
``ceiling`` (what a slow machine gets). An answer that did not come doubles the next wait
(RFC 6298's back-off), so a machine that became slow costs one early alarm, not one per
probe.
"""

from __future__ import annotations

FLOOR = 0.25
CEILING = 1.0
# RFC 6298's gains: a new sample moves the smoothed round trip by 1/8, its variation by 1/4.
_ALPHA, _BETA, _K = 1 / 8, 1 / 4, 4


class AnswerDeadline:
    """The wait for the next answer, learned from the round trips of the previous ones."""

    def __init__(self, floor: float = FLOOR, ceiling: float = CEILING) -> None:
        if not 0 < floor <= ceiling:
            raise ValueError("need 0 < floor <= ceiling")
        self.floor, self.ceiling = floor, ceiling
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._backoff = 1.0

    def answered(self, seconds: float) -> None:
        """An answer came after ``seconds``."""
        self._backoff = 1.0
        if self._srtt is None:
            self._srtt, self._rttvar = seconds, seconds / 2
            return
        self._rttvar += _BETA * (abs(self._srtt - seconds) - self._rttvar)
        self._srtt += _ALPHA * (seconds - self._srtt)

    def missed(self) -> None:
        """No answer within :attr:`limit`."""
        self._backoff = min(self._backoff * 2, self.ceiling / self.floor)

    def reset(self) -> None:
        """A new QEMU: what the previous one took says nothing about it."""
        self._srtt, self._rttvar, self._backoff = None, 0.0, 1.0

    @property
    def limit(self) -> float:
        """Seconds to wait for the next answer."""
        if self._srtt is None:
            return self.ceiling
        learned = max(self.floor, self._srtt + _K * self._rttvar)
        return min(self.ceiling, learned * self._backoff)
