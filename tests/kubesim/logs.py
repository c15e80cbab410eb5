"""Container logs: per container instance, with the previous instance kept for --previous.

A container's log is an in-memory list of timestamped lines. Lines arrive from tests
(``KubeSim.append_log``) or from a file the pod is bound to (a real process's stdout
captured to disk), which a tailer polls; either way ``tailLines``, ``sinceSeconds``,
``timestamps`` and ``follow`` behave identically.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tests.kubesim.objects import rfc3339_nano


@dataclass
class LogLine:
    ts: float
    text: str


@dataclass(eq=False)
class ContainerLog:
    """One container instance's output. ``closed`` once the container has terminated."""

    lines: list[LogLine] = field(default_factory=list)
    closed: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def append(self, text: str, ts: float | None = None) -> None:
        # A write may carry several lines; the kubelet stores them one per line.
        for part in text.splitlines() or [""]:
            self.lines.append(LogLine(time.time() if ts is None else ts, part))
        self._notify()

    def close(self) -> None:
        self.closed = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def select(
        self,
        tail_lines: int | None,
        since: float | None,
        limit_bytes: int | None,
        timestamps: bool,
    ) -> tuple[list[bytes], int]:
        """The formatted lines a non-follow request returns, plus the index reached."""
        lines = self.lines
        start = 0
        if since is not None:
            start = next((i for i, ln in enumerate(lines) if ln.ts >= since), len(lines))
        if tail_lines is not None:
            start = max(start, len(lines) - max(tail_lines, 0))
        out = [_fmt(ln, timestamps) for ln in lines[start:]]
        if limit_bytes is not None:
            out = _limit(out, limit_bytes)
        return out, len(lines)

    async def follow(
        self,
        tail_lines: int | None,
        since: float | None,
        timestamps: bool,
        limit_bytes: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Existing lines (per tail/since), then new ones as appended, until the container ends."""
        first, pos = self.select(tail_lines, since, None, timestamps)
        budget = limit_bytes
        for chunk in first:
            chunk, budget = _spend(chunk, budget)
            yield chunk
            if budget == 0:
                return
        while True:
            if pos < len(self.lines):
                for ln in self.lines[pos:]:
                    chunk, budget = _spend(_fmt(ln, timestamps), budget)
                    yield chunk
                    if budget == 0:
                        return
                pos = len(self.lines)
                continue
            if self.closed:
                return
            await self._changed.wait()


def _fmt(line: LogLine, timestamps: bool) -> bytes:
    prefix = f"{rfc3339_nano(line.ts)} " if timestamps else ""
    return f"{prefix}{line.text}\n".encode()


def _limit(chunks: list[bytes], limit: int) -> list[bytes]:
    out: list[bytes] = []
    budget: int | None = limit
    for c in chunks:
        c, budget = _spend(c, budget)
        out.append(c)
        if budget == 0:
            break
    return out


def _spend(chunk: bytes, budget: int | None) -> tuple[bytes, int | None]:
    if budget is None:
        return chunk, None
    chunk = chunk[:budget]
    return chunk, budget - len(chunk)


@dataclass(eq=False)
class PodLogs:
    """Logs of one pod instance (one uid): current and previous instance per container."""

    current: dict[str, ContainerLog] = field(default_factory=dict)
    previous: dict[str, ContainerLog] = field(default_factory=dict)

    def container(self, name: str) -> ContainerLog:
        return self.current.setdefault(name, ContainerLog())

    def restart(self, name: str) -> None:
        """The container exited and the kubelet started a new instance of it."""
        old = self.container(name)
        old.close()
        self.previous[name] = old
        self.current[name] = ContainerLog()

    def close(self) -> None:
        for log in self.current.values():
            log.close()


class FileTailer:
    """Polls a file and appends complete new lines to a container log.

    Polling (not inotify) keeps it portable and is cheap at the default 50 ms. A file that
    shrinks or is replaced (new inode) is read again from its start, as a process
    restarted by a test usually truncates or recreates its log.
    """

    def __init__(
        self,
        path: str,
        log: ContainerLog,
        period: float,
        offset: int = 0,
        inode: int | None = None,
    ) -> None:
        self.path = path
        self.log = log
        self.period = period
        # Where to resume: a new container instance continues where the previous one's
        # output ended, so nothing the restarted process writes in between is lost.
        self.offset = offset
        self.inode = inode
        self._partial = b""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.poll()  # whatever the process wrote before the container ended still counts
        if self._partial:
            # The runtime writes a final unterminated line out as a line when the container ends.
            self.log.append(self._partial.decode("utf-8", errors="replace"))
            self._partial = b""

    def poll(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if (self.inode is not None and st.st_ino != self.inode) or st.st_size < self.offset:
            self.offset, self._partial = 0, b""
        self.inode = st.st_ino
        if st.st_size <= self.offset:
            return
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(st.st_size - self.offset)
        except OSError:
            return
        self.offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        for raw in complete:
            self.log.append(raw.decode("utf-8", errors="replace").rstrip("\r"))

    async def _run(self) -> None:
        while not self.log.closed:
            self.poll()
            await asyncio.sleep(self.period)
