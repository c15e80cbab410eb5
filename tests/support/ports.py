"""Free TCP ports and VNC displays for tests that run in parallel."""

from __future__ import annotations

import random
import socket

VNC_BASE = 5900


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_vnc_display() -> int:
    """A display number whose port (5900 + N) is free; random so parallel workers differ."""
    for _ in range(200):
        display = random.randint(100, 3000)
        if _port_free(VNC_BASE + display):
            return display
    raise RuntimeError("no free VNC display found")
