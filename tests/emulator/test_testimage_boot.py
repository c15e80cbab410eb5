"""Boot the test image in real QEMU and check what it draws against the configured rate.

Slow: each test boots qemu-system-x86_64 under TCG for several seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from qemu.qmp import QMPClient

from emulator.testimage import decode_frame_counter, write_test_image
from emulator.testimage.synth import render_frame
from tests.support.ports import free_vnc_display
from tests.support.waiting import GiveUp, eventually

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86_64 is not installed"
    ),
]

QEMU = "qemu-system-x86_64"
BOOT_DEADLINE = 30.0  # s from launch to the first decodable frame (TCG, loaded CI box)
COUNTER_BAND = slice(160, 240)  # rows 0.40-0.60 of a 400-row screen


@dataclass
class Guest:
    proc: subprocess.Popen[bytes]
    qmp: QMPClient
    dump_dir: Path
    shots: int = field(default=0)

    async def screenshot(self) -> tuple[np.ndarray, float]:
        """The screen as RGBA and the host time it was taken (mid-call)."""
        path = self.dump_dir / f"shot{self.shots}.ppm"
        self.shots += 1
        before = time.monotonic()
        await self.qmp.execute("screendump", {"filename": str(path)})
        after = time.monotonic()
        with Image.open(path) as im:
            rgba = np.asarray(im.convert("RGBA"))
        path.unlink()
        return rgba, (before + after) / 2

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    async def first_counter(self) -> int:

        async def counter() -> int | None:
            if self.proc.poll() is not None:
                raise GiveUp("QEMU exited while booting")
            return decode_frame_counter((await self.screenshot())[0])

        found: int = await eventually(
            counter,
            BOOT_DEADLINE,
            "a frame counter on screen after launch",
            interval=0.1,
            accept=lambda c: c is not None,
        )
        return found


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)  # QEMU takes ~2 s to exit on SIGTERM
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def _connect(qmp: QMPClient, sock: Path, proc: subprocess.Popen[bytes]) -> bool:
    """Connect to QEMU's QMP socket; False if QEMU exited first."""

    async def attempt() -> bool | None:
        if proc.poll() is not None:
            return False
        if not sock.exists():
            return None
        await qmp.connect(str(sock))  # refused until QEMU listens: tried again
        return True

    connected: bool = await eventually(
        attempt,
        15,
        "QEMU's QMP socket accepting a connection",
        interval=0.02,
        accept=lambda r: r is not None,
    )
    return connected


@contextlib.asynccontextmanager
async def booted(image: Path, work: Path) -> AsyncIterator[Guest]:
    """Run QEMU on ``image`` and yield it connected over QMP; always kill it afterwards."""
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    sock_dir = Path(tempfile.mkdtemp(prefix="loco-ti-"))
    sock = sock_dir / "qmp.sock"
    errlog = work / "qemu.stderr"
    proc: subprocess.Popen[bytes] | None = None
    qmp: QMPClient | None = None
    try:
        for _attempt in range(5):
            display = free_vnc_display()
            with errlog.open("wb") as err:
                proc = subprocess.Popen(
                    [QEMU, "-accel", "tcg", "-drive", f"file={image},format=raw", "-m", "32",
                     "-display", "none", "-vnc", f"127.0.0.1:{display}",
                     "-qmp", f"unix:{sock},server=on,wait=off"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                )  # fmt: skip
            qmp = QMPClient("test-testimage")
            if await _connect(qmp, sock, proc):
                break
            stderr = errlog.read_text(errors="replace")
            if "Address already in use" not in stderr:  # lost the race for the VNC port
                pytest.fail(f"QEMU exited during start-up: {stderr}")
        else:
            pytest.fail("could not find a free VNC display in 5 attempts")
        yield Guest(proc, qmp, work)
    finally:
        if qmp is not None:
            with contextlib.suppress(Exception):
                await qmp.disconnect()
        if proc is not None:
            _stop(proc)
        shutil.rmtree(sock_dir, ignore_errors=True)


def _unwrap(counters: list[int]) -> np.ndarray:
    # Relative to the first sample, so one misread (a screenshot racing the guest's redraw)
    # stays a single outlier instead of shifting every later sample by 65536.
    return np.array([counters[0] + ((c - counters[0]) % 65536) for c in counters], float)


def _robust_rate(times: list[float], counters: list[int], min_span: float) -> float:
    """Median slope over sample pairs at least ``min_span`` apart (Theil-Sen)."""
    t = np.array(times)
    c = _unwrap(counters)
    i, j = np.triu_indices(len(t), k=1)
    keep = (t[j] - t[i]) >= min_span
    assert keep.sum() >= 10, "too few sample pairs to measure a rate"
    return float(np.median((c[j] - c[i])[keep] / (t[j] - t[i])[keep]))


@pytest.mark.parametrize("fps", [10, 25])
async def test_guest_draws_at_configured_rate(tmp_path: Path, fps: int) -> None:
    image = write_test_image(tmp_path / "guest.img", fps=fps)
    window = 6.0
    async with booted(image, tmp_path) as guest:
        await guest.first_counter()
        cpu_start, wall_start = guest.cpu_seconds(), time.monotonic()
        times: list[float] = []
        counters: list[int] = []
        pictures: list[np.ndarray] = []
        while time.monotonic() - wall_start < window:
            rgba, when = await guest.screenshot()
            counter = decode_frame_counter(rgba)
            assert counter is not None, "a 13h-only guest must always show its counter"
            times.append(when)
            counters.append(counter)
            pictures.append(rgba)
            await asyncio.sleep(0.2)  # sampling pace, not synchronisation
        cpu = (guest.cpu_seconds() - cpu_start) / (time.monotonic() - wall_start)
        assert guest.proc.poll() is None

    rate = _robust_rate(times, counters, min_span=window / 2)
    end_to_end = (_unwrap(counters)[-1] - counters[0]) / (times[-1] - times[0])
    print(
        f"\nfps={fps}: measured {rate:.3f} frames/s (error {100 * (rate / fps - 1):+.2f} %), "
        f"end-to-end {end_to_end:.3f}, QEMU CPU {100 * cpu:.1f} % of a core, "
        f"{len(counters)} samples"
    )
    assert rate == pytest.approx(fps, rel=0.10)
    # hlt in the main loop keeps the guest idle between frames (about 3 % measured).
    assert cpu < 0.5, f"guest burns {100 * cpu:.0f} % of a core: is it spinning?"

    # The counter band is exactly what the documented geometry says ...
    for rgba, counter in zip(pictures, counters, strict=True):
        assert rgba.shape == (400, 640, 4)
        expected = render_frame(counter, "13h")
        assert np.array_equal(rgba[COUNTER_BAND], expected[COUNTER_BAND])
        assert len(np.unique(rgba.view(np.uint32))) > 2  # never one colour
    # ... and the picture also changes outside it from frame to frame.
    first, last = pictures[0].copy(), pictures[-1].copy()
    first[COUNTER_BAND] = last[COUNTER_BAND] = 0
    assert not np.array_equal(first, last)


async def test_mode_switch_guest_alternates_resolution_and_keeps_counting(
    tmp_path: Path,
) -> None:
    fps = 30
    image = write_test_image(tmp_path / "guest.img", fps=fps, mode_switch=True)
    seen: dict[tuple[int, int], list[int]] = {}
    times: list[float] = []
    counters: list[int] = []
    async with booted(image, tmp_path) as guest:
        await guest.first_counter()
        start = time.monotonic()
        # Modes alternate about once a second: both must show up, decoded, well within 8 s;
        # keep sampling for at least 3 s to see several switches.
        while time.monotonic() - start < 8.0:
            rgba, when = await guest.screenshot()
            counter = decode_frame_counter(rgba)
            size = (rgba.shape[1], rgba.shape[0])
            if counter is not None:
                seen.setdefault(size, []).append(counter)
                times.append(when)
                counters.append(counter)
            if len(seen) >= 2 and time.monotonic() - start >= 3.0:
                break
            await asyncio.sleep(0.1)  # sampling pace
        assert guest.proc.poll() is None

    assert set(seen) == {(640, 400), (720, 400)}, f"resolutions seen: {sorted(seen)}"
    rate = _robust_rate(times, counters, min_span=1.0)
    print(
        f"\nmode switch fps={fps}: measured {rate:.3f} frames/s, "
        f"{ {k: len(v) for k, v in seen.items()} } decoded shots per resolution"
    )
    # Mode changes cost a little drawing time, but the counter must keep its pace.
    assert rate == pytest.approx(fps, rel=0.10)
