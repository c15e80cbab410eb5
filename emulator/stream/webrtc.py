"""WebRTC viewers of the stream: one ``queue ! webrtcbin`` branch per browser, fed from
the stream's tee, so every viewer gets the one encoding (no encoder per viewer).

Signalling is one round trip each way, without trickle ICE: the supervisor offers (a
send-only VP8 track, with all its ICE candidates once gathering has finished), the
browser answers. webrtcbin makes the offer because it knows the payload type and SSRC the
tee carries; a browser's offer would name its own payload types.

Everything here blocks (GStreamer state changes, waiting for a promise or for ICE
gathering): callers run it off the event loop. GStreamer calls back on its own threads;
the only callback that leaves this module is ``on_gone``, for the caller to hand over.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstSdp, GstVideo, GstWebRTC  # noqa: E402

from emulator.stream.drops import DropCounter  # noqa: E402
from emulator.stream.errors import ViewerError  # noqa: E402
from emulator.stream.pipeline import VIEWER_QUEUE  # noqa: E402

# Each viewer costs a DTLS/SRTP session and its packets, not an encoder; the cap keeps a
# page left open in many tabs from adding up.
MAX_VIEWERS = 4
GATHER_LIMIT = 10.0  # seconds for webrtcbin to make its offer and gather its candidates
ANSWER_LIMIT = 5.0

_CONNECTED = (
    GstWebRTC.WebRTCICEConnectionState.CONNECTED,
    GstWebRTC.WebRTCICEConnectionState.COMPLETED,
)
_GONE = (
    GstWebRTC.WebRTCICEConnectionState.FAILED,
    GstWebRTC.WebRTCICEConnectionState.CLOSED,
)


@dataclass
class Viewer:
    id: str
    queue: Gst.Element
    webrtc: Gst.Element
    tee_pad: Gst.Pad | None = None
    drops: DropCounter | None = None
    gathered: threading.Event = field(default_factory=threading.Event)
    offer: str | None = None
    answered: bool = False
    error: str | None = None


class ViewerHub:
    def __init__(
        self,
        pipeline: Gst.Pipeline,
        tee: Gst.Element,
        encoder: Gst.Element,
        caps: str,
        on_gone: Callable[[str], None],
    ) -> None:
        self.pipeline, self.tee, self.encoder = pipeline, tee, encoder
        self.caps = Gst.Caps.from_string(caps)
        self._on_gone = on_gone
        self._viewers: dict[str, Viewer] = {}
        self._lock = threading.Lock()
        self._dropped_by_gone = 0

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._viewers)

    @property
    def dropped(self) -> int:
        """RTP packets the viewers' queues dropped (a viewer that fell behind), since start."""
        with self._lock:
            current = [v.drops.dropped for v in self._viewers.values() if v.drops is not None]
            return self._dropped_by_gone + sum(current)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._viewers)

    # -- a new viewer ---------------------------------------------------------------------

    def open(self) -> Viewer:
        """Adds a viewer and returns it with webrtcbin's offer (candidates included)."""
        with self._lock:
            if len(self._viewers) >= MAX_VIEWERS:
                raise ViewerError(f"this stream already has {MAX_VIEWERS} viewers", 429)
            viewer_id = secrets.token_hex(8)
            viewer = Viewer(
                viewer_id,
                Gst.ElementFactory.make("queue", f"viewer-queue-{viewer_id}"),
                Gst.ElementFactory.make("webrtcbin", f"viewer-{viewer_id}"),
            )
            self._viewers[viewer_id] = viewer
        try:
            self._attach(viewer)
            if not viewer.gathered.wait(GATHER_LIMIT) or viewer.offer is None:
                raise ViewerError(viewer.error or "WebRTC did not produce an offer in time", 503)
        except Exception:
            self.close(viewer_id)
            raise
        return viewer

    def _attach(self, viewer: Viewer) -> None:
        queue, webrtc = viewer.queue, viewer.webrtc
        for key, value in VIEWER_QUEUE.properties().items():
            queue.set_property(key, value)
        webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipeline.add(queue)
        self.pipeline.add(webrtc)
        viewer.drops = DropCounter(queue)
        if not queue.link(webrtc):
            raise ViewerError("cannot link a viewer to WebRTC")
        transceiver = webrtc.emit("get-transceiver", 0)
        transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        # The caps the tee carries, SSRC included: with them the offer can be made before
        # the branch has seen its first packet.
        transceiver.set_property("codec-preferences", self.caps)
        webrtc.connect("notify::ice-gathering-state", self._gathering, viewer)
        webrtc.connect("notify::ice-connection-state", self._connection, viewer)
        queue.sync_state_with_parent()
        webrtc.sync_state_with_parent()
        viewer.tee_pad = self.tee.request_pad_simple("src_%u")
        if viewer.tee_pad.link(queue.get_static_pad("sink")) != Gst.PadLinkReturn.OK:
            raise ViewerError("cannot link a viewer to the stream")
        promise = Gst.Promise.new_with_change_func(self._offered, viewer)
        webrtc.emit("create-offer", None, promise)

    def _offered(self, promise: Gst.Promise, viewer: Viewer) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            viewer.error = "WebRTC could not make an offer"
            viewer.gathered.set()
            return
        viewer.webrtc.emit("set-local-description", offer, None)

    def _gathering(self, webrtc: Gst.Element, _spec: object, viewer: Viewer) -> None:
        state = webrtc.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            description = webrtc.get_property("local-description")
            if description is not None:
                viewer.offer = description.sdp.as_text()
            viewer.gathered.set()

    def _connection(self, webrtc: Gst.Element, _spec: object, viewer: Viewer) -> None:
        state = webrtc.get_property("ice-connection-state")
        if state in _CONNECTED:
            self.key_frame()
        elif state in _GONE:
            self._on_gone(viewer.id)

    def key_frame(self) -> None:
        """Asks the encoder for a key frame now: a new viewer can show nothing before one,
        and the next scheduled one may be two seconds away."""
        event = GstVideo.video_event_new_upstream_force_key_unit(Gst.CLOCK_TIME_NONE, True, 0)
        self.encoder.get_static_pad("src").send_event(event)

    # -- the browser's answer -------------------------------------------------------------

    def answer(self, viewer_id: str, sdp: str) -> None:
        with self._lock:
            viewer = self._viewers.get(viewer_id)
        if viewer is None:
            raise KeyError(viewer_id)
        if viewer.answered:
            raise ViewerError("this viewer has already answered")
        ok, message = GstSdp.SDPMessage.new_from_text(sdp)
        if ok != GstSdp.SDPResult.OK or message.medias_len() == 0:
            raise ViewerError("the answer is not an SDP description with a media section", 400)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        promise = Gst.Promise.new()
        viewer.webrtc.emit("set-remote-description", answer, promise)
        if promise.wait() != Gst.PromiseResult.REPLIED:
            raise ViewerError("WebRTC did not take the answer")
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            error = reply.get_value("error")
            raise ViewerError(f"WebRTC refused the answer: {error.message}", 400)
        viewer.answered = True

    def waiting(self, viewer_id: str) -> bool:
        """The viewer is still there and has not answered its offer."""
        with self._lock:
            viewer = self._viewers.get(viewer_id)
        return viewer is not None and not viewer.answered

    # -- leaving --------------------------------------------------------------------------

    def close(self, viewer_id: str) -> bool:
        """Takes a viewer's branch out of the running pipeline; False if it was gone."""
        with self._lock:
            viewer = self._viewers.pop(viewer_id, None)
            if viewer is not None and viewer.drops is not None:
                self._dropped_by_gone += viewer.drops.dropped
        if viewer is None:
            return False
        if viewer.tee_pad is not None:
            sink = viewer.queue.get_static_pad("sink")
            viewer.tee_pad.unlink(sink)
            self.tee.release_request_pad(viewer.tee_pad)
        for element in (viewer.webrtc, viewer.queue):
            element.set_state(Gst.State.NULL)
            if element.get_parent() is not None:  # not yet added when _attach failed
                self.pipeline.remove(element)
        return True

    def close_all(self) -> None:
        for viewer_id in self.ids():
            self.close(viewer_id)
