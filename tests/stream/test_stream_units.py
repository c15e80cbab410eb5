"""The stream's pure pieces: the pipeline's shape, its settings, rates, the frame-rate cap,
and the owner's restarts, driven by a stand-in pipeline (the real one is in
test_stream_qemu.py)."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from emulator.cli import _parser, settings_from
from emulator.errors import ExitCode, SettingsError
from emulator.models import StreamState
from emulator.stream import owner as owner_module
from emulator.stream.meter import FrameRateCap, RateMeter
from emulator.stream.owner import StreamOwner
from emulator.stream.pipeline import (
    LEAKY_QUEUES,
    QUEUES,
    StreamConfig,
    describe,
    elements,
    rtp_output,
)
from tests.support.waiting import wait_until

CONFIG = StreamConfig("127.0.0.1", 5901, "10.0.0.9", 5004, 640, 480, max_fps=20, bitrate_kbps=900)


# ------------------------------------------------------------------------ the pipeline


def test_stages_in_order_with_a_queue_before_each_worker() -> None:
    chain = [e.factory for e in elements(CONFIG)]
    assert chain == [
        "rfbsrc", "queue", "videoconvert", "queue", "videoscale", "capsfilter", "queue",
        "vp8enc", "queue", "rtpvp8pay", "tee",
    ]  # fmt: skip
    assert [e.factory for e in rtp_output(CONFIG)] == ["queue", "udpsink"]


def test_queue_sizes_are_explicit_and_only_raw_frames_and_packets_are_dropped() -> None:
    for element in [*elements(CONFIG), *rtp_output(CONFIG)]:
        if element.factory != "queue":
            continue
        props = element.properties
        assert props["max-size-buffers"] > 0
        assert props["max-size-bytes"] == 0 and props["max-size-time"] == 0
    # Encoded frames are never dropped: a lost inter frame damages every picture after it.
    assert QUEUES["payload"].leaky == "no"
    assert set(LEAKY_QUEUES) == {"convert", "scale", "encode", "rtp-out"}


def test_size_fps_bitrate_destination_and_codec_come_from_the_config() -> None:
    by_name = {e.name: e for e in [*elements(CONFIG), *rtp_output(CONFIG)]}
    caps = str(by_name["size"].properties["caps"])
    assert "width=640" in caps and "height=480" in caps and "pixel-aspect-ratio=1/1" in caps
    assert by_name["encode"].factory == "vp8enc"
    assert by_name["encode"].properties["target-bitrate"] == 900_000
    assert by_name["encode"].properties["keyframe-max-dist"] == 40  # 2 s at 20 frames/s
    assert by_name["payload"].factory == "rtpvp8pay"
    assert by_name["rtp-sink"].properties["host"] == "10.0.0.9"
    assert by_name["rtp-sink"].properties["port"] == 5004
    assert by_name["capture"].properties["port"] == 5901
    text = describe(CONFIG)
    assert "vp8enc" in text and "264" not in text


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--stream-size", "1024x768", ("stream_size", (1024, 768))),
        ("--stream-dest", "10.1.2.3:5004", ("stream_dest", ("10.1.2.3", 5004))),
        ("--stream-fps", "15", ("stream_fps", 15)),
        ("--stream-bitrate", "800", ("stream_bitrate", 800)),
    ],
)
def test_stream_settings_from_flags(flag: str, value: str, expected: tuple[str, object]) -> None:
    args = _parser().parse_args(["run", "--disk", "d", "--state-dir", "/s", flag, value])
    settings = settings_from(args, {})
    assert getattr(settings, expected[0]) == expected[1]
    assert settings.stream is False


def test_stream_settings_from_the_environment() -> None:
    args = _parser().parse_args(["run", "--disk", "d", "--state-dir", "/s"])
    settings = settings_from(args, {"LOCO_STREAM": "1", "LOCO_STREAM_SIZE": "800x600"})
    assert settings.stream is True and settings.stream_size == (800, 600)


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [
        ("--stream-size", "1023x768", "even numbers"),
        ("--stream-size", "big", "WIDTHxHEIGHT"),
        ("--stream-dest", "nowhere", "HOST:PORT"),
        ("--stream-dest", "h:70000", "HOST:PORT"),
        ("--stream-fps", "0", "between 1 and 60"),
        ("--stream-bitrate", "lots", "kbit/s"),
    ],
)
def test_bad_stream_settings_say_what_is_wrong(flag: str, value: str, said: str) -> None:
    args = _parser().parse_args(["run", "--disk", "d", "--state-dir", "/s", flag, value])
    with pytest.raises(SettingsError, match=said):
        settings_from(args, {})


# ------------------------------------------------------------------------ rates


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_meter_counts_what_came_out_over_its_window() -> None:
    clock = Clock()
    meter = RateMeter(window=5.0, clock=clock)
    assert meter.rate() is None
    for _ in range(100):  # 10 s at 10 frames/s of 1000 bytes
        clock.now += 0.1
        meter.add(1000)
    assert meter.rate() == pytest.approx(10.0, rel=0.03)
    assert meter.bits_per_second() == pytest.approx(80_000, rel=0.03)
    assert meter.count == 100 and meter.total_bytes == 100_000
    clock.now += 6  # nothing for longer than the window
    assert meter.rate() == 0.0


def test_frame_rate_cap_passes_at_most_the_cap_and_everything_below_it() -> None:
    clock = Clock()
    cap = FrameRateCap(10, clock=clock)
    passed = 0
    for _ in range(300):  # 10 s at 30 frames/s
        clock.now += 1 / 30
        passed += cap.admit()
    assert 100 <= passed <= 102 and cap.dropped == 300 - passed
    slow = FrameRateCap(30, clock=clock)
    for step in itertools.islice(itertools.cycle([0.02, 0.05]), 100):  # uneven, ~29/s
        clock.now += step
        assert slow.admit()


# ------------------------------------------------------------------------ the owner


class FakeCounter:
    def __init__(self) -> None:
        self.dropped = 0


class FakeViewers:
    count = 0


class FakePipeline:
    """Stands in for RunningPipeline: its bus is the ``emit`` the owner handed it."""

    made: list[FakePipeline] = []

    def __init__(self, config: StreamConfig, emit: Callable[[object], None]) -> None:
        self.emit = emit
        self.meter = RateMeter()
        self.drops = {name: FakeCounter() for name in LEAKY_QUEUES}
        self.cap = FakeCounter()
        self.viewers = FakeViewers()
        self.started = self.stopped = False
        FakePipeline.made.append(self)

    def start(self) -> None:
        if FakePipeline.made.index(self) == 0 and FakePipeline.refuse_first:
            raise RuntimeError("capture: Could not connect to VNC server")
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def say(self, kind: str, detail: str) -> None:
        self.emit(type("Event", (), {"kind": kind, "detail": detail})())

    refuse_first = False


@pytest.fixture
def fake_pipelines(monkeypatch: pytest.MonkeyPatch) -> list[FakePipeline]:
    FakePipeline.made = []
    FakePipeline.refuse_first = False
    monkeypatch.setattr(owner_module, "BACKOFF_MIN", 0.01)
    monkeypatch.setattr(owner_module, "WATCH_EVERY", 0.02)
    return FakePipeline.made


def make_owner(changed_at: Callable[[], float | None] = lambda: None) -> StreamOwner:
    async def drawing() -> None:
        return None

    owner = StreamOwner(CONFIG, FakePipeline, drawing, changed_at)
    owner.backoff.initial = owner.backoff.maximum = 0.01
    return owner


async def started(made: list[FakePipeline], count: int) -> FakePipeline:
    async def latest() -> FakePipeline | None:
        return made[count - 1] if len(made) >= count and made[count - 1].started else None

    pipe = await wait_until(latest, lambda p: p is not None, 5, 0.01, f"pipeline {count}")
    assert pipe is not None
    return pipe


async def test_an_error_on_the_bus_restarts_the_pipeline_and_totals_survive(
    fake_pipelines: list[FakePipeline],
) -> None:
    owner = make_owner()
    task = asyncio.create_task(owner.run())
    try:
        first = await started(fake_pipelines, 1)
        first.say("state", "PLAYING")
        for _ in range(5):
            first.meter.add(100)
        first.drops["encode"].dropped = 3
        await wait_until(
            lambda: asyncio.sleep(0, owner.facts()), lambda f: f.state == "playing", 5, 0.01
        )
        first.say("error", "capture: VNC connection lost")
        second = await started(fake_pipelines, 2)
        assert first.stopped
        second.meter.add(100)
        facts = owner.facts()
        assert facts.restarts == 1
        assert facts.last_error == "capture: VNC connection lost"
        assert facts.frames_out == 6
        assert facts.dropped["encode"] == 3
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert fake_pipelines[-1].stopped
    assert owner.facts().state is not StreamState.PLAYING


async def test_the_status_hears_of_every_change_of_state_at_once(
    fake_pipelines: list[FakePipeline],
) -> None:
    """The supervisor's status stream is poked on each change of the stream's state, so it
    does not wait for its periodic recheck to send it."""
    owner = make_owner()
    seen: list[tuple[str, str, str | None]] = []
    owner.on_change = lambda: seen.append((owner.state, owner.pipeline_state, owner.last_error))
    task = asyncio.create_task(owner.run())
    try:
        first = await started(fake_pipelines, 1)
        first.say("state", "PLAYING")
        await wait_until(
            lambda: asyncio.sleep(0, list(seen)), lambda s: ("playing", "PLAYING", None) in s, 5
        )
        seen.clear()
        first.say("error", "capture: VNC connection lost")
        await started(fake_pipelines, 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert ("playing", "NULL", None) in seen, "the pipeline stopped"
    assert any(e == "capture: VNC connection lost" for _, _, e in seen), "why, at once"
    assert any(state == "restarting" for state, _, _ in seen)
    assert any(state == "starting" for state, _, _ in seen)


async def test_a_pipeline_that_cannot_start_is_retried(fake_pipelines: list[FakePipeline]) -> None:
    FakePipeline.refuse_first = True
    owner = make_owner()
    task = asyncio.create_task(owner.run())
    try:
        await started(fake_pipelines, 2)
        assert owner.restarts == 1
        assert "Could not connect" in (owner.last_error or "")
        assert fake_pipelines[0].stopped
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_stall_while_the_picture_changes_restarts_but_a_still_picture_does_not(
    fake_pipelines: list[FakePipeline],
) -> None:
    changed: list[float | None] = [None]
    asked = [0]

    def changed_at() -> float | None:
        asked[0] += 1
        return changed[0]

    owner = make_owner(changed_at)
    task = asyncio.create_task(owner.run())
    try:
        first = await started(fake_pipelines, 1)
        first.say("state", "PLAYING")
        first.meter.add(100)
        await wait_until(lambda: asyncio.sleep(0, owner.state), lambda s: s == "playing", 5, 0.01)
        # A still picture: it last changed before the stream's last frame.
        changed[0] = owner._wall() - 60
        seen = asked[0]
        await wait_until(lambda: asyncio.sleep(0, asked[0]), lambda n: n >= seen + 3, 5, 0.01)
        assert len(fake_pipelines) == 1
        # The picture moves on while the stream sends nothing.
        changed[0] = owner._wall() + owner_module.STALL_AFTER + 1
        await started(fake_pipelines, 2)
        assert (owner.last_error or "").startswith("stalled")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_a_missing_gstreamer_element_stops_the_start_with_what_to_install(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "no-plugins"
    empty.mkdir()
    env = {
        **os.environ,
        "GST_PLUGIN_SYSTEM_PATH_1_0": str(empty),
        "GST_PLUGIN_PATH_1_0": str(empty),
        "GST_REGISTRY_1_0": str(tmp_path / "registry.bin"),
    }
    env.pop("LOCO_CONTROL_TOKEN", None)
    args = ["run", "--disk", str(tmp_path / "disk.img"), "--state-dir", str(tmp_path / "s")]
    done = subprocess.run(
        [sys.executable, "-m", "emulator.cli", *args, "--stream"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == ExitCode.STREAM_UNAVAILABLE, done.stderr
    assert "rfbsrc" in done.stderr and "make setup" in done.stderr
    assert "Traceback" not in done.stderr
