"""The VNC sampler against a scripted RFB server: size changes, bells, clipboard, bad data."""

from __future__ import annotations

import asyncio

import pytest

from emulator import vnc
from emulator.vnc import ENC_DESKTOP_SIZE, ENC_RAW, VncSampler
from tests.emulator.rfb_peer import RfbPeer, running
from tests.support.waiting import wait_until


async def next_request(session, deadline: float = 5.0) -> tuple[bool, int, int]:
    return await asyncio.wait_for(session.requests.get(), deadline)


async def test_follows_a_resolution_change_and_ignores_bell_and_clipboard() -> None:
    async with RfbPeer(64, 40) as peer:
        sampler = VncSampler("127.0.0.1", peer.port)
        async with running(sampler):
            session = await asyncio.wait_for(peer.sessions.get(), 5)
            assert await next_request(session) == (False, 64, 40)
            assert ENC_RAW in session.encodings and ENC_DESKTOP_SIZE in session.encodings
            session.frame(64, 40, (0, 0, 255))  # blue-green-red order: red
            await session.writer.drain()
            frame = await asyncio.wait_for(sampler.wait_for_frame(0), 5)
            assert frame.rgb.shape == (40, 64, 3)
            assert tuple(frame.rgb[0, 0]) == (255, 0, 0)
            assert await next_request(session) == (True, 64, 40)

            # asyncvnc would misread these two; the sampler must take them in its stride.
            session.bell()
            session.cut_text("clipboard from the guest")
            # Windows 98 switching mode while booting: a DesktopSize, then the new picture.
            session.desktop_size(80, 50)
            await session.writer.drain()
            assert await next_request(session) == (False, 80, 50)
            session.frame(80, 50, (255, 0, 0))  # blue
            await session.writer.drain()
            frame = await asyncio.wait_for(sampler.wait_for_frame(frame.seq), 5)
            assert frame.rgb.shape == (50, 80, 3)
            assert tuple(frame.rgb[10, 10]) == (0, 0, 255)
            facts = sampler.facts()
            assert (facts.width, facts.height) == (80, 50)
            assert facts.vnc_connected and facts.vnc_reconnects == 0
            assert facts.blank is True and facts.display_active is False, "one colour = blank"

            # A partial update that changes part of the picture makes it non-blank and live.
            session.frame(8, 8, (0, 255, 0), x=8, y=8)
            await session.writer.drain()
            await asyncio.wait_for(sampler.wait_for_frame(frame.seq), 5)
            facts = sampler.facts()
            assert facts.blank is False and facts.display_active is True
            assert peer.connections == 1


async def test_out_of_bounds_rectangle_reconnects_instead_of_hanging() -> None:
    async with RfbPeer(32, 32) as peer:
        sampler = VncSampler("127.0.0.1", peer.port)
        async with running(sampler):
            session = await asyncio.wait_for(peer.sessions.get(), 5)
            await next_request(session)
            session.frame(64, 64, (1, 2, 3))  # larger than the announced framebuffer
            await session.writer.drain()
            second = await asyncio.wait_for(peer.sessions.get(), 5)
            assert await next_request(second) == (False, 32, 32)
            assert "outside the 32x32 framebuffer" in (sampler.last_error or "")
            await wait_until(
                lambda: asyncio.sleep(0, sampler.facts()),
                lambda f: f.vnc_connected and f.vnc_reconnects == 1,
                5,
                what="reconnected",
            )


async def test_quiet_server_gets_full_refresh_requests_then_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Scaled-down timers: the logic is the same at 3.5 s / 10 s.
    monkeypatch.setattr(vnc, "FULL_REFRESH_AFTER", 0.2)
    monkeypatch.setattr(vnc, "DEAD_AFTER", 0.7)
    async with RfbPeer(16, 16) as peer:
        sampler = VncSampler("127.0.0.1", peer.port)
        async with running(sampler):
            session = await asyncio.wait_for(peer.sessions.get(), 5)
            assert await next_request(session) == (False, 16, 16)
            # Nothing is sent: the sampler asks again for a full frame, then gives up.
            assert await next_request(session, 2) == (False, 16, 16)
            await asyncio.wait_for(peer.sessions.get(), 5)
            assert "no VNC update" in (sampler.last_error or "")


async def test_a_refused_password_is_named_as_such() -> None:
    """A server that refuses the VNC password: the sampler says so (not "connection lost")
    and keeps trying, since the password may be fixed while it runs."""
    attempts = 0

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        writer.write(b"RFB 003.008\n")
        await reader.readexactly(12)
        writer.write(bytes([1, 2]))  # one security type: VNC authentication
        await reader.readexactly(1)
        writer.write(bytes(16))  # the challenge
        await reader.readexactly(16)
        writer.write((1).to_bytes(4, "big"))  # failed
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        sampler = VncSampler("127.0.0.1", port, password="wrong")
        async with running(sampler):
            await wait_until(
                lambda: asyncio.sleep(0, sampler.last_error),
                lambda e: e is not None and "authentication failed" in e,
                5,
                what="the refusal named",
            )
            await wait_until(lambda: asyncio.sleep(0, attempts), lambda n: n >= 2, 5)
        assert not sampler.facts().vnc_connected
    finally:
        server.close()
        await server.wait_closed()


async def test_a_still_picture_is_news_once_when_it_stops_and_once_when_it_moves() -> None:
    """``still_since`` appears once the picture has not changed for ``STILL_AFTER`` and
    goes when it changes again; that change pokes the status feed, frames while drawing
    do not (``changed_at`` is a clock)."""
    now = [1000.0]
    pokes = 0

    def poked() -> None:
        nonlocal pokes
        pokes += 1

    async with RfbPeer(16, 16) as peer:
        sampler = VncSampler("127.0.0.1", peer.port, clock=lambda: now[0])
        sampler.on_change = poked
        async with running(sampler):
            session = await asyncio.wait_for(peer.sessions.get(), 5)
            await next_request(session)
            seq = 0

            async def draw(colour: tuple[int, int, int]) -> None:
                nonlocal seq
                session.frame(16, 16, colour)
                await session.writer.drain()
                seq = (await asyncio.wait_for(sampler.wait_for_frame(seq), 5)).seq

            await draw((1, 2, 3))
            first = sampler.facts()
            assert first.changed_at is not None and first.still_since is None
            drawing_pokes = pokes
            for colour in ((4, 5, 6), (7, 8, 9), (1, 2, 3)):
                now[0] += 0.05
                await draw(colour)
            assert sampler.facts().still_since is None
            assert pokes == drawing_pokes, "frames of a drawing guest are not news"
            last = sampler.facts().changed_at

            now[0] += vnc.STILL_AFTER
            still = sampler.facts()
            assert still.still_since == last and still.changed_at == last

            now[0] += 30
            await draw((4, 5, 6))
            moving = sampler.facts()
            assert moving.still_since is None and moving.changed_at is not None
            assert moving.changed_at > last
            assert pokes == drawing_pokes + 1, "drawing again after a still spell is news"
