"""``loco-backend`` as a user runs it: help, clear one-line errors, a real start and stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backend.models import InstanceList
from tests.support.fake_emulator import FakeEmulators, write_static
from tests.support.waiting import eventually

ARGV = [sys.executable, "-m", "backend.cli"]
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCO_", "KUBE"))}
    full_env.update(env or {})
    return subprocess.run(
        [*ARGV, *args], capture_output=True, text=True, timeout=60, env=full_env, cwd=ROOT
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("loco-backend: error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_help_explains_flags_and_environment() -> None:
    result = run("--help")
    assert result.returncode == 0
    for word in (
        "--port",
        "LOCO_BACKEND_PORT",
        "--discovery",
        "LOCO_DISCOVERY",
        "--static-config",
        "--local-dir",
        "--namespace",
        "KUBERNETES_NAMESPACE",
        "--kubeconfig",
        "KUBECONFIG",
        "--context",
        "LOCO_CONTROL_TOKEN",
        "LOCO_CONTROL_TOKEN_FILE",
        "LOG_LEVEL",
        "--log-file",
    ):
        assert word in result.stdout, word


def test_settings_from_flags_environment_and_defaults() -> None:
    from backend.cli import build_parser, settings_from_args
    from emulator.errors import SettingsError

    parse = build_parser().parse_args
    env = {"LOCO_BACKEND_PORT": "1", "LOCO_BACKEND_HOST": "127.0.0.1", "LOG_LEVEL": "debug"}
    s = settings_from_args(parse(["--discovery", "local", "--port", "9000", "--no-probe"]), env)
    assert (s.port, s.host, s.probing, s.access_log) == (9000, "127.0.0.1", False, True)
    assert (s.resync_seconds, s.probe_concurrency, s.log_level) == (300.0, 32, "debug")
    for argv, expected in (
        (["--resync", "0"], "--resync must be greater than 0, got '0'"),
        (["--probe-concurrency", "x"], "--probe-concurrency must be a whole number, got 'x'"),
    ):
        with pytest.raises(SettingsError) as err:
            settings_from_args(parse(["--discovery", "local", *argv]), {})
        assert str(err.value) == expected


@pytest.mark.slow  # a dozen interpreter starts
def test_bad_inputs_are_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("instances:\n  - name: a\n    health_url: ftp://x\n")
    assert_usage_error(
        run("--discovery", "static", "--static-config", str(bad)),
        f"{bad}:3:17",
        "health_url",
        "http://",
    )
    assert_usage_error(
        run("--discovery", "static", "--static-config", str(tmp_path / "no")), "file not found"
    )
    assert_usage_error(run("--discovery", "static"), "--static-config")
    assert_usage_error(run("--port", "http"), "--port", "not a port")
    assert_usage_error(run("--port", "70000"), "out of range")
    assert_usage_error(
        run("--discovery", "local", env={"LOCO_BACKEND_PORT": "-1"}), "LOCO_BACKEND_PORT"
    )
    assert_usage_error(
        run("--discovery", "kubernetes", "--kubeconfig", str(tmp_path / "kc")),
        "kubeconfig",
        "not found",
    )
    assert_usage_error(run(env={"LOCO_DISCOVERY": "consul"}), "LOCO_DISCOVERY", "consul")
    assert_usage_error(run("--discovery", "local", env={"LOG_LEVEL": "loud"}), "LOG_LEVEL")
    empty = tmp_path / "token"
    empty.write_text("\n")
    assert_usage_error(
        run("--discovery", "local", env={"LOCO_CONTROL_TOKEN_FILE": str(empty)}), "is empty"
    )
    assert_usage_error(
        run("--discovery", "local", env={"LOCO_CONTROL_TOKEN_FILE": str(tmp_path / "nope")}),
        "LOCO_CONTROL_TOKEN_FILE",
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert_usage_error(
            run(
                "--discovery",
                "local",
                "--local-dir",
                str(tmp_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ),
            f"cannot listen on 127.0.0.1:{port}",
        )
    # argparse's own errors are one line too (after the usage line) and exit 2
    result = run("--discovery", "nope")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    assert "Traceback" not in result.stderr


async def test_starts_serves_and_stops(tmp_path: Path) -> None:
    async with FakeEmulators(["a", "b"]) as fake:
        static = write_static(tmp_path / "fleet.yaml", fake)
        log_file = tmp_path / "logs" / "backend.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCO_", "KUBE"))}
        env.update(LOCO_CONTROL_TOKEN="cli-token", LOG_LEVEL="info")
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *ARGV,
            "--discovery",
            "static",
            "--static-config",
            str(static),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--log-file",
            str(log_file),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        try:
            assert proc.stdout is not None
            port = None
            async with asyncio.timeout(20):
                while port is None:
                    line = await proc.stdout.readline()
                    assert line, "backend exited before listening"
                    record = json.loads(line)
                    if record["message"] == "loco-backend listening":
                        port = record["context"]["port"]
                        assert record["context"]["control"] == "enabled"
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

                async def answered() -> httpx.Response | None:
                    try:
                        return await client.get("/api/instances")
                    except httpx.TransportError:
                        return None

                # No pause between tries: the time to the first answer is measured.
                resp = await eventually(answered, 20, "the first answer", interval=0)
                first_answer = time.monotonic() - started
                assert resp.status_code == 200
                # not a target (the machine may be busy): just make sure it is not absurd
                assert first_answer < 15, first_answer

                async def listed() -> InstanceList:
                    return InstanceList.model_validate_json(
                        (await client.get("/api/instances")).content
                    )

                await eventually(
                    listed,
                    10,
                    "two healthy instances",
                    interval=0.05,
                    accept=lambda fleet: (
                        len(fleet.items) >= 2 and all(i.status == "healthy" for i in fleet.items)
                    ),
                )
                assert (await client.get("/health")).json()["discovery"] == "static"
        finally:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                code = await proc.wait()
        assert code == 0
        text = log_file.read_text()
        assert "loco-backend listening" in text and "cli-token" not in text
        assert (tmp_path / "logs" / "backend.error.log").exists()


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("loco-backend ")
