"""The stream end to end: a real supervisor streaming a real QEMU test guest, received and
decoded by a real GStreamer RTP receiver."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.picture import streamed_counter
from tests.support.ports import free_udp_port
from tests.support.rtp_receiver import RtpReceiver
from tests.support.supervisor import SupervisorProcess, make_image, start_supervisor
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("qemu")]

SIZE = (640, 480)


def stream_args(port: int, size: tuple[int, int] = SIZE) -> list[str]:
    dest, geometry = f"127.0.0.1:{port}", f"{size[0]}x{size[1]}"
    return ["--stream", "--stream-dest", dest, "--stream-size", geometry]


@pytest.fixture
def streaming(tmp_path: Path) -> Iterator[tuple[SupervisorProcess, RtpReceiver]]:
    port = free_udp_port()
    sup = start_supervisor(tmp_path, "streamer", args=stream_args(port))
    try:
        with RtpReceiver(port, keep=True) as receiver:
            yield sup, receiver
    finally:
        sup.stop()


async def stream_of(sup: SupervisorProcess) -> dict:
    return (await sup.health())["stream"]


async def report_and_received(sup: SupervisorProcess, receiver: RtpReceiver) -> tuple[dict, float]:
    """The supervisor's stream report and the frames/s the receiver got over the same 5 s
    as the report's window, once 6 s have streamed (so that window is full)."""
    await wait_until(
        lambda: asyncio.sleep(0, receiver.first_at),
        lambda t: t is not None and time.monotonic() - t > 6,
        30,
        what="6 s of stream",
    )
    stream = await stream_of(sup)
    read_at = time.monotonic()
    return stream, receiver.frames_between(read_at - 5.0, read_at) / 5.0


async def frames_arrive(receiver: RtpReceiver, more: int, deadline: float = 30) -> int:
    before = receiver.decoded().count

    async def count() -> int:
        return receiver.decoded().count

    return await wait_until(count, lambda n: n >= before + more, deadline, what="decoded frames")


async def test_the_receiver_decodes_the_guests_picture_and_the_rate_matches(
    streaming: tuple[SupervisorProcess, RtpReceiver],
) -> None:
    sup, receiver = streaming
    await sup.wait_ready(30)
    await frames_arrive(receiver, 30)
    # The pictures are the guest's: its frame counter reads back from the decoded frames.
    assert receiver.latest is not None
    width, height, data = receiver.latest
    assert (width, height) == SIZE
    first = streamed_counter(width, height, data, (640, 400))
    assert first is not None
    await frames_arrive(receiver, 10)
    width, height, data = receiver.latest
    later = streamed_counter(width, height, data, (640, 400))
    assert later is not None and later != first

    # What the supervisor says it sent over its 5 s window, against what arrived in the
    # same 5 s, counted by the receiver (after 6 s of streaming, so the window is full).
    stream, received = await report_and_received(sup, receiver)
    reported = stream["frames_per_second"]
    assert stream["state"] == "playing" and stream["codec"] == "VP8"
    assert reported > 0
    assert abs(received - reported) <= 0.10 * reported, (received, reported)
    assert stream["bitrate_kbps"] > 0
    assert stream["frames_out"] >= receiver.decoded().count * 0.9

    async with httpx.AsyncClient(base_url=sup.url, timeout=5) as client:
        metrics = (await client.get("/metrics")).text
    assert 'loco_emulator_stream_fps{instance="streamer"}' in metrics
    assert 'loco_emulator_stream_dropped_total{instance="streamer",queue="encode"}' in metrics
    assert 'loco_emulator_stream_dropped_total{instance="streamer",queue="viewers"}' in metrics
    assert (
        'loco_emulator_stream_state{instance="streamer",loco_emulator_stream_state="playing"} 1.0'
        in metrics
    )


async def test_a_killed_qemu_takes_the_stream_down_and_both_come_back(
    streaming: tuple[SupervisorProcess, RtpReceiver],
) -> None:
    sup, receiver = streaming
    await sup.wait_ready(30)
    await frames_arrive(receiver, 20)
    pid = sup.qemu_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    stream = await sup.wait_status(
        lambda h: h["stream"]["restarts"] >= 1, 30, "the stream noticed the lost display"
    )
    assert stream["stream"]["last_error"]
    await sup.wait_status(
        lambda h: h["stream"]["state"] == "playing" and h["qemu"]["pid"] != pid, 60, "playing"
    )
    # New pictures, from the new QEMU, reach the receiver.
    await frames_arrive(receiver, 20, 60)


async def test_a_cut_capture_connection_fails_the_pipeline_and_it_is_rebuilt(
    streaming: tuple[SupervisorProcess, RtpReceiver],
) -> None:
    """The pipeline's own failure, with QEMU untouched: the supervisor's connections to
    QEMU's VNC server are cut under it (``ss -K``, which needs CAP_NET_ADMIN)."""
    sup, receiver = streaming
    await sup.wait_status(lambda h: h["stream"]["state"] == "playing", 30, "playing")
    await frames_arrive(receiver, 20)
    pid = sup.qemu_pid()
    cut = subprocess.run(
        ["ss", "-K", "-tn", "state", "established", f"( dport = :{sup.vnc_port} )"],
        capture_output=True,
        text=True,
        check=False,
    )
    if f":{sup.vnc_port}" not in cut.stdout:
        pytest.skip(f"ss -K cannot close sockets here: {cut.stderr.strip()}")
    status = await sup.wait_status(
        lambda h: h["stream"]["restarts"] >= 1, 30, "the stream noticed the cut"
    )
    assert status["stream"]["last_error"]
    status = await sup.wait_status(lambda h: h["stream"]["state"] == "playing", 30, "playing")
    assert status["qemu"]["pid"] == pid and status["qemu"]["restarts"] == 0
    await frames_arrive(receiver, 20)


async def test_a_resolution_change_does_not_stall_the_stream(tmp_path: Path) -> None:
    port = free_udp_port()
    image = make_image(tmp_path, mode_switch=True)
    sup = start_supervisor(tmp_path, "switcher", image=image, args=stream_args(port))
    try:
        with RtpReceiver(port) as receiver:
            await sup.wait_status(
                lambda h: h["stream"]["state"] == "playing", 30, "the stream playing"
            )
            # The guest switches between 720x400 text mode and 640x400 graphics about every
            # second; the stream keeps sending pictures across several switches.
            widths: set[int] = set()
            counts: list[int] = []

            async def through_switches() -> tuple[set[int], list[int]]:
                width = (await sup.health())["video"]["width"]
                if width:
                    widths.add(width)
                counts.append(receiver.decoded().count)
                return widths, counts

            def switched_and_flowing(seen: tuple[set[int], list[int]]) -> bool:
                sizes, numbers = seen
                return len(sizes) >= 2 and len(numbers) > 30 and numbers[-1] > numbers[-30] + 10

            await wait_until(through_switches, switched_and_flowing, 60, 0.1, "switches")
            stream = await stream_of(sup)
            assert stream["restarts"] == 0, stream["last_error"]
            assert stream["state"] == "playing"
    finally:
        sup.stop()


async def test_webrtc_signalling_on_the_supervisor(
    streaming: tuple[SupervisorProcess, RtpReceiver],
) -> None:
    sup, receiver = streaming
    await sup.wait_status(lambda h: h["stream"]["state"] == "playing", 30, "playing")
    async with httpx.AsyncClient(base_url=sup.url, timeout=20) as client:
        offered = await client.post("/stream/viewers")
        assert offered.status_code == 201, offered.text
        offer = offered.json()
        sdp = offer["sdp"]
        # A send-only VP8 track, with its ICE candidates in the offer (no trickle).
        assert offer["type"] == "offer"
        assert "a=sendonly" in sdp and "VP8/90000" in sdp and "a=candidate:" in sdp
        assert (await stream_of(sup))["viewers"] == 1

        bad = await client.put(f"/stream/viewers/{offer['id']}", json={"sdp": "not an sdp!"})
        assert bad.status_code == 400 and "SDP" in bad.json()["error"]
        unknown = await client.put("/stream/viewers/0123456789abcdef", json={"sdp": sdp})
        assert unknown.status_code == 404
        malformed = await client.delete("/stream/viewers/..%2Fhealth")
        assert malformed.status_code in (404, 422)

        assert (await client.delete(f"/stream/viewers/{offer['id']}")).status_code == 204
        assert (await client.delete(f"/stream/viewers/{offer['id']}")).status_code == 404
        assert (await stream_of(sup))["viewers"] == 0

        # A bounded number of viewers per stream.
        ids = []
        for _ in range(4):
            r = await client.post("/stream/viewers")
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        full = await client.post("/stream/viewers")
        assert full.status_code == 429
        for viewer in ids:
            await client.delete(f"/stream/viewers/{viewer}")
    # The RTP output kept flowing meanwhile.
    await frames_arrive(receiver, 10)


async def test_the_frame_rate_cap_holds(tmp_path: Path) -> None:
    port = free_udp_port()
    sup = start_supervisor(tmp_path, "capped", args=[*stream_args(port), "--stream-fps", "10"])
    try:
        with RtpReceiver(port) as receiver:
            await sup.wait_status(lambda h: h["stream"]["state"] == "playing", 30, "playing")
            stream, received = await report_and_received(sup, receiver)
            # The guest draws 30 frames/s: two in three are held back, none beyond the cap.
            assert stream["max_fps"] == 10 and stream["capped"] > 0
            assert 0 < stream["frames_per_second"] <= 10 * 1.05
            assert received <= 10 * 1.1
    finally:
        sup.stop()
