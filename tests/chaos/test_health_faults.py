"""Supervisors that answer badly: garbage, half an answer, a trickle, an endless or a huge
body, nothing, good and bad in turn. The backend says what is wrong with each, keeps every
instance in view, stays small, and recovers when the answers are good again. Request
bodies sent to the backend are bounded too."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.chaos.bad_peer import BadPeer
from tests.chaos.harness import FleetWatch, status_is
from tests.support.backend import BackendProcess

TOKEN = "chaos-token"

EXPECTED = {
    "garbage": "without a valid health body",
    "truncated": "connection broken",
    "trickle": "no complete answer within 1 s",
    "endless": "over the 1 MiB limit",
    "huge": "over the 1 MiB limit",
    "nothing": "no complete answer within 1 s",
}
# The backend's memory after minutes of this must stay far below what reading a single
# 100 MB answer would take.
RSS_CEILING = 200 * 1024 * 1024


async def test_bad_health_answers_are_named_bounded_and_recovered(tmp_path: Path) -> None:
    names = {mode: mode for mode in [*EXPECTED, "alternating"]}
    async with BadPeer(names) as peer:
        static = tmp_path / "static.json"
        static.write_text(
            json.dumps({"instances": [{"name": n, "health_url": peer.url(n)} for n in names]})
        )
        backend = BackendProcess(
            ["--discovery", "static", "--static-config", str(static)],
            tmp_path / "backend.log",
            token=TOKEN,
        ).start()
        watch = FleetWatch(backend, set(names)).start()
        try:
            for mode, words in EXPECTED.items():
                inst, _ = await watch.until(
                    mode, status_is("unhealthy", words), 20, f"{mode}: unhealthy, saying why"
                )
                assert inst["breaker"]["state"] == "open"
            # Good and bad in turn: never an outage (the breaker counts consecutive
            # failures), but every bad answer is said.
            await watch.samples_pass(20)
            alternating = watch.statuses["alternating"]
            assert "unhealthy" not in alternating and "healthy" in alternating
            assert peer.requests["huge"] >= 2, "the breaker's trials go on"
            assert backend.rss_bytes() < RSS_CEILING
            # A request body to the backend is bounded as well: 20 MB announced, refused
            # before a byte of it is sent (and so before any of it is read).
            reader, writer = await asyncio.open_connection("127.0.0.1", backend.port)
            writer.write(
                b"POST /api/instances/garbage/reset HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                % (TOKEN.encode(), 20 * 1024 * 1024)
            )
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 10)
            writer.close()
            assert status_line.split()[1] == b"413", status_line
            assert backend.rss_bytes() < RSS_CEILING
            for name in names:
                peer.modes[name] = "good"
            for name in names:
                await watch.until(name, status_is("healthy"), 20, f"{name}: recovered")
            watch.assert_none_lost()
            assert watch.errors == 0, "the backend failed to answer its own list"
        finally:
            await watch.stop()
            backend.stop()
