"""Per-target circuit breakers: a thin interface of ours over purgatory.

Why a wrapper: the rest of the backend needs four things purgatory does not say directly —
the state in our wire vocabulary (``closed|open|half_open``), when the state began, the
consecutive failure count, and a callback on every change (for the fleet view and the
Prometheus state metric). Facts about purgatory 3.0.1 that shape this code (PLATFORM.md):
it counts *consecutive* failures; open → half-open happens lazily on the next call after
the reset timeout (so ``retry_at`` is reported, and the caller's next attempt performs the
trial); half-open admits every concurrent call.

Only purgatory's public API is used: the factory, ``async with`` a breaker (an open circuit
refuses on entering, before the block runs) and the listener hook, whose ``state_changed``
events (``purgatory.ContextChanged``) carry the state and the moment it opened. Its
exception type for a refusal and its context object live in internal modules.

Only what the callable *raises* counts as a failure. Callers turn answers that are not the
target's fault (an HTTP 404 for a thumbnail not drawn yet) into return values.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from purgatory import AsyncCircuitBreakerFactory

from backend.models import BreakerInfo, BreakerState

T = TypeVar("T")

_PURGATORY_STATES = {
    "closed": BreakerState.CLOSED,
    "opened": BreakerState.OPEN,
    "half-opened": BreakerState.HALF_OPEN,
}

ChangeCallback = Callable[[str, BreakerInfo], None]


class BreakerOpenError(Exception):
    """The breaker is open: the call was not attempted."""

    def __init__(self, name: str, retry_at: datetime | None) -> None:
        super().__init__(f"circuit for {name} is open")
        self.name = name
        self.retry_at = retry_at

    @property
    def retry_after_seconds(self) -> float:
        if self.retry_at is None:
            return 1.0
        return max(0.0, (self.retry_at - datetime.now(UTC)).total_seconds())


def _consume_exception(task: asyncio.Future[Any]) -> None:
    # The caller may have been cancelled and never see this result; retrieve it so asyncio
    # does not warn "exception was never retrieved".
    if not task.cancelled():
        task.exception()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class TargetBreaker:
    """One breaker for one target (an emulator supervisor or the Kubernetes API)."""

    def __init__(
        self,
        name: str,
        threshold: int,
        reset_seconds: float,
        on_change: ChangeCallback | None = None,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self._on_change = on_change
        # One factory per target: purgatory's in-memory repository has no way to forget a
        # circuit, and targets come and go with pods; dropping the factory drops the state.
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=threshold, default_ttl=reset_seconds
        )
        self._factory.add_listener(self._hook)
        self._breaker: Any = None
        self._state = BreakerState.CLOSED
        self._since = datetime.now(UTC)
        self._open_since: datetime | None = None
        self._opened_at: float | None = None  # purgatory's clock (time.time()) while open
        self._failures = 0

    def _hook(self, name: str, event_name: str, event: Any) -> None:
        if event_name != "state_changed":
            return
        self._opened_at = getattr(event, "opened_at", None)
        state = _PURGATORY_STATES.get(getattr(event, "state", ""), BreakerState.CLOSED)
        if state is not self._state:
            failed_trial = self._state is BreakerState.HALF_OPEN and state is BreakerState.OPEN
            self._state = state
            if state is BreakerState.OPEN and failed_trial and self._open_since is not None:
                # Still the same outage: "open since" keeps its first moment.
                self._since = self._open_since
            else:
                self._since = datetime.now(UTC)
            if state is BreakerState.OPEN:
                self._open_since = self._since
            elif state is BreakerState.CLOSED:
                self._open_since = None
            self._notify()

    def _notify(self) -> None:
        if self._on_change is not None:
            self._on_change(self.name, self.info())

    @property
    def state(self) -> BreakerState:
        return self._state

    def info(self) -> BreakerInfo:
        retry_at = None
        if self._state is BreakerState.OPEN and self._opened_at is not None:
            retry_at = _utc(self._opened_at + self.reset_seconds)
        return BreakerInfo(
            state=self._state, failures=self._failures, since=self._since, retry_at=retry_at
        )

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Runs ``fn`` through the breaker; raises :class:`BreakerOpenError` when open.

        The call runs in its own task, shielded from the caller's cancellation: purgatory
        would count a cancelled call (a client that hung up on a thumbnail, a probe
        cancelled at shutdown) as a failure of the target, which it is not. The inner call
        is bounded by its own timeouts, so the shielded task always ends.
        """
        task = asyncio.ensure_future(self._call(fn))
        task.add_done_callback(_consume_exception)
        return await asyncio.shield(task)

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        if self._breaker is None:
            self._breaker = await self._factory.get_breaker(self.name)
        before = (self._state, self._failures)

        async def counted() -> T:
            # Count inside the breaker's block so that the state-change hook, which fires
            # when the block exits, already reports the new failure count.
            try:
                value = await fn()
            except Exception:
                self._failures += 1
                raise
            self._failures = 0
            return value

        entered = False
        try:
            async with self._breaker:
                entered = True
                result = await counted()
        except Exception:
            if entered:
                raise
            # Refused on entering: the circuit is open (the only way in-memory entry fails).
            raise BreakerOpenError(self.name, self.info().retry_at) from None
        finally:
            # The hook has notified already when the state changed; a changed count alone
            # (a failure while closed, or the reset after one) is notified here.
            if self._state is before[0] and self._failures != before[1]:
                self._notify()
        return result

    async def record_failure(self, exc: Exception) -> None:
        """Counts a failure seen outside a call: a status stream that broke or went silent
        after it had opened (its opening was the call, and succeeded). Nothing is counted
        while the circuit is open."""

        async def failed() -> None:
            raise exc

        with contextlib.suppress(BreakerOpenError, type(exc)):
            await self.call(failed)

    def seconds_until_retry(self) -> float:
        """While open: how long until a call will be let through; else 0."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        opened_at = self._opened_at or time.time()
        return max(0.0, opened_at + self.reset_seconds - time.time())


class BreakerSet:
    """Breakers by key, created on first use, forgotten when their target goes away."""

    def __init__(
        self, threshold: int, reset_seconds: float, on_change: ChangeCallback | None = None
    ) -> None:
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self._on_change = on_change
        self._breakers: dict[str, TargetBreaker] = {}

    def get(self, key: str) -> TargetBreaker:
        brk = self._breakers.get(key)
        if brk is None:
            brk = TargetBreaker(key, self.threshold, self.reset_seconds, self._on_change)
            self._breakers[key] = brk
            brk._notify()  # a new breaker is news too: closed, since now (and its metric)
        return brk

    def peek(self, key: str) -> TargetBreaker | None:
        return self._breakers.get(key)

    def discard(self, key: str) -> None:
        self._breakers.pop(key, None)

    def __len__(self) -> int:
        return len(self._breakers)
