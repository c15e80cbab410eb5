"""The stream pipeline as data: which elements, in which order, with which queue sizes.

Pure (no GStreamer import), so the shape of the pipeline is tested without running it and
documented in one place; ``emulator.stream.gst`` turns the description into elements.

capture ─q─ convert ─q─ scale+caps ─q─ encode ─q─ payload ─ tee ─q─ udpsink
                                                              └─q─ (one webrtcbin per viewer)

Why each queue is as it is (a queue is also a thread boundary, so each stage gets a core
to itself when there is one):

* Raw frames (before the encoder) are dropped, not waited for: a viewer wants the newest
  picture, and a stage that falls behind must not make the ones before it block on a full
  queue (rfbsrc would then stop reading the VNC socket and QEMU would buffer for it). Two
  frames per queue keep memory bounded (a 1024x768 I420 frame is 1.2 MB) and latency below
  three frame times per stage. ``leaky=downstream`` drops the oldest frame in the queue.
* Encoded frames are never dropped: a lost VP8 inter frame damages every picture up to the
  next key frame. That queue holds a second of video and blocks rather than drops; the
  payloader behind it is fast, so it never fills in practice.
* RTP packets to each destination are dropped when that destination's branch falls
  behind (``leaky=downstream``, 256 packets, about 300 KB): to a receiver that is packet
  loss, which RTP and WebRTC recover from at the next key frame, and one slow viewer does
  not hold up the others or the configured RTP receiver.

The frame rate is capped in front of the first queue (``FrameRateCap`` in
``emulator.stream.gst``), not by ``videorate``: rfbsrc's frames carry no duration, on which
GStreamer 1.22's videorate aborts the whole process (an assertion), and this pipeline runs
inside the supervisor.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

CODEC = "VP8"
RTP_CAPS = "application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000"


@dataclass(frozen=True)
class StreamConfig:
    """What one stream is made of; checked by the settings before it gets here."""

    vnc_host: str
    vnc_port: int
    dest_host: str
    dest_port: int
    width: int = 1024
    height: int = 768
    max_fps: int = 30
    bitrate_kbps: int = 1500
    payload_type: int = 96
    # A key frame at least this often: how long a new viewer, or one that lost packets,
    # waits for a whole picture.
    keyframe_seconds: float = 2.0
    # The RTP stream's SSRC, fixed when the config is made: webrtcbin 1.22 can only offer
    # a stream whose caps name its SSRC before the first packet has flowed.
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))


@dataclass(frozen=True)
class QueueSize:
    """A queue's bounds and what it does when full (GStreamer's ``queue`` properties)."""

    max_buffers: int
    leaky: str  # "no" (block upstream) or "downstream" (drop the oldest)

    def properties(self) -> dict[str, object]:
        # Only the buffer count bounds a queue: the byte and time limits are turned off so
        # that one documented number decides (their defaults, 10 MB and 1 s, would cut in
        # at 1024x768 before the count does).
        return {
            "max-size-buffers": self.max_buffers,
            "max-size-bytes": 0,
            "max-size-time": 0,
            "leaky": self.leaky,
        }


# The queues by the stage they feed; docs/stream.md has this table.
QUEUES: dict[str, QueueSize] = {
    "convert": QueueSize(2, "downstream"),
    "scale": QueueSize(2, "downstream"),
    "encode": QueueSize(2, "downstream"),
    "payload": QueueSize(30, "no"),
    "rtp-out": QueueSize(256, "downstream"),
}
VIEWER_QUEUE = QueueSize(256, "downstream")
# The queues that drop frames by design; their drops are counted and reported, with those
# of the viewers' queues added up under "viewers".
LEAKY_QUEUES = tuple(name for name, q in QUEUES.items() if q.leaky == "downstream")
DROP_COUNTS = (*LEAKY_QUEUES, "viewers")


@dataclass(frozen=True)
class Element:
    factory: str
    name: str
    properties: dict[str, object] = field(default_factory=dict)


def queue(stage: str) -> Element:
    return Element("queue", f"q-{stage}", QUEUES[stage].properties())


def raw_caps(config: StreamConfig) -> str:
    """The picture the encoder gets: the configured size, square pixels (videoscale adds
    borders to keep the guest's aspect ratio), I420 as vp8enc wants it."""
    return (
        f"video/x-raw,format=I420,width={config.width},height={config.height},"
        "pixel-aspect-ratio=1/1"
    )


def rtp_caps(config: StreamConfig) -> str:
    """What the payloader sends, as a WebRTC viewer's codec preference."""
    return f"{RTP_CAPS},payload={config.payload_type},ssrc=(uint){config.ssrc}"


def elements(config: StreamConfig) -> list[Element]:
    """The chain from the VNC display to the tee the outputs hang off, in order."""
    return [
        # shared: the supervisor's own VNC sampler stays connected beside it.
        # incremental=false: with incremental updates rfbsrc 1.22 sends pictures in which
        # only the rectangles changed since it connected are drawn (the rest stays black);
        # whole-screen updates cost QEMU a copy of the screen per frame, on loopback.
        Element(
            "rfbsrc",
            "capture",
            {
                "host": config.vnc_host,
                "port": config.vnc_port,
                "shared": True,
                "incremental": False,
            },
        ),
        queue("convert"),
        Element("videoconvert", "convert"),
        queue("scale"),
        Element("videoscale", "scale"),
        Element("capsfilter", "size", {"caps": raw_caps(config)}),
        queue("encode"),
        Element(
            "vp8enc",
            "encode",
            {
                # Real time: the fastest settings, a constant bitrate for a network link,
                # no frames held back for look-ahead (lag-in-frames 0 is what makes the
                # latency one frame).
                "deadline": 1,
                "cpu-used": 8,
                "end-usage": "cbr",
                "target-bitrate": config.bitrate_kbps * 1000,
                "keyframe-max-dist": max(1, round(config.keyframe_seconds * config.max_fps)),
                "lag-in-frames": 0,
                "error-resilient": "default",
                "threads": 2,
            },
        ),
        queue("payload"),
        # mtu 1200: WebRTC's packets must fit a path MTU with TURN and DTLS on top.
        Element(
            "rtpvp8pay",
            "payload",
            {"pt": config.payload_type, "mtu": 1200, "ssrc": config.ssrc},
        ),
        # allow-not-linked: a tee with no viewer branch yet (or the last one just gone)
        # must not fail the pipeline.
        Element("tee", "out", {"allow-not-linked": True}),
    ]


def rtp_output(config: StreamConfig) -> list[Element]:
    """The branch from the tee to the configured RTP receiver."""
    return [
        queue("rtp-out"),
        Element(
            "udpsink",
            "rtp-sink",
            # sync=false: send as soon as a packet is made; async=false: the sink does not
            # hold the pipeline's state change for a first buffer that may be long coming
            # (a static screen sends nothing).
            {"host": config.dest_host, "port": config.dest_port, "sync": False, "async": False},
        ),
    ]


def describe(config: StreamConfig) -> str:
    """The pipeline in gst-launch syntax, for the log and for people who want to try it."""

    def one(e: Element) -> str:
        props = " ".join(f"{k}={_launch_value(v)}" for k, v in e.properties.items())
        return f"{e.factory} name={e.name}" + (f" {props}" if props else "")

    chain = " ! ".join(one(e) for e in elements(config))
    branch = " ! ".join(one(e) for e in rtp_output(config))
    return f"{chain}  out. ! {branch}"


def _launch_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and ("," in value or " " in value):
        return f'"{value}"'
    return str(value)
