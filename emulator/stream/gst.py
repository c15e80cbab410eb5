"""The stream pipeline, built in-process with GStreamer's Python bindings.

In-process (not a ``gst-launch-1.0`` child) because the supervisor then reads what it
reports straight from the pipeline: bus messages (errors, end of stream, state changes),
the queues' levels, and every encoded frame through a pad probe. PyGObject builds from the
registry against Debian's GStreamer (see pyproject.toml).

Threads: GStreamer streams in its own threads and this module never runs a GLib main loop.
Bus messages are read by one dedicated thread blocking in ``timed_pop_filtered`` and handed
to the caller's callback there (``emulator.stream.owner`` moves them onto the event loop
with ``call_soon_threadsafe``). State changes that may block (connecting to VNC on start,
joining streaming threads on stop) are the caller's to run off the event loop.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402 - require_version must come first

from emulator.stream.drops import DropCounter  # noqa: E402
from emulator.stream.meter import FrameRateCap, RateMeter  # noqa: E402
from emulator.stream.pipeline import (  # noqa: E402
    LEAKY_QUEUES,
    Element,
    StreamConfig,
    elements,
    rtp_caps,
    rtp_output,
)
from emulator.stream.webrtc import ViewerHub  # noqa: E402

Gst.init(None)

_STOP = "loco-stop"
_WATCHED = (
    Gst.MessageType.ERROR
    | Gst.MessageType.EOS
    | Gst.MessageType.WARNING
    | Gst.MessageType.STATE_CHANGED
    | Gst.MessageType.APPLICATION
)


def missing_elements(chain: list[Element]) -> list[str]:
    """The factories of ``chain`` this GStreamer installation lacks."""
    return sorted({e.factory for e in chain if Gst.ElementFactory.find(e.factory) is None})


class PipelineError(Exception):
    """The pipeline could not be built or started; the message says why."""


@dataclass(frozen=True)
class BusEvent:
    """What the bus said, reduced to what the owner acts on."""

    kind: str  # "error", "eos", "warning", "state" or "viewer-gone"
    detail: str


def make(element: Element) -> Gst.Element:
    made = Gst.ElementFactory.make(element.factory, element.name)
    if made is None:
        raise PipelineError(
            f"GStreamer element {element.factory!r} is missing; run 'make setup' "
            "(Debian packages gstreamer1.0-plugins-base, -good, -bad)"
        )
    for key, value in element.properties.items():
        if key == "caps":
            value = Gst.Caps.from_string(str(value))
        made.set_property(key, value)
    return made


def link_chain(pipeline: Gst.Pipeline, chain: list[Element]) -> list[Gst.Element]:
    """Adds the elements to the pipeline and links them in order."""
    made = [make(e) for e in chain]
    for element in made:
        pipeline.add(element)
    for upstream, downstream in itertools.pairwise(made):
        if not upstream.link(downstream):
            raise PipelineError(f"cannot link {upstream.get_name()} to {downstream.get_name()}")
    return made


class RunningPipeline:
    """One pipeline from build to teardown; a failed one is thrown away, never restarted
    in place (a fresh build is the only state known to be clean)."""

    def __init__(self, config: StreamConfig, on_event: Callable[[BusEvent], None]) -> None:
        self.config = config
        self._on_event = on_event
        self.pipeline = Gst.Pipeline.new("stream")
        chain = link_chain(self.pipeline, elements(config))
        branch = link_chain(self.pipeline, rtp_output(config))
        tee = self.pipeline.get_by_name("out")
        if not tee.link(branch[0]):
            raise PipelineError("cannot link the RTP output to the tee")
        self.cap = FrameRateCap(config.max_fps)
        chain[0].get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self._capped)
        self.meter = RateMeter()
        payloader = self.pipeline.get_by_name("payload")
        payloader.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self._encoded)
        self.drops: dict[str, DropCounter | ViewerHub] = {
            name: DropCounter(self.pipeline.get_by_name(f"q-{name}")) for name in LEAKY_QUEUES
        }
        self.viewers = ViewerHub(
            self.pipeline,
            tee,
            self.pipeline.get_by_name("encode"),
            rtp_caps(config),
            # Called on a GStreamer thread; the owner moves it to the event loop.
            lambda viewer_id: on_event(BusEvent("viewer-gone", viewer_id)),
        )
        self.drops["viewers"] = self.viewers
        self.state = "NULL"
        self._bus = self.pipeline.get_bus()
        self._bus_thread = threading.Thread(target=self._read_bus, name="gst-bus", daemon=True)

    def _capped(self, _pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        return Gst.PadProbeReturn.OK if self.cap.admit() else Gst.PadProbeReturn.DROP

    def _encoded(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        self.meter.add(info.get_buffer().get_size())
        return Gst.PadProbeReturn.OK

    # -- blocking: call these from a worker thread --------------------------------------

    def start(self) -> None:
        """Connects to VNC and starts streaming; raises PipelineError with GStreamer's
        reason when it cannot."""
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise PipelineError(self._first_error() or "the pipeline refused to start")
        # After the state change: a refusal's error is still on the bus for the line above.
        self._bus_thread.start()

    def stop(self) -> None:
        """Stops every streaming thread and the bus reader; idempotent."""
        self.viewers.close_all()
        if self._bus_thread.is_alive():
            # Before the state change: a pipeline in NULL flushes its bus, and the message
            # that ends the reader would be thrown away with everything else.
            self._bus.post(
                Gst.Message.new_application(self.pipeline, Gst.Structure.new_empty(_STOP))
            )
            self._bus_thread.join()
        self.pipeline.set_state(Gst.State.NULL)

    # -- the bus --------------------------------------------------------------------------

    def _first_error(self) -> str | None:
        """The error a failed state change posted (the bus thread may not have taken it)."""
        message = self._bus.pop_filtered(Gst.MessageType.ERROR)
        return None if message is None else _error_text(message)

    def _read_bus(self) -> None:
        while True:
            message = self._bus.timed_pop_filtered(Gst.CLOCK_TIME_NONE, _WATCHED)
            if message is None:
                continue
            kind = message.type
            if kind == Gst.MessageType.APPLICATION:
                if message.get_structure().get_name() == _STOP:
                    return
            elif kind == Gst.MessageType.ERROR:
                self._on_event(BusEvent("error", _error_text(message)))
            elif kind == Gst.MessageType.EOS:
                self._on_event(BusEvent("eos", "end of stream (the VNC server closed)"))
            elif kind == Gst.MessageType.WARNING:
                warning, _debug = message.parse_warning()
                self._on_event(BusEvent("warning", f"{message.src.get_name()}: {warning.message}"))
            elif message.src is self.pipeline:
                _old, new, _pending = message.parse_state_changed()
                self.state = Gst.Element.state_get_name(new)
                self._on_event(BusEvent("state", self.state))


def _error_text(message: Gst.Message) -> str:
    error, _debug = message.parse_error()
    return f"{message.src.get_name()}: {error.message}"
