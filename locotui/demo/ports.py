"""Free TCP and UDP ports and VNC displays on this machine."""

from __future__ import annotations

import random
import socket

VNC_BASE = 5900


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out; someone may still take it first, so callers that
    start a server on it must handle 'port in use' by asking again."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port the kernel just handed out (for an RTP stream's destination)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_vnc_display(taken: set[int] | None = None) -> int:
    """A display number whose port (5900 + N) is free; random, so concurrent demos and
    test workers rarely try the same one."""
    taken = taken or set()
    for _ in range(500):
        display = random.randint(100, 3000)  # noqa: S311 - spreading, not security
        if display not in taken and port_free(VNC_BASE + display):
            return display
    raise RuntimeError("no free VNC display between 100 and 3000")
