"""Buffers a leaky queue dropped, counted with pad probes (the pipeline's fixed queues
and each WebRTC viewer's)."""

from __future__ import annotations

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def buffers_in(info: Gst.PadProbeInfo) -> int:
    """Buffers a probe saw: one, or the length of a buffer list (payloaders send lists)."""
    if info.type & Gst.PadProbeType.BUFFER_LIST:
        return info.get_buffer_list().length()
    return 1


_DATA = Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST


class DropCounter:
    """Buffers a leaky queue dropped: those that went in, less those that came out and
    those still queued. (The ``overrun`` signal says the queue was full, not how many.)"""

    def __init__(self, queue: Gst.Element) -> None:
        self.queue = queue
        self.into = 0
        self.out = 0
        self._dropped = 0
        queue.get_static_pad("sink").add_probe(_DATA, self._count_in)
        queue.get_static_pad("src").add_probe(_DATA, self._count_out)

    def _count_in(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        self.into += buffers_in(info)
        return Gst.PadProbeReturn.OK

    def _count_out(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        self.out += buffers_in(info)
        return Gst.PadProbeReturn.OK

    @property
    def dropped(self) -> int:
        level = self.queue.get_property("current-level-buffers")
        # The three counts are read at slightly different moments; a drop never un-happens.
        self._dropped = max(self._dropped, self.into - self.out - level)
        return self._dropped
