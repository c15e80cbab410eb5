"""Stream figures: CPU per stream (supervisor and QEMU) at 640x480 and 1024x768, the frame
rate delivered, and glass-to-glass latency.

Latency: the test guest draws its frame counter into the picture. A direct VNC client
here notes when each counter value first appears on QEMU's display; a GStreamer receiver
here decodes the RTP stream and reads the counter from every decoded picture. The
difference per counter value is the stream's latency from QEMU's display to a decoded
picture (capture, conversion, scaling, encoding, RTP, decoding). The VNC reference itself
sees a new picture up to one QEMU refresh (30 ms) after the guest drew it, which the
stream's capture pays too: add up to that for the guest's own drawing.

Run: .venv/bin/python -m bench.bench_stream [--seconds 15]
Prints medians; nothing here is asserted (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.bench_emulator import cpu_seconds
from emulator.testimage import decode_frame_counter
from emulator.vnc import VncSampler
from tests.support.picture import guest_area
from tests.support.ports import free_udp_port
from tests.support.rtp_receiver import RtpReceiver
from tests.support.supervisor import start_supervisor

GUEST = (640, 400)
WARMUP = 5.0


async def reference_view(sampler: VncSampler, seen: dict[int, float], until: float) -> None:
    """Notes when each counter value first shows on QEMU's display (over VNC)."""
    seq = 0
    while time.monotonic() < until:
        try:
            async with asyncio.timeout(2):
                frame = await sampler.wait_for_frame(seq)
        except TimeoutError:
            continue
        seq = frame.seq
        value = decode_frame_counter(frame.rgb)
        if value is not None:
            seen.setdefault(value, frame.captured_at)


async def run(size: tuple[int, int] | None, seconds: float) -> dict[str, float]:
    """One supervisor, streaming at ``size`` (None: not streaming, the baseline)."""
    port = free_udp_port()
    decoded: dict[int, float] = {}

    def on_picture(width: int, height: int, rgb: bytes, at: float) -> None:
        picture = np.frombuffer(rgb, np.uint8)[: width * height * 3].reshape(height, width, 3)
        value = decode_frame_counter(np.ascontiguousarray(guest_area(picture, *GUEST)))
        if value is not None:
            decoded.setdefault(value, at)

    args = []
    if size is not None:
        args = ["--stream", "--stream-dest", f"127.0.0.1:{port}", "--stream-size"]
        args.append(f"{size[0]}x{size[1]}")
    with tempfile.TemporaryDirectory() as tmp:
        sup = start_supervisor(Path(tmp), "bench", args=args)
        sampler = VncSampler("127.0.0.1", sup.vnc_port)
        vnc_task = asyncio.create_task(sampler.run())
        try:
            with RtpReceiver(port, watch=on_picture if size else None) as receiver:
                await sup.wait_ready(60)
                if size is not None:
                    await sup.wait_status(lambda h: h["stream"]["state"] == "playing", 30)
                await asyncio.sleep(WARMUP)
                qemu_pid = sup.qemu_pid()
                assert qemu_pid is not None
                seen: dict[int, float] = {}
                start = time.monotonic()
                cpu0, qemu0 = cpu_seconds(sup.proc.pid), cpu_seconds(qemu_pid)
                frames0 = receiver.decoded().count
                await reference_view(sampler, seen, start + seconds)
                elapsed = time.monotonic() - start
                cpu1, qemu1 = cpu_seconds(sup.proc.pid), cpu_seconds(qemu_pid)
                frames = receiver.decoded().count - frames0
                health = await sup.health()
        finally:
            vnc_task.cancel()
            sup.stop()
    lags = [decoded[c] - seen[c] for c in decoded.keys() & seen.keys()]
    result = {
        "supervisor_cpu": (cpu1 - cpu0) / elapsed * 100,
        "qemu_cpu": (qemu1 - qemu0) / elapsed * 100,
        "received_fps": frames / elapsed,
    }
    if size is not None:
        stream = health["stream"]
        result["reported_fps"] = stream["frames_per_second"] or 0.0
        result["bitrate_kbps"] = stream["bitrate_kbps"] or 0.0
        result["dropped"] = sum(stream["dropped"].values())
    if lags:
        result["latency_ms"] = statistics.median(lags) * 1000
        result["latency_p90_ms"] = statistics.quantiles(lags, n=10)[-1] * 1000
        result["latency_n"] = len(lags)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measuring time per run")
    args = parser.parse_args()
    base = await run(None, args.seconds)
    print(
        f"baseline, no stream: supervisor {base['supervisor_cpu']:.1f} % of a core, "
        f"QEMU {base['qemu_cpu']:.1f} %"
    )
    for size in ((640, 480), (1024, 768)):
        r = await run(size, args.seconds)
        print(
            f"{size[0]}x{size[1]}: supervisor {r['supervisor_cpu']:.1f} % "
            f"(+{r['supervisor_cpu'] - base['supervisor_cpu']:.1f} for the stream), "
            f"QEMU {r['qemu_cpu']:.1f} % (+{r['qemu_cpu'] - base['qemu_cpu']:.1f}); "
            f"{r['received_fps']:.1f} frames/s decoded, {r['reported_fps']:.1f} reported, "
            f"{r['bitrate_kbps']:.0f} kbit/s, {r['dropped']:.0f} dropped"
        )
        if "latency_ms" in r:
            print(
                f"  latency display -> decoded picture: median {r['latency_ms']:.0f} ms, "
                f"p90 {r['latency_p90_ms']:.0f} ms (n={r['latency_n']:.0f})"
            )


if __name__ == "__main__":
    asyncio.run(main())
