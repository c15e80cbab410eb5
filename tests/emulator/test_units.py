"""Pure pieces of the supervisor: the health rule, rate estimate, argv, settings, logging."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
from collections import deque
from pathlib import Path

import pytest

from emulator import jsonlog
from emulator.auth import bearer_token, token_matches
from emulator.childproc import describe_exit
from emulator.config import Settings, VncAddress
from emulator.errors import ExitCode, SupervisorError
from emulator.framerate import Burst, BurstRateEstimator
from emulator.health import build_status, derive, readiness
from emulator.layered_settings import read_control_token
from emulator.models import OverallStatus, QemuFacts, VideoFacts
from emulator.qemu_argv import AccelChoice, build_argv, choose_accel

RUNNING = QemuFacts(pid=1, running=True, qmp_status="running", booted=True, uptime_seconds=60)
LIVE = VideoFacts(display_active=True, vnc_connected=True, last_frame_age_seconds=0.1,
                  frames_total=10)  # fmt: skip


@pytest.mark.parametrize(
    ("qemu", "qmp_ok", "video", "failures", "expected", "reason_part"),
    [
        (RUNNING, True, LIVE, 0, OverallStatus.HEALTHY, None),
        (RUNNING.model_copy(update={"crash_loop": True, "last_exit": "exited with status 3"}),
         True, LIVE, 6, OverallStatus.UNHEALTHY, "exited with status 3"),
        (QemuFacts(running=True), False, VideoFacts(), 0, OverallStatus.STARTING, "starting"),
        (QemuFacts(last_exit="start failed: boom"), False, VideoFacts(), 1,
         OverallStatus.UNHEALTHY, "boom"),
        (RUNNING.model_copy(update={"running": False, "last_exit": "killed by SIGKILL"}), False,
         LIVE, 1, OverallStatus.UNHEALTHY, "SIGKILL"),
        (RUNNING, False, LIVE, 0, OverallStatus.UNHEALTHY, "QMP does not answer"),
        (RUNNING.model_copy(update={"qmp_status": "paused"}), True, LIVE, 0,
         OverallStatus.UNHEALTHY, "paused"),
        (RUNNING, True, VideoFacts(vnc_connected=False), 0, OverallStatus.DEGRADED, "no VNC"),
        (RUNNING, True, LIVE.model_copy(update={"display_active": False, "blank": True}), 0,
         OverallStatus.DEGRADED, "blank"),
        (RUNNING.model_copy(update={"uptime_seconds": 2}), True, VideoFacts(vnc_connected=True),
         0, OverallStatus.STARTING, "no frame"),
    ],
)  # fmt: skip
def test_health_rule(qemu, qmp_ok, video, failures, expected, reason_part) -> None:
    status, reasons = derive(qemu, qmp_ok, video, failures)
    assert status == expected
    if reason_part is None:
        assert reasons == []
    else:
        assert reason_part in reasons[0]


def test_readiness_needs_qemu_and_display() -> None:
    def build(qmp_ok: bool, video: VideoFacts):
        return build_status("x", RUNNING, qmp_ok, video, 0, 1.0, None, [])

    assert readiness(build(True, LIVE)).ready is True
    not_ready = readiness(build(False, LIVE))
    assert not_ready.ready is False and "QMP" in (not_ready.reason or "")
    assert readiness(build(True, VideoFacts(vnc_connected=True))).ready is False


def test_burst_rate_estimator_windows_and_resets() -> None:
    est = BurstRateEstimator(window=10)
    assert est.rate(0) is None, "nothing measured yet"
    est.add(Burst(ended_at=2, changes=40, span=2))
    est.add(Burst(ended_at=7, changes=60, span=2))
    assert est.rate(7) == pytest.approx(25.0)
    assert est.frames_total == 100
    assert est.rate(13) == pytest.approx(30.0), "the first burst left the window"
    assert est.rate(30) is None, "no recent burst: no frame rate"
    est.clear()
    assert est.rate(7) is None and est.frames_total == 100
    with pytest.raises(ValueError):
        BurstRateEstimator(window=0)


def test_vnc_address_parsing() -> None:
    vnc = VncAddress.parse("127.0.0.1:3")
    assert (vnc.port, vnc.qemu_arg, str(vnc)) == (5903, "127.0.0.1:3", "127.0.0.1:5903")
    for bad in ("127.0.0.1", "host:port", ":1", "h:99999", "a b:1"):
        with pytest.raises(SupervisorError) as err:
            VncAddress.parse(bad)
        assert err.value.code == ExitCode.USAGE


def test_instance_names() -> None:
    from emulator.config import check_name

    assert check_name("loco-emulator-0") == "loco-emulator-0"
    for bad in ("", "-x", "a b", "a,b", "x" * 64, "../etc"):
        with pytest.raises(SupervisorError, match="not valid"):
            check_name(bad)


def test_sampling_setting() -> None:
    from emulator.config import parse_sampling

    assert parse_sampling("2/5") == (2.0, 5.0)
    assert parse_sampling("1/10") == (1.0, 10.0)
    for bad in ("5/2", "2", "a/b", "0.1/5", "2/5000"):
        with pytest.raises(SupervisorError, match="BURST/PERIOD"):
            parse_sampling(bad)


def test_accel_choice(tmp_path: Path) -> None:
    missing = tmp_path / "kvm"
    assert choose_accel("auto", missing).accel == "tcg"
    assert "not usable" in choose_accel("auto", missing).reason
    assert choose_accel("tcg", missing) == AccelChoice("tcg", "requested")
    with pytest.raises(SupervisorError, match="--accel tcg"):
        choose_accel("kvm", missing)
    usable = tmp_path / "kvm-ok"
    usable.touch()
    assert choose_accel("kvm", usable).accel == "kvm"


def test_argv_profiles_are_lists_without_shell(tmp_path: Path) -> None:
    # Names that validation refuses (model_construct skips it): argv must be safe even so.
    base = Settings.model_construct(disk=tmp_path / "d.img", state_dir=tmp_path, name="x; rm -rf /")
    overlay, sock = tmp_path / "o.qcow2", tmp_path / "q.sock"
    test_argv = build_argv(base, overlay, sock, AccelChoice("tcg", ""))
    assert test_argv[0] == "qemu-system-x86_64"
    joined = " ".join(test_argv)
    assert "-display none" in joined and "-vnc 127.0.0.1:0" in joined
    assert f"unix:{sock},server=on,wait=off" in test_argv
    drive = f"file={overlay},format=qcow2,if=ide,index=0,media=disk,werror=stop,rerror=stop"
    assert drive in test_argv, "a disk error pauses the guest instead of failing its write"
    assert f"unix:{tmp_path}/serial.sock,server=on,wait=off" in test_argv, "test guest control"
    assert "-m 32" in joined
    # The name goes into one argv element; nothing is ever interpreted by a shell.
    assert "x; rm -rf /,process=qemu-x; rm -rf /" in test_argv
    odd = Settings.model_construct(
        disk=tmp_path / "d.img", state_dir=tmp_path, name="a,debug-threads=on"
    )
    odd_argv = build_argv(odd, tmp_path / "o,v.qcow2", sock, AccelChoice("tcg", ""))
    assert "a,,debug-threads=on,process=qemu-a,,debug-threads=on" in odd_argv
    assert any(a.startswith(f"file={tmp_path}/o,,v.qcow2,format=qcow2") for a in odd_argv)
    win98 = Settings(disk=tmp_path / "d.img", state_dir=tmp_path, profile="win98")
    argv = " ".join(build_argv(win98, overlay, sock, AccelChoice("tcg", "")))
    for part in ("-machine pc", "-cpu pentium3", "-vga cirrus", "-device sb16",
                 "-nic user,model=ne2k_pci", "-m 256"):  # fmt: skip
        assert part in argv
    assert str(tmp_path / "d.img") not in argv, "QEMU only ever sees the overlay"


def test_exit_descriptions() -> None:
    tail: deque[str] = deque(["qemu: could not load PC BIOS"])
    assert describe_exit(1, tail) == "exited with status 1: qemu: could not load PC BIOS"
    assert describe_exit(-signal.SIGKILL, deque()) == "killed by SIGKILL"


def test_control_token_sources(tmp_path: Path) -> None:
    def read_token(token: str | None, token_file: str | None) -> str | None:
        env = {"LOCO_CONTROL_TOKEN": token, "LOCO_CONTROL_TOKEN_FILE": token_file}
        given = {k: v for k, v in env.items() if v is not None}
        found = read_control_token(given, "LOCO_CONTROL_TOKEN", "LOCO_CONTROL_TOKEN_FILE")
        return found.value if found else None

    assert read_token(None, None) is None
    assert read_token("abc", None) == "abc"
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    assert read_token("abc", str(secret)) == "from-file"
    with pytest.raises(SupervisorError, match="empty"):
        (tmp_path / "empty").write_text("")
        read_token(None, str(tmp_path / "empty"))
    with pytest.raises(SupervisorError, match="LOCO_CONTROL_TOKEN_FILE"):
        read_token(None, str(tmp_path / "missing"))
    with pytest.raises(SupervisorError, match="LOCO_CONTROL_TOKEN is set but empty"):
        read_token(" ", None)


def test_settings_layers_precedence_and_one_line_errors(tmp_path: Path) -> None:
    """flag > environment > default; a bad value is one line naming where it was given."""
    import argparse
    from typing import Annotated

    from emulator.errors import SettingsError
    from emulator.layered_settings import Env, LayeredSettings, env_layer, flag_layer

    class Demo(LayeredSettings):
        count: Annotated[int, Env("DEMO_COUNT")] = 1
        label: Annotated[str, Env("DEMO_LABEL")] = "x"

    parser = argparse.ArgumentParser()
    parser.add_argument("--count")
    parser.add_argument("--label")

    def load(argv: list[str], env: dict[str, str]) -> Demo:
        layers = (flag_layer(Demo, parser, parser.parse_args(argv)), env_layer(Demo, env))
        return Demo.load(*layers)

    assert load([], {}) == Demo()
    assert load([], {"DEMO_COUNT": "2", "DEMO_LABEL": " "}) == Demo(count=2)  # blank: unset
    assert load(["--count", "3"], {"DEMO_COUNT": "2"}).count == 3
    # pydantic's own report (no validator of ours here) still comes out as one line
    with pytest.raises(SettingsError) as err:
        load([], {"DEMO_COUNT": "many"})
    assert str(err.value).startswith("DEMO_COUNT='many': input should be a valid integer")
    assert "\n" not in str(err.value) and err.value.code == ExitCode.USAGE
    with pytest.raises(SettingsError, match=r"^--count='many': "):
        load(["--count", "many"], {"DEMO_COUNT": "2"})
    # a model made directly reads nothing from the environment
    os.environ["DEMO_COUNT"] = "5"
    try:
        assert Demo().count == 1
    finally:
        del os.environ["DEMO_COUNT"]


def test_supervisor_settings_from_flags_and_environment(tmp_path: Path) -> None:
    from emulator.cli import _parser, settings_from
    from emulator.errors import SettingsError

    def settings(*argv: str, **env: str) -> Settings:
        base = ["run", "--disk", "d.img", "--state-dir", str(tmp_path)]
        return settings_from(_parser().parse_args([*base, *argv]), env)

    s = settings("--memory", "64", LOCO_MEMORY_MB="128", LOCO_PROFILE="win98")
    assert (s.memory_mb, s.profile, s.health_port, s.fps_burst) == (64, "win98", 8080, 2.0)
    assert settings(LOCO_FRESH_OVERLAY="yes", LOCO_FPS_SAMPLING="1/10").fps_period == 10.0
    cases = {
        ("--max-restarts", "x"): "--max-restarts must be a whole number, got 'x'",
        ("--shutdown-grace", "soon"): "--shutdown-grace must be a number of seconds",
        ("--hang-limit", "2"): "hang limit 2 s: give 0 (off) or 3-3600 seconds",
    }
    for argv, expected in cases.items():
        with pytest.raises(SettingsError, match=re.escape(expected)):
            settings(*argv)
    with pytest.raises(SettingsError, match="LOCO_FRESH_OVERLAY must be true or false"):
        settings(LOCO_FRESH_OVERLAY="maybe")
    with pytest.raises(SettingsError, match="LOCO_CONTROL_TOKEN is set but empty"):
        settings(LOCO_CONTROL_TOKEN="")


def test_bearer_parsing_and_comparison() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
    assert token_matches("abc", "abc") and not token_matches("abd", "abc")
    assert not token_matches(None, "abc")


def test_json_log_lines_carry_context_and_request_id(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(jsonlog.JsonFormatter())
    logger = logging.getLogger("test.jsonlog")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    token = jsonlog.request_id.set("req-1")
    try:
        jsonlog.log(logger, logging.WARNING, "disk ready", image="a.img", size=3)
    finally:
        jsonlog.request_id.reset(token)
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert entry["level"] == "warning" and entry["logger"] == "test.jsonlog"
    assert entry["message"] == "disk ready"
    assert entry["context"] == {"image": "a.img", "size": 3}
    assert entry["request_id"] == "req-1"
    assert entry["timestamp"].endswith("+00:00")


def test_log_level_and_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LOG_LEVEL='loud'"):
        jsonlog.parse_level("loud")
    assert jsonlog.parse_level("warn") == logging.WARNING
    log_file = tmp_path / "logs" / "emulator.log"
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        jsonlog.configure("info", log_file=log_file)
        logging.getLogger("t").info("hello")
        logging.getLogger("t").error("broken")
        for h in root.handlers:
            h.flush()
    finally:
        for h in root.handlers:
            if h not in saved[0]:
                h.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert "hello" in log_file.read_text() and "broken" in log_file.read_text()
    errors = (tmp_path / "logs" / "emulator.error.log").read_text()
    assert "broken" in errors and "hello" not in errors


def test_screen_dump_dirs_of_dead_supervisors_are_removed(tmp_path: Path) -> None:
    from emulator import framecount

    dead = tmp_path / "loco-screen-999999999-abc"
    dead.mkdir()
    alive = tmp_path / f"loco-screen-{os.getpid()}-def"
    alive.mkdir()
    framecount._remove_orphans(tmp_path)
    assert not dead.exists() and alive.exists()
