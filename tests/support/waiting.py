"""Deadline-bounded waiting: poll a condition until it holds or time runs out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    deadline: float,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Calls ``probe`` until ``accept`` holds for its result; fails with the last result."""
    end = time.monotonic() + deadline
    last: T | None = None
    last_exc: Exception | None = None
    while time.monotonic() < end:
        try:
            last = await probe()
            last_exc = None
            if accept(last):
                return last
        except Exception as exc:  # the thing being waited for may not be up yet
            last_exc = exc
        await asyncio.sleep(interval)
    raise AssertionError(
        f"{what} not reached within {deadline:.0f} s; last result: {last!r}; "
        f"last error: {last_exc!r}"
    )


def poll_until(
    check: Callable[[], T],
    timeout: float,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
    interval: float = 0.1,
) -> T:
    """Sync twin of :func:`wait_until`: calls ``check`` until it returns something truthy,
    which is returned; fails naming ``what``, the last result or error and, when given,
    ``describe()`` (e.g. the screen)."""
    end = time.monotonic() + timeout
    last: T | None = None
    last_exc: Exception | None = None
    while True:
        try:
            last = check()
            last_exc = None
            if last:
                return last
        except Exception as exc:  # the thing being waited for may not be up yet
            last_exc = exc
        if time.monotonic() > end:
            extra = f"\n{describe()}" if describe is not None else ""
            raise AssertionError(
                f"{what} not reached within {timeout:.0f} s; last result: {last!r}; "
                f"last error: {last_exc!r}{extra}"
            )
        time.sleep(interval)
