"""A real GStreamer RTP receiver for tests and benchmarks: depayloads and decodes the VP8
stream and counts the pictures it decoded, keeping the latest one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from emulator.stream.pipeline import RTP_CAPS  # noqa: E402

Gst.init(None)


@dataclass
class Decoded:
    count: int
    at: float  # time.monotonic() of the latest decoded picture


class RtpReceiver:
    """``udpsrc ! rtpjitterbuffer ! rtpvp8depay ! vp8dec ! videoconvert ! appsink``-like
    counting (a fakesink probe), with the latest picture as RGB bytes when ``keep``."""

    def __init__(
        self,
        port: int,
        payload_type: int = 96,
        keep: bool = False,
        watch: Callable[[int, int, bytes, float], None] | None = None,
    ) -> None:
        """``keep``: hold the latest picture; ``watch(width, height, rgb, at)`` is called
        on GStreamer's thread for every decoded picture (keep it short)."""
        self.port = port
        self.keep = keep or watch is not None
        self.watch = watch
        self.count = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.arrivals: list[float] = []
        self.latest: tuple[int, int, bytes] | None = None  # width, height, RGB
        self._lock = threading.Lock()
        self.pipeline = Gst.parse_launch(
            f'udpsrc address=127.0.0.1 port={port} caps="{RTP_CAPS},payload={payload_type}" '
            "! rtpjitterbuffer latency=20 ! rtpvp8depay ! vp8dec ! videoconvert "
            "! video/x-raw,format=RGB ! fakesink name=sink sync=false"
        )
        sink = self.pipeline.get_by_name("sink")
        sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self._on_picture)

    def _on_picture(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        now = time.monotonic()
        with self._lock:
            self.count += 1
            self.first_at = self.first_at or now
            self.last_at = now
            self.arrivals.append(now)
            if self.keep:
                caps = pad.get_current_caps().get_structure(0)
                buffer = info.get_buffer()
                ok, mapped = buffer.map(Gst.MapFlags.READ)
                if ok:
                    try:
                        data = bytes(mapped.data)
                    finally:
                        buffer.unmap(mapped)
                    self.latest = (caps.get_value("width"), caps.get_value("height"), data)
        if self.watch is not None and self.latest is not None:
            self.watch(*self.latest, now)
        return Gst.PadProbeReturn.OK

    def decoded(self) -> Decoded:
        with self._lock:
            return Decoded(self.count, self.last_at or 0.0)

    def frames_between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for t in self.arrivals if start <= t < end)

    def __enter__(self) -> RtpReceiver:
        self.pipeline.set_state(Gst.State.PLAYING)
        return self

    def __exit__(self, *exc: object) -> None:
        self.pipeline.set_state(Gst.State.NULL)
