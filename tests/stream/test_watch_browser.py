"""The watch page in a real browser: headless Chromium plays each instance's live stream
over WebRTC, relayed by a real backend from real supervisors running the test guest."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from emulator.testimage import decode_frame_counter
from tests.support.backend import BackendProcess
from tests.support.browser import chromium, video_picture, video_state
from tests.support.picture import guest_area
from tests.support.ports import free_udp_port
from tests.support.supervisor import SupervisorProcess, start_supervisor
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("qemu")]

GUEST = (640, 400)


def streamer(tmp: Path, name: str) -> SupervisorProcess:
    args = ["--stream", "--stream-dest", f"127.0.0.1:{free_udp_port()}"]
    return start_supervisor(tmp, name, args=[*args, "--stream-size", "640x480"])


async def thumbnail_counter(sup: SupervisorProcess) -> int | None:
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.get(f"{sup.url}/thumbnail.png", params={"width": GUEST[0]})
    rgb = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
    return decode_frame_counter(rgb)


def page_counter(driver) -> int | None:  # type: ignore[no-untyped-def]
    picture = video_picture(driver)
    if picture is None:
        return None
    return decode_frame_counter(np.ascontiguousarray(guest_area(picture, *GUEST)))


async def test_each_page_plays_its_own_instance_live(tmp_path: Path) -> None:
    still, moving = streamer(tmp_path, "still"), streamer(tmp_path, "moving")
    backend = None
    try:
        backend = BackendProcess(
            ["--discovery", "local", "--local-dir", str(tmp_path)], tmp_path / "backend.log"
        ).start()
        for sup in (still, moving):
            await sup.wait_status(lambda h: (h.get("stream") or {}).get("state") == "playing", 40)
        # One guest stops drawing: its counter stays at one value, the other's runs on.
        await still.freeze_picture()
        first = await wait_until(
            lambda: thumbnail_counter(still), lambda c: c is not None, 10, what="a counter"
        )
        frozen = await wait_until(
            lambda: thumbnail_counter(still), lambda c: c == first, 10, what="a still counter"
        )

        with chromium() as driver:
            pages = {}
            for i, sup in enumerate((still, moving)):
                if i:
                    driver.switch_to.new_window("window")
                driver.get(f"{backend.url}/watch/{sup.name}")
                pages[sup.name] = driver.current_window_handle

            async def on(name: str, probe):  # type: ignore[no-untyped-def]
                driver.switch_to.window(pages[name])
                return probe(driver)

            for name in pages:
                # The browser decodes frames, and keeps decoding.
                state = await wait_until(
                    lambda n=name: on(n, video_state),
                    lambda s: s["frames"] > 10 and s["width"] == 640,
                    40,
                    what=f"{name}: decoded frames",
                )
                await wait_until(
                    lambda n=name: on(n, video_state),
                    lambda s, before=state["frames"]: s["frames"] > before + 10,
                    30,
                    what=f"{name}: more decoded frames",
                )
            # The still instance's page shows exactly its picture ...
            await wait_until(
                lambda: on("still", page_counter), lambda c: c == frozen, 20, what="still page"
            )
            # ... and the other page another, live one.
            seen = await wait_until(
                lambda: on("moving", page_counter),
                lambda c: c is not None and c != frozen,
                20,
                what="moving page",
            )
            await wait_until(
                lambda: on("moving", page_counter),
                lambda c: c is not None and c not in (frozen, seen),
                20,
                what="moving page, later",
            )
            for sup in (still, moving):
                assert (await sup.health())["stream"]["viewers"] == 1
    finally:
        if backend is not None:
            backend.stop()
        for sup in (still, moving):
            sup.stop()


async def test_the_page_of_an_unknown_instance_is_404_and_stream_errors_are_named(
    tmp_path: Path,
) -> None:
    plain = start_supervisor(tmp_path, "plain")  # no --stream
    backend = None
    try:
        backend = BackendProcess(
            ["--discovery", "local", "--local-dir", str(tmp_path)], tmp_path / "backend.log"
        ).start()
        await plain.wait_ready(30)
        async with httpx.AsyncClient(base_url=backend.url, timeout=20) as client:
            await wait_until(
                lambda: client.get("/api/instances/plain"),
                lambda r: r.status_code == 200,
                20,
                what="the backend knows the instance",
            )
            page = await client.get("/watch/plain")
            assert page.status_code == 200
            assert 'data-instance="plain"' in page.text
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert (await client.get("/watch/nobody")).status_code == 404
            offer = await client.post("/api/instances/plain/stream/viewers")
            assert offer.status_code == 404
            assert "does not stream" in offer.json()["message"]
            bad = await client.put(
                "/api/instances/plain/stream/viewers/not-an-id", json={"sdp": "v=0 ........"}
            )
            assert bad.status_code == 422
    finally:
        if backend is not None:
            backend.stop()
        plain.stop()
