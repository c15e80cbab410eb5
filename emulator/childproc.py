"""Child processes: started so that they never outlive their parent, and how they ended."""

from __future__ import annotations

import ctypes
import signal
from collections import deque

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn``: runs in the child before exec and asks the kernel to SIGKILL it when
    its parent dies, so even a supervisor killed with SIGKILL leaves no QEMU behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def describe_exit(returncode: int, stderr_tail: deque[str]) -> str:
    """``killed by SIGKILL`` or ``exited with status 1``, with the last line the process
    said on stderr when there is one (QEMU names its own reason for failing there)."""
    if returncode < 0:
        try:
            what = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            what = f"killed by signal {-returncode}"
    else:
        what = f"exited with status {returncode}"
    if stderr_tail:
        what += f": {stderr_tail[-1]}"
    return what
