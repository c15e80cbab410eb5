"""The VNC link dropped in the middle of a frame, and a guest that keeps changing its
resolution: the sampler reconnects and follows, the instance stays healthy."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from emulator.vnc import VncSampler
from tests.chaos.harness import local_fleet, status_is
from tests.emulator.rfb_peer import RfbPeer, running
from tests.support.supervisor import make_image


async def test_a_connection_dropped_mid_frame_is_reconnected() -> None:
    """Stand-in server: QEMU cannot be made to cut a connection inside a frame on demand."""
    async with RfbPeer(64, 40) as peer:
        sampler = VncSampler("127.0.0.1", peer.port)
        async with running(sampler):
            first = await asyncio.wait_for(peer.sessions.get(), 5)
            first.frame(64, 40, (0, 0, 255))
            await first.writer.drain()
            frame = await asyncio.wait_for(sampler.wait_for_frame(0), 5)
            # Half a frame, then the line goes dead.
            first.writer.write(struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, 64, 40, 0))
            first.writer.write(b"\x00" * (64 * 20 * 4))
            await first.writer.drain()
            first.writer.close()
            second = await asyncio.wait_for(peer.sessions.get(), 10)
            assert sampler.last_error is not None and "Incomplete" in sampler.last_error
            second.frame(64, 40, (255, 0, 0))
            await second.writer.drain()
            frame = await asyncio.wait_for(sampler.wait_for_frame(frame.seq), 5)
            assert tuple(frame.rgb[0, 0]) == (0, 0, 255), "the new picture, not the half one"
            facts = sampler.facts()
            assert facts.vnc_connected and facts.vnc_reconnects == 1


@pytest.mark.slow
@pytest.mark.xdist_group("qemu")
async def test_a_guest_changing_resolution_all_the_time_stays_healthy(tmp_path: Path) -> None:
    image = make_image(tmp_path, fps=30, mode_switch=True)
    async with local_fleet(tmp_path, ["m1"], image=image) as fleet:
        sizes: set[tuple[int, int]] = set()
        for _ in range(40):  # about ten seconds of mode switches, one every second
            await fleet.watch.samples_pass(2)
            inst = fleet.watch.latest["m1"]
            video = inst["health"]["video"]
            sizes.add((video["width"], video["height"]))
            assert inst["status"] == "healthy", inst["status_reason"]
            assert video["last_frame_age_seconds"] < 2, "the picture stalled"
        assert {(640, 400), (720, 400)} <= sizes
        inst, _ = await fleet.watch.until("m1", lambda i: i["fps"] is not None, 10, "a frame rate")
        assert inst["fps"] > 5, "frames counted across the switches (accuracy: tests/emulator)"
        assert status_is("healthy")(inst)
        fleet.watch.assert_none_lost()
