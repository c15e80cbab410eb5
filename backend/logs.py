"""Reading an instance's log file: the last N lines, and following it as it grows.

Used for static and local instances (their supervisors log to a file they register). The
tail is read backwards in blocks, so a large log costs only what is returned. Following
checks the file every ``poll`` seconds (the same as ``tail -F``; no inotify dependency)
and copes with rotation (a new inode) and truncation by starting again from the top.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

_BLOCK = 64 * 1024


def tail_lines(path: Path, n: int) -> tuple[list[str], int]:
    """The last ``n`` lines of ``path`` and the file size they end at (blocking)."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        if n <= 0:
            return [], end
        pos = end
        data = b""
        while pos > 0 and data.count(b"\n") <= n:
            step = min(_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.decode("utf-8", errors="replace") for line in lines[-n:]], end


async def follow_lines(
    path: Path, start: int, poll: float = 0.25, max_line: int = 64 * 1024
) -> AsyncIterator[str]:
    """Lines appended to ``path`` after byte offset ``start``; runs until cancelled."""
    offset = start
    inode: int | None = None
    partial = b""
    while True:
        try:
            st = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            await asyncio.sleep(poll)
            continue
        if inode is None:
            inode = st.st_ino
        if st.st_ino != inode or st.st_size < offset:
            # Rotated or truncated: the new content starts at the top of the file.
            inode, offset, partial = st.st_ino, 0, b""
        if st.st_size > offset:
            chunk = await asyncio.to_thread(_read_range, path, offset, st.st_size)
            offset += len(chunk)
            partial += chunk
            *complete, partial = partial.split(b"\n")
            for raw in complete:
                yield raw.decode("utf-8", errors="replace")
            if len(partial) > max_line:  # a runaway line without newline: emit it anyway
                yield partial.decode("utf-8", errors="replace")
                partial = b""
            continue
        await asyncio.sleep(poll)


def _read_range(path: Path, start: int, end: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(start)
        return fh.read(min(end - start, 4 * 1024 * 1024))
