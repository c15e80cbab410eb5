"""A supervisor's state directory: checked before use, and owned by one supervisor at a time.

The directory holds the instance's overlay (the guest's disk), the registration file and
the QMP socket. Two supervisors on one directory would overwrite each other's registration
and, with ``--fresh-overlay``, replace the overlay under a running guest. So the first one
takes an exclusive lock on ``supervisor.lock`` and holds it for its lifetime; a second one
fails at once and touches nothing.

The lock is an open file description lock (``F_OFD_SETLK``), not ``flock``, because its
holder can be *asked about* without taking it (``F_OFD_GETLK``): local discovery uses
:func:`owner_alive` to tell a live supervisor from one that died without cleaning up, with
no race against a supervisor starting at that moment and no trust in a pid that may have
been reused or belong to a zombie. The kernel drops the lock when the holder's last
descriptor closes, which happens even on SIGKILL.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from emulator.errors import ExitCode, SupervisorError

LOCK_NAME = "supervisor.lock"
# Below this much free space the overlay cannot even be created (qemu-img writes ~200 KiB).
MIN_FREE_BYTES = 512 * 1024

# struct flock on Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid (pid_t).
_FLOCK = struct.Struct("hhqqi4x")


def _flock(kind: int) -> bytes:
    # l_pid must be 0 for OFD locks; l_len 0 = to the end of the file (the whole file).
    return _FLOCK.pack(kind, os.SEEK_SET, 0, 0, 0)


@dataclass
class StateDirLock:
    """Held for the supervisor's lifetime; :meth:`release` on the way out."""

    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_state_dir(state_dir: Path) -> None:
    """Creates ``state_dir`` if needed and proves it usable, or raises with what to do.

    Every case gets one line and its own exit code: a file in the way or a directory that
    cannot be written to (``STATE_DIR_UNUSABLE``) and no space left (``STATE_DIR_FULL``).
    """
    try:
        if state_dir.exists() and not state_dir.is_dir():
            raise SupervisorError(
                f"state directory {state_dir} is a file, not a directory; give --state-dir a "
                "directory (it is created when missing)",
                ExitCode.STATE_DIR_UNUSABLE,
            )
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unusable(state_dir, exc, "cannot create it") from None
    if os.statvfs(state_dir).f_flag & os.ST_RDONLY:
        raise SupervisorError(
            f"state directory {state_dir} is on a read-only filesystem; give a writable "
            "--state-dir",
            ExitCode.STATE_DIR_UNUSABLE,
        )
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise SupervisorError(
            f"state directory {state_dir} is not writable by this user (uid {os.getuid()}); "
            "fix its owner or mode, or give another --state-dir",
            ExitCode.STATE_DIR_UNUSABLE,
        )
    free = shutil.disk_usage(state_dir).free
    if free < MIN_FREE_BYTES:
        raise SupervisorError(
            f"state directory {state_dir} has only {free} bytes free (at least "
            f"{MIN_FREE_BYTES // 1024} KiB needed for the overlay); free some space",
            ExitCode.STATE_DIR_FULL,
        )


def _unusable(state_dir: Path, exc: OSError, doing: str) -> SupervisorError:
    if exc.errno == errno.ENOSPC:
        return SupervisorError(
            f"state directory {state_dir}: {doing}: no space left on the device; free some space",
            ExitCode.STATE_DIR_FULL,
        )
    hint = {
        errno.EROFS: "it is on a read-only filesystem",
        errno.EACCES: f"permission denied for uid {os.getuid()}",
        errno.ENOTDIR: "a file is in the way on its path",
    }.get(exc.errno or 0, _describe(exc))
    return SupervisorError(
        f"state directory {state_dir}: {doing}: {hint}; give a writable --state-dir",
        ExitCode.STATE_DIR_UNUSABLE,
    )


def state_dir_error(state_dir: Path, exc: OSError, doing: str) -> SupervisorError:
    """The operator's one-line version of an OSError met while writing into the state dir."""
    return _unusable(state_dir, exc, doing)


class AlreadyLocked(Exception):
    """Another process holds the lock; ``holder`` is its pid when it wrote one."""

    def __init__(self, holder: int | None) -> None:
        super().__init__(f"locked by pid {holder}" if holder else "locked")
        self.holder = holder


def take_lock(path: Path) -> int:
    """An exclusive lock on ``path`` (created if needed), held until the returned descriptor
    is closed. Raises :class:`AlreadyLocked` at once when someone else has it, ``OSError``
    when the file cannot be opened. The holder's pid is written into the file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock(fcntl.F_WRLCK))
    except OSError as exc:
        holder = _read_holder(fd)
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise AlreadyLocked(holder) from None
        raise
    # The pid inside is only for messages; ownership is the lock itself.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _read_holder(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None


def lock_state_dir(state_dir: Path) -> StateDirLock:
    """Takes the directory for this process, or raises ``STATE_DIR_IN_USE`` at once."""
    path = state_dir / LOCK_NAME
    try:
        return StateDirLock(path, take_lock(path))
    except AlreadyLocked as exc:
        holder = f" (pid {exc.holder})" if exc.holder else ""
        raise SupervisorError(
            f"state directory {state_dir} is in use by another supervisor{holder}; "
            "stop it first, or give this one its own --state-dir",
            ExitCode.STATE_DIR_IN_USE,
        ) from None
    except OSError as exc:
        raise _unusable(state_dir, exc, f"cannot lock {LOCK_NAME}") from None


def owner_alive(state_dir: Path) -> bool:
    """True while a supervisor holds ``state_dir`` (asks the kernel; takes nothing)."""
    try:
        fd = os.open(state_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        # F_GETLK-style queries need a lock type the caller could take: ask about a write
        # lock, which any existing lock would conflict with. A read-only descriptor may ask.
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock(fcntl.F_WRLCK))
    except OSError:
        return False
    finally:
        os.close(fd)
    return _FLOCK.unpack(answer)[0] != fcntl.F_UNLCK
