"""Port-forward framing and copying, against a fake API-server websocket (a real
cluster's port-forward is tested separately, with the cluster tests)."""

from __future__ import annotations

import asyncio

from backend.kube.portforward import DATA, ERROR, ChannelReader, PortForward, data_frame
from tests.support.portforward import EchoPod, header


def test_channel_reader_drops_port_headers_and_reports_errors() -> None:
    r = ChannelReader(5900)
    assert r.feed(header(DATA, 5900)) == (b"", None)
    assert r.feed(header(ERROR, 5900)) == (b"", None)
    assert r.feed(bytes([DATA]) + b"RFB 003.008\n") == (b"RFB 003.008\n", None)
    assert r.feed(bytes([ERROR]) + b"connection refused") == (b"", "connection refused")
    assert r.feed(b"") == (b"", None)
    # Data in the same frame as the header is kept.
    assert ChannelReader(80).feed(header(DATA, 80) + b"hi") == (b"hi", None)
    assert "not 80" in (ChannelReader(80).feed(header(DATA, 81))[1] or "")
    assert data_frame(b"x") == b"\x00x"


async def test_each_connection_is_forwarded_both_ways() -> None:
    pods: list[EchoPod] = []

    async def open_ws() -> EchoPod:
        pods.append(EchoPod(5900))
        return pods[-1]

    forward = PortForward(open_ws, 5900)
    port = await forward.start()
    try:
        for text in (b"hello", b"again"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(text)
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(len(text)), 5) == text.upper()
            writer.close()
            await writer.wait_closed()
        assert forward.connections == 2 and len(pods) == 2
    finally:
        await forward.stop()


async def test_errors_end_the_connection_and_are_kept() -> None:
    async def refused() -> EchoPod:
        return EchoPod(5900, refuse=True)

    forward = PortForward(refused, 5900)
    port = await forward.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the forwarder
        writer.close()
        assert forward.errors == ["dial tcp 127.0.0.1:5900: refused"]
    finally:
        await forward.stop()

    async def forbidden() -> EchoPod:
        raise PermissionError('pods "loco-0" is forbidden: cannot create pods/portforward')

    forward = PortForward(forbidden, 5900)
    port = await forward.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert "forbidden" in forward.errors[0]
    finally:
        await forward.stop()
