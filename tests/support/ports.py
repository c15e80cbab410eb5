"""Free ports for tests: the product's own helpers (the demo needs the same thing)."""

from locotui.demo.ports import VNC_BASE, free_port, free_udp_port, free_vnc_display, port_free

__all__ = ["VNC_BASE", "free_port", "free_udp_port", "free_vnc_display", "port_free"]
