"""Deadline-bounded waiting: check a condition until it holds or time runs out.

One deadline loop (:class:`Deadline`) with three faces, so every wait in the suite fails
the same way, naming what was awaited, the last value or error and, when given, a
``describe()`` (e.g. the screen):

* :func:`poll_until` for plain code (sleeps between checks);
* :func:`eventually` for asyncio code: the check may be sync or async, and instead of a
  fixed interval it can wake on something (a fleet's change event);
* :func:`wait_for` inside a Textual Pilot session: lets the app run between checks.

A check that knows waiting longer is pointless (the process it waits for has exited)
raises :class:`GiveUp`, which ends the wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from textual.pilot import Pilot

T = TypeVar("T")

# Whether a check's result is the one awaited (truthiness unless said otherwise).
Accept = Callable[[Any], object]


class GiveUp(Exception):
    """Raised by a check: the condition can no longer come true, stop waiting now."""


class ChangeFeed(Protocol):
    """What :func:`eventually` can wake on: the backend's ``Fleet`` has this shape."""

    @property
    def seq(self) -> int: ...

    async def wait_for_change(self, after: int) -> Any: ...


class Deadline:
    """The core loop's state: the time left, the last result or error, the failure."""

    def __init__(
        self,
        timeout: float,
        what: str,
        accept: Accept = bool,
        describe: Callable[[], str] | None = None,
    ) -> None:
        self.timeout = timeout
        self.what = what
        self.accept = accept
        self.describe = describe
        self.end = time.monotonic() + timeout
        self.last: Any = None
        self.error: BaseException | None = None

    def done(self, value: Any) -> bool:
        """Records a result; whether it is the one awaited."""
        self.last, self.error = value, None
        return bool(self.accept(value))

    def failed(self, error: Exception) -> None:
        """Records an error of the check (what is awaited may not be up yet)."""
        if isinstance(error, GiveUp):
            raise error
        self.error = error

    def remaining(self) -> float:
        """Seconds left; raises the failure once there are none."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.failure()
        return left

    def failure(self) -> AssertionError:
        extra = ""
        if self.describe is not None:
            try:
                extra = f"\n{self.describe()}"
            except Exception as exc:  # a failing description must not hide the failure
                extra = f"\n(describe failed: {exc!r})"
        return AssertionError(
            f"{self.what} not reached within {self.timeout:g} s; "
            f"last result: {_brief(self.last)}; last error: {self.error!r}{extra}"
        )


def _brief(value: Any, limit: int = 1000) -> str:
    # A whole instance or fleet as the last result would bury the rest of the message.
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def poll_until(
    check: Callable[[], T],
    timeout: float,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
    interval: float = 0.1,
    *,
    accept: Accept = bool,
) -> T:
    """Calls ``check`` until its result is accepted (truthy by default) and returns it."""
    deadline = Deadline(timeout, what, accept, describe)
    while True:
        try:
            value = check()
        except Exception as exc:
            deadline.failed(exc)
        else:
            if deadline.done(value):
                return value
        time.sleep(min(deadline.remaining(), interval))


async def eventually(
    check: Callable[[], Any],
    timeout: float = 15.0,
    what: str = "condition",
    *,
    fleet: ChangeFeed | None = None,
    wake: Callable[[float], Awaitable[object]] | None = None,
    interval: float = 0.02,
    accept: Accept = bool,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Awaits ``check`` (sync or async) until its result is accepted and returns it.

    Between checks it sleeps ``interval``, or awaits ``wake(seconds_left)``; with a
    ``fleet`` it wakes on the fleet's next change (re-checking at least every 0.5 s).
    """
    if fleet is not None:
        wake = _changes_of(fleet)
    deadline = Deadline(timeout, what, accept, describe)
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            deadline.failed(exc)
        else:
            if deadline.done(value):
                return value
        left = deadline.remaining()
        if wake is None:
            await asyncio.sleep(min(left, interval))
        else:
            await wake(left)


def _changes_of(fleet: ChangeFeed) -> Callable[[float], Awaitable[object]]:
    async def wake(left: float) -> None:
        # A change can land between the check and this wait: the 0.5 s cap re-checks then.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fleet.wait_for_change(fleet.seq), min(left, 0.5))

    return wake


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    deadline: float,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Awaits ``probe`` until ``accept`` holds for its result (:func:`eventually` with the
    acceptance test first)."""
    value: T = await eventually(probe, deadline, what, interval=interval, accept=accept)
    return value


async def wait_for(
    pilot: Pilot[Any],
    check: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
) -> Any:
    """:func:`eventually` inside a Pilot session: the app runs (``pilot.pause``) between
    checks, so what it draws or fetches can arrive."""

    async def pause(_left: float) -> None:
        await pilot.pause(0.05)

    return await eventually(check, timeout, what, wake=pause, describe=describe)


class Collector:
    """Consumes an async iterator in a task, keeping every item, for deadline-bound asserts."""

    def __init__(self, iterator: AsyncIterator[Any]) -> None:
        self.items: list[Any] = []
        self._it = iterator
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for item in self._it:
            self.items.append(item)

    async def wait(
        self, predicate: Callable[[Any], object], what: str, timeout: float = 10.0
    ) -> Any:
        """The first item (kept so far or arriving within ``timeout``) ``predicate`` accepts."""

        def find() -> Any:
            return next((i for i in self.items if predicate(i)), None)

        return await eventually(find, timeout, what)

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
