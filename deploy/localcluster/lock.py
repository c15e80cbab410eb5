"""One cluster operation at a time on this host, enforced by the OS (flock).

The lock is held for the duration of ``up`` or ``down``; the kernel drops it when the
holder exits, however it exits, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localcluster.errors import ClusterError


@contextmanager
def exclusive(path: Path, what: str, wait: bool = False) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise ClusterError(
                f"cannot {what}: another command is at work on it ({holder})",
                hint="wait for it to finish, then run this again",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {what}".encode(), 0)
        yield
    finally:
        os.close(fd)
