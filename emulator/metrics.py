"""Prometheus metrics of one supervisor, read from its status at scrape time.

A collector that asks the instance for its status keeps every gauge consistent with
``/health`` by construction; only QMP latency is a real histogram, fed by each probe.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    StateSetMetricFamily,
)
from prometheus_client.registry import Collector

from emulator.instance import EmulatorInstance
from emulator.models import OverallStatus, StreamFacts, StreamState


class _StatusCollector(Collector):
    def __init__(self, instance: EmulatorInstance) -> None:
        self.instance = instance

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        st = self.instance.status()
        labels = ["instance"]
        name = [st.instance]

        def gauge(metric: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(metric, doc, labels=labels)
            g.add_metric(name, value)
            return g

        def counter(metric: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(metric, doc, labels=labels)
            c.add_metric(name, value)
            return c

        yield counter(
            "loco_emulator_frames", "Distinct frames observed over VNC", st.video.frames_total
        )
        if st.video.estimated_frame_rate is not None:  # absent until measured, never a fake 0
            yield gauge(
                "loco_emulator_fps",
                "Distinct frames per second the guest draws (sliding window)",
                st.video.estimated_frame_rate,
            )
        yield counter("loco_emulator_qemu_restarts", "Times QEMU was restarted", st.qemu.restarts)
        yield gauge(
            "loco_emulator_qemu_up", "1 when QEMU runs and answers QMP", float(st.qemu_healthy)
        )
        yield gauge(
            "loco_emulator_display_active",
            "1 when live, non-blank frames arrive",
            float(st.video.display_active),
        )
        yield counter("loco_emulator_vnc_reconnects", "VNC reconnections", st.video.vnc_reconnects)
        yield counter(
            "loco_emulator_qemu_hangs", "Times a hung QEMU was killed and restarted", st.qemu.hangs
        )
        yield gauge(
            "loco_emulator_disk_error",
            "1 while the guest is paused on a disk error (full or failing state volume)",
            float(st.qemu.disk_error is not None),
        )
        yield counter(
            "loco_emulator_guest_resumes",
            "Times the guest was resumed after a disk error",
            st.qemu.resumes,
        )
        if st.disk is not None and st.disk.free_bytes is not None:
            yield gauge(
                "loco_emulator_state_free_bytes",
                "Free bytes on the filesystem that holds the overlay",
                st.disk.free_bytes,
            )
        if st.disk is not None and st.disk.overlay_size is not None:
            yield gauge(
                "loco_emulator_overlay_bytes", "Size of the overlay file", st.disk.overlay_size
            )
        if st.video.last_frame_age_seconds is not None:
            yield gauge(
                "loco_emulator_last_frame_age_seconds",
                "Age of the latest VNC update",
                st.video.last_frame_age_seconds,
            )
        if st.stream is not None:
            yield from _stream_metrics(st.stream, st.instance)
        state = StateSetMetricFamily(
            "loco_emulator_health_state", "Overall health status", labels=labels
        )
        state.add_metric(name, {s.value: st.overall_status == s for s in OverallStatus})
        yield state


def _stream_metrics(stream: StreamFacts, instance: str) -> Iterator[object]:
    """The live video stream, when it is on (absent otherwise, like the frame rate)."""

    def family(kind: type, metric: str, doc: str, value: float) -> object:
        m = kind(metric, doc, labels=["instance"])
        m.add_metric([instance], value)
        return m

    playing = StateSetMetricFamily(
        "loco_emulator_stream_state", "State of the video stream", labels=["instance"]
    )
    playing.add_metric([instance], {s.value: stream.state == s for s in StreamState})
    yield playing
    if stream.frames_per_second is not None:
        yield family(
            GaugeMetricFamily,
            "loco_emulator_stream_fps",
            "Encoded frames per second leaving the encoder (measured, sliding window)",
            stream.frames_per_second,
        )
    if stream.bitrate_kbps is not None:
        yield family(
            GaugeMetricFamily,
            "loco_emulator_stream_bitrate_bits",
            "Encoded video bits per second (measured, sliding window)",
            stream.bitrate_kbps * 1000,
        )
    yield family(
        CounterMetricFamily,
        "loco_emulator_stream_frames",
        "Encoded frames sent",
        stream.frames_out,
    )
    dropped = CounterMetricFamily(
        "loco_emulator_stream_dropped",
        "Buffers dropped by the stream's leaky queues, by the stage the queue feeds",
        labels=["instance", "queue"],
    )
    for queue, count in stream.dropped.items():
        dropped.add_metric([instance, queue], count)
    yield dropped
    yield family(
        CounterMetricFamily,
        "loco_emulator_stream_capped_frames",
        "Captured frames held back by the frame-rate cap",
        stream.capped,
    )
    yield family(
        CounterMetricFamily,
        "loco_emulator_stream_restarts",
        "Times the stream pipeline failed and was started again",
        stream.restarts,
    )
    yield family(
        GaugeMetricFamily, "loco_emulator_stream_viewers", "WebRTC viewers now", stream.viewers
    )


def create_registry(instance: EmulatorInstance) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(instance))
    qmp_latency = Histogram(
        "loco_emulator_qmp_latency_seconds",
        "Round trip of the QMP query-status probe",
        ["instance"],
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
        registry=registry,
    ).labels(instance.name)
    instance.supervisor.on_qmp_latency = qmp_latency.observe
    return registry
