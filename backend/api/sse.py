"""The ``/api/events`` stream: a snapshot, then every change, in order.

Wire format (``text/event-stream``)::

    retry: 2000

    event: snapshot
    id: 41
    data: {"type":"snapshot","seq":41,"fleet":{...InstanceList...}}

    event: instance
    id: 42
    data: {"type":"instance","seq":42,"instance":{...Instance...}}

    : keep-alive

With ``?view=summary`` the snapshot is ``summary_snapshot`` (its ``fleet`` an
``InstanceSummaryList``) and an instance's change is a ``summary`` event (its ``instance``
an ``InstanceSummary``), sent only when the summary changed: a change of the health body
that the overview does not show costs its subscribers nothing. ``removed``, ``discovery``
and ``remediation`` events are the same in both forms.

``id`` (= ``seq``) increases by one per event (the summary form skips the ids of what it
leaves out). A client that was too slow for the bounded
event buffer receives a fresh ``snapshot`` instead of a stream with a hole; a reconnecting
client also starts with a snapshot. Keep-alive comments go out when nothing happened for
``keepalive`` seconds, so proxies and clients can tell a quiet stream from a dead one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from backend.fleet import Fleet
from backend.metrics import BackendMetrics
from emulator.sse import KEEPALIVE, retry


async def fleet_events(
    fleet: Fleet, keepalive: float, metrics: BackendMetrics | None = None, summary: bool = False
) -> AsyncIterator[bytes]:
    """The stream of one subscriber; with ``summary`` in the summary form (module doc)."""
    if metrics is not None:
        metrics.sse_clients.inc()
    try:
        seq, snapshot = fleet.snapshot_event(summary)
        yield retry(2000) + snapshot
        while True:
            events = fleet.events_after(seq, summary)
            if events is None:
                seq, snapshot = fleet.snapshot_event(summary)
                yield snapshot
                continue
            # Up to here everything was looked at, also what the summary form leaves out.
            head = fleet.seq
            if head > seq:
                seq = head
                if events:
                    # One write for a burst (a relist of a big fleet is hundreds of events).
                    yield b"".join(chunk for _, chunk in events)
                continue
            try:
                await asyncio.wait_for(fleet.wait_for_change(seq), keepalive)
            except TimeoutError:
                yield KEEPALIVE
    finally:
        if metrics is not None:
            metrics.sse_clients.dec()


async def line_events(lines: AsyncIterator[str], keepalive: float) -> AsyncIterator[bytes]:
    """Log lines as SSE ``data:`` events (one line each), with keep-alive comments."""
    iterator = lines.__aiter__()
    pending: asyncio.Task[str] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=keepalive)
            if not done:
                yield KEEPALIVE
                continue
            try:
                line = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            yield b"data: " + line.replace("\r", "").encode() + b"\n\n"
    finally:
        if pending is not None:
            pending.cancel()
