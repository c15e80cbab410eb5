"""The supervisor end to end: real QEMU booting the test image, real VNC, real QMP."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from emulator.testimage import decode_frame_counter
from tests.support.supervisor import (
    make_image,
    qemu_processes_for,
    start_supervisor,
    wait_gone,
)
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("qemu")]


async def counter_at(url: str) -> tuple[int | None, float]:
    """The guest's own frame counter, decoded from a full-size thumbnail, and when."""
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.get(f"{url}/thumbnail.png", params={"width": 1920})
    taken = time.monotonic()
    r.raise_for_status()
    rgba = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    return decode_frame_counter(rgba), taken


async def decoded_counter(url: str) -> tuple[int, float]:
    async def probe() -> tuple[int | None, float]:
        return await counter_at(url)

    value, taken = await wait_until(probe, lambda r: r[0] is not None, 10, what="counter")
    assert value is not None
    return value, taken


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_boots_to_ready_and_serves_everything(tmp_path: Path) -> None:
    image = make_image(tmp_path)
    before = sha256(image)
    sup = start_supervisor(tmp_path, "boot")
    try:
        status = await sup.wait_ready(30)
        assert status["qemu_healthy"] is True
        assert status["video"]["display_active"] is True
        assert (status["video"]["width"], status["video"]["height"]) == (640, 400)
        assert status["qemu"]["pid"] > 0
        assert status["qemu"]["accel"] in ("tcg", "kvm")
        assert status["disk"]["format"] == "raw"
        assert status["disk"]["overlay"].endswith("overlay.qcow2")
        async with httpx.AsyncClient(base_url=sup.url, timeout=5) as client:
            assert (await client.get("/ready")).status_code == 200
            assert (await client.get("/startup")).status_code == 200
            metrics = (await client.get("/metrics")).text
            assert 'loco_emulator_qemu_up{instance="boot"} 1.0' in metrics
            assert "loco_emulator_frames_total" in metrics
            assert "loco_emulator_qmp_latency_seconds_bucket" in metrics
            thumb = await client.get("/thumbnail.png", params={"width": 160})
            assert thumb.headers["content-type"] == "image/png"
            assert Image.open(io.BytesIO(thumb.content)).size == (160, 100)
            bad = await client.get("/thumbnail.png", params={"width": 0})
            assert bad.status_code == 422
        registration = sup.state_dir / "instance.json"
        assert registration.exists()
    finally:
        assert sup.stop() == 0
    assert not (sup.state_dir / "instance.json").exists()
    assert sha256(image) == before, "the base image must never be written"


@pytest.mark.parametrize("fps", [10, 25])
async def test_frame_rate_matches_the_guests_own_counter(tmp_path: Path, fps: int) -> None:
    sup = start_supervisor(tmp_path, f"fps{fps}", image=make_image(tmp_path, fps=fps))
    try:
        await sup.wait_ready(30)
        # Two full sampling bursts must lie inside the estimate's window.
        await sup.wait_status(lambda h: h["video"]["frames_total"] >= 2 * fps, 30, "2 bursts")
        c1, t1 = await decoded_counter(sup.url)
        await asyncio.sleep(8)  # the ground-truth span; the guest counts on its own meanwhile
        c2, t2 = await decoded_counter(sup.url)
        truth = ((c2 - c1) % 65536) / (t2 - t1)
        estimate = (await sup.health())["video"]["estimated_frame_rate"]
        assert truth == pytest.approx(fps, rel=0.1), "the guest itself runs off its rate"
        assert estimate == pytest.approx(truth, rel=0.1)
    finally:
        sup.stop()


async def test_mode_switching_guest_resolution_follows(tmp_path: Path) -> None:
    image = make_image(tmp_path, fps=30, mode_switch=True)
    sup = start_supervisor(tmp_path, "switch", image=image)
    try:
        await sup.wait_status(lambda h: h["video"]["vnc_connected"], 30, "vnc connected")
        seen: set[tuple[int, int]] = set()
        ages: list[float] = []
        end = time.monotonic() + 6
        while time.monotonic() < end:
            video = (await sup.health())["video"]
            if video["width"]:
                seen.add((video["width"], video["height"]))
            if video["last_frame_age_seconds"] is not None:
                ages.append(video["last_frame_age_seconds"])
            await asyncio.sleep(0.1)
        assert {(640, 400), (720, 400)} <= seen
        # The sampler kept receiving frames across every switch: it never hung.
        assert max(ages[len(ages) // 2 :]) < 2.0
        assert (await sup.health())["video"]["vnc_reconnects"] == 0
    finally:
        sup.stop()


async def test_a_still_picture_is_seen_on_the_continuous_connection(tmp_path: Path) -> None:
    """``video.changed_at`` follows every change of the picture: it keeps moving while
    the guest draws, stops when the guest is told to freeze, and moves again after."""
    from datetime import UTC, datetime

    sup = start_supervisor(tmp_path, "still")
    try:
        await sup.wait_ready(30)

        def still_for(h: dict) -> float:
            changed = h["video"]["changed_at"]
            assert changed is not None, "a drawing guest has a last change"
            return (datetime.now(UTC) - datetime.fromisoformat(changed)).total_seconds()

        await sup.wait_status(lambda h: still_for(h) < 1.0, 10, "changing while it draws")
        await sup.freeze_picture()
        frozen = await sup.wait_status(lambda h: still_for(h) > 3.0, 15, "still once frozen")
        await sup.freeze_picture(False)
        drawing = await sup.wait_status(lambda h: still_for(h) < 1.0, 10, "changing again")
        assert drawing["video"]["changed_at"] > frozen["video"]["changed_at"]
        # still_since, the part of it that is news: set while still, null while drawing.
        assert frozen["video"]["still_since"] == frozen["video"]["changed_at"]
        assert drawing["video"]["still_since"] is None
    finally:
        sup.stop()


async def test_killed_qemu_is_restarted_and_ready_again(tmp_path: Path) -> None:
    sup = start_supervisor(tmp_path, "kill9")
    try:
        status = await sup.wait_ready(30)
        old_pid = status["qemu"]["pid"]
        os.kill(old_pid, signal.SIGKILL)
        down = await sup.wait_status(lambda h: not h["qemu"]["running"], 5, "seen dead")
        assert down["overall_status"] == "unhealthy"
        status = await sup.wait_status(
            lambda h: h["overall_status"] == "healthy" and h["qemu"]["pid"] != old_pid,
            30,
            "restarted",
        )
        assert status["qemu"]["restarts"] == 1
        assert "SIGKILL" in status["qemu"]["last_exit"]
    finally:
        sup.stop()


async def test_status_stream_pushes_a_killed_and_a_hung_qemu(tmp_path: Path) -> None:
    """Faults reach an open status stream by themselves: no request asks for them. (How
    fast is measured in bench/bench_backend.py; here only that they arrive.)"""
    from tests.support.sse import SseReader

    sup = start_supervisor(tmp_path, "stream")
    try:
        await sup.wait_ready(30)
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(5, read=10)) as client,
            client.stream("GET", f"{sup.url}/status/stream") as resp,
        ):
            reader = SseReader(resp)

            async def until(accept, deadline: float, what: str) -> dict:
                async with asyncio.timeout(deadline):
                    while True:
                        _, _, data = await reader.next_event(deadline)
                        status = json.loads(data)
                        if accept(status):
                            return status
                raise AssertionError(what)

            first = await until(lambda s: True, 5, "first event")
            assert first["overall_status"] == "healthy" and first["qemu"]["started_at"]
            pid = first["qemu"]["pid"]
            os.kill(pid, signal.SIGKILL)
            dead = await until(lambda s: not s["qemu"]["running"], 5, "QEMU seen dead")
            assert dead["overall_status"] == "unhealthy"
            back = await until(lambda s: s["overall_status"] == "healthy", 30, "restarted")
            pid = back["qemu"]["pid"]
            os.kill(pid, signal.SIGSTOP)
            try:
                hung = await until(lambda s: not s["qemu_healthy"], 10, "QEMU seen hung")
                assert "QMP" in hung["reasons"][0]
            finally:
                os.kill(pid, signal.SIGCONT)
            await until(lambda s: s["overall_status"] == "healthy", 30, "answering again")
    finally:
        sup.stop()


async def test_stopped_qemu_is_unhealthy_then_recovers(tmp_path: Path) -> None:
    sup = start_supervisor(tmp_path, "sigstop")
    try:
        status = await sup.wait_ready(30)
        pid = status["qemu"]["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            hung = await sup.wait_status(lambda h: h["overall_status"] == "unhealthy", 5, "hung")
            assert hung["qemu_healthy"] is False
            assert "QMP" in hung["reasons"][0]
            async with httpx.AsyncClient(timeout=5) as client:
                r = await client.get(f"{sup.url}/ready")
            assert r.status_code == 503
            assert "QMP" in r.json()["reason"]
        finally:
            os.kill(pid, signal.SIGCONT)
        status = await sup.wait_ready(20)
        assert status["qemu"]["pid"] == pid, "a stopped QEMU recovers; it is not replaced"
        assert status["qemu"]["restarts"] == 0
    finally:
        sup.stop()


async def test_reset_restarts_the_guest_and_token_is_enforced(tmp_path: Path) -> None:
    sup = start_supervisor(tmp_path, "reset", token="s3cret-token")
    try:
        await sup.wait_ready(30)
        await sup.wait_status(lambda h: h["qemu"]["uptime_seconds"] > 3, 10, "uptime")
        before, _ = await decoded_counter(sup.url)
        assert before > 30
        async with httpx.AsyncClient(base_url=sup.url, timeout=5) as client:
            assert (await client.post("/reset")).status_code == 401
            wrong = await client.post("/reset", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 403
            assert (await client.post("/restart")).status_code == 401
            ok = await client.post("/reset", headers=sup.auth())
            assert ok.status_code == 200 and ok.json()["ok"] is True

        async def after() -> tuple[int | None, float]:
            return await counter_at(sup.url)

        # The guest boots again and counts from zero: the counter drops below its old value.
        value, _ = await wait_until(
            after, lambda r: r[0] is not None and r[0] < before, 10, what="guest rebooted"
        )
        assert value is not None
        assert "s3cret-token" not in sup.log(), "the token must never be logged"
        assert '"message":"reset"' in sup.log()
    finally:
        sup.stop()


async def test_sigterm_stops_cleanly_and_leaves_no_qemu(tmp_path: Path) -> None:
    sup = start_supervisor(tmp_path, "term")
    await sup.wait_ready(30)
    pids = qemu_processes_for(sup.state_dir)
    assert len(pids) == 1
    assert sup.stop(signal.SIGTERM) == 0
    assert wait_gone(pids) == []
    assert "asked the guest to power down" in sup.log()


async def test_killed_supervisor_takes_qemu_with_it(tmp_path: Path) -> None:
    sup = start_supervisor(tmp_path, "orphan")
    await sup.wait_ready(30)
    pids = qemu_processes_for(sup.state_dir)
    assert len(pids) == 1
    sup.stop(signal.SIGKILL)
    assert wait_gone(pids) == [], "QEMU outlived its supervisor"


async def test_crash_loop_ends_unhealthy_with_the_reason(tmp_path: Path) -> None:
    # A QEMU that boots and then dies a moment later, every time.
    crashing = tmp_path / "qemu-crashing"
    crashing.write_text(
        "#!/bin/sh\n"
        'qemu-system-x86_64 "$@" &\n'
        "pid=$!\n"
        "sleep 0.7\n"
        "kill -9 $pid\n"
        "echo 'guest triple fault (simulated)' >&2\n"
        "exit 3\n"
    )
    crashing.chmod(0o755)
    sup = start_supervisor(
        tmp_path, "loop", env={"LOCO_QEMU_BINARY": str(crashing)}, args=["--max-restarts", "2"]
    )
    try:
        status = await sup.wait_status(lambda h: h["qemu"]["crash_loop"], 30, "crash loop")
        assert status["overall_status"] == "unhealthy"
        assert "exited with status 3" in status["qemu"]["last_exit"]
        assert "triple fault" in status["reasons"][0]
        assert status["qemu"]["restarts"] == 2
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(f"{sup.url}/health")
        assert r.status_code == 503, "liveness fails so the kubelet restarts the pod"
        # It stays given up: no silent restarting behind the operator's back.
        await asyncio.sleep(1.5)
        assert (await sup.health())["qemu"]["restarts"] == 2
    finally:
        sup.stop()
