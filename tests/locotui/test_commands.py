"""The scriptable subcommands, run as the real ``locotui`` console script against a real
backend process (static discovery over HTTP servers serving EmulatorStatus JSON) and the
Kubernetes simulator; plus ``run()`` called directly where a TTY matters."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.models import InstanceStatus
from emulator.models import OverallStatus
from locotui.commands import restart as restart_cmd
from locotui.commands import status as status_cmd
from locotui.config import load_settings
from locotui.data.backend_client import BackendClient
from tests.backend.fake_emulator import FakeEmulators
from tests.backend.helpers import write_static
from tests.kubesim import KubeSim
from tests.locotui.test_data_support import BackendProcess, free_port

LOCOTUI = str(Path(sys.executable).parent / "locotui")


@dataclass
class Result:
    code: int
    out: str
    err: str


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No user config, no kubeconfig, no LOCOTUI_*/LOCO_* from the outer environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOCOTUI_", "LOCO_", "KUBE")) and k != "HOME"
    }
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), NO_COLOR="1")
    env.update(extra)
    return env


async def locotui(
    *args: str, env: dict[str, str], timeout: float = 60, stdin: bytes | None = None
) -> Result:
    proc = await asyncio.create_subprocess_exec(
        LOCOTUI,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin or b""), timeout)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def wait_backend(url: str, predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    """Until the backend's view satisfies ``predicate(items)`` (probes take a moment)."""
    deadline = time.monotonic() + timeout
    async with BackendClient(url) as client:
        while True:
            items = (await client.list_instances()).fleet.items
            if predicate(items):
                return
            assert time.monotonic() < deadline, "backend never showed the expected fleet"
            await asyncio.sleep(0.05)


def all_healthy(items) -> bool:  # type: ignore[no-untyped-def]
    return bool(items) and all(i.status is InstanceStatus.HEALTHY for i in items)


@pytest.fixture
async def fake() -> AsyncIterator[FakeEmulators]:
    async with FakeEmulators(["loco-0", "loco-1"], token="tok") as emus:
        yield emus


@pytest.fixture
async def backend(tmp_path: Path, fake: FakeEmulators) -> AsyncIterator[BackendProcess]:
    log = tmp_path / "loco-0.log"
    log.write_text(
        "".join(
            json.dumps(
                {
                    "timestamp": f"2024-05-01T12:00:0{i}+00:00",
                    "level": "info",
                    "logger": "emulator",
                    "message": f"line {i}",
                }
            )
            + "\n"
            for i in range(5)
        )
    )
    static = write_static(tmp_path / "s.yaml", fake, extra={"loco-0": {"log_file": str(log)}})
    async with healthy_backend(static) as proc:
        yield proc


@contextlib.asynccontextmanager
async def healthy_backend(
    static: Path, extra: list[str] | None = None
) -> AsyncIterator[BackendProcess]:
    """The backend on ``static`` (control token ``tok``), once all it shows is healthy."""
    async with BackendProcess(static, token="tok", extra=extra) as proc:
        await wait_backend(proc.url, all_healthy)
        yield proc


async def test_status_exit_codes_0_1_2(
    tmp_path: Path, fake: FakeEmulators, backend: BackendProcess
) -> None:
    env = clean_env(tmp_path, LOCOTUI_BACKEND_URL=backend.url)
    ok = await locotui("status", env=env)
    assert ok.code == 0, ok
    lines = ok.out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "FPS", "RESTARTS", "NODE", "AGE", "REASON"]
    assert lines[1].split()[:3] == ["loco-0", "healthy", "25.0"]
    assert lines[-2:] == ["2 instances: 2 healthy", "auto-recovery: off"]

    fake.instances["loco-1"].overall_status = OverallStatus.DEGRADED
    fake.instances["loco-1"].reasons = ["frame rate 3.0 below 10"]
    await wait_backend(backend.url, lambda items: not all_healthy(items))
    bad = await locotui("status", "--json", env=env)
    assert bad.code == 1, bad
    doc = json.loads(bad.out)
    assert doc["exit_code"] == 1 and doc["source"] == "backend" and not doc["healthy"]
    assert doc["counts"]["degraded"] == 1 and doc["counts"]["healthy"] == 1
    assert {i["name"]: i["status"] for i in doc["instances"]} == {
        "loco-0": "healthy",
        "loco-1": "degraded",
    }
    table = await locotui("status", env=env)
    assert table.code == 1
    assert table.out.splitlines()[1].split()[:2] == ["loco-1", "degraded"]  # worst first
    assert "frame rate 3.0 below 10" in table.out

    await backend.stop()
    down = await locotui("status", env=env)
    assert down.code == 2 and down.out == ""
    assert down.err == (
        f"locotui: error: list instances: backend {backend.url} unreachable: connection "
        "refused (is loco-backend running?)\n"
    ) or down.err.startswith(
        f"locotui: error: backend {backend.url} unreachable: connection refused"
    )
    assert "Traceback" not in down.err
    down_json = await locotui("status", "--json", env=env)
    assert down_json.code == 2 and json.loads(down_json.out)["source"] == "none"


# The policy on, quick to climb its ladder on the test image the fakes report.
REMEDIATION = [
    "--remediation", "--remediation-cooldown", "0.1", "--remediation-thresholds",
    "testimage.bad_for=0.3,testimage.watch_reset=1,testimage.watch_restart=1",
]  # fmt: skip


@pytest.fixture
async def remediating(tmp_path: Path, fake: FakeEmulators) -> AsyncIterator[BackendProcess]:
    async with healthy_backend(write_static(tmp_path / "r.yaml", fake), REMEDIATION) as proc:
        yield proc


async def test_status_exit_5_when_an_instance_needs_a_person(
    tmp_path: Path, fake: FakeEmulators, remediating: BackendProcess
) -> None:
    env = clean_env(tmp_path, LOCOTUI_BACKEND_URL=remediating.url)
    ok = await locotui("status", env=env)
    assert ok.code == 0 and ok.out.splitlines()[-1] == "auto-recovery: on", ok
    # loco-0 degraded with QEMU down (not the policy's business: exit 1 alone) ...
    fake.instances["loco-0"].overall_status = OverallStatus.DEGRADED
    # ... and loco-1 running but bad: reset, restarted, given up on.
    bad = fake.instances["loco-1"]
    bad.qemu_ok, bad.reasons, bad.overall_status = (
        True,
        ["display is blank"],
        OverallStatus.DEGRADED,
    )
    await wait_backend(
        remediating.url,
        lambda items: any(i.remediation and i.remediation.rung == "needs_person" for i in items),
        timeout=30,
    )
    text = await locotui("status", env=env)
    assert text.code == 5, text  # before 1: someone must act
    assert text.out.splitlines()[-2:] == [
        "auto-recovery: on",
        "needs a person: loco-1 (display is blank)",
    ]
    doc = json.loads((await locotui("status", "--json", env=env)).out)
    assert doc["exit_code"] == 5 and not doc["healthy"]
    assert doc["needs_person"] == ["loco-1"]
    assert doc["remediation"]["enabled"] and doc["remediation"]["needing_a_person"] == ["loco-1"]
    assert fake.instances["loco-1"].resets == 1 and fake.instances["loco-1"].restarts == 1
    await remediating.stop()
    down = await locotui("status", "--json", env=env)
    assert down.code == 2 and json.loads(down.out)["remediation"] is None  # 2 goes first


async def test_remediation_command_pause_resume_and_its_exit_codes(
    tmp_path: Path, fake: FakeEmulators, remediating: BackendProcess, backend: BackendProcess
) -> None:
    env = clean_env(tmp_path, LOCOTUI_BACKEND_URL=remediating.url, LOCOTUI_CONTROL_TOKEN="tok")
    r = await locotui("remediation", env=env)
    assert r.code == 0, r
    assert r.out.splitlines()[0] == "auto-recovery: on"
    assert "budgets: 3 actions per instance an hour" in r.out
    # Not a terminal and no --yes: the exact action is shown, nothing is done.
    r = await locotui("remediation", "pause", "--minutes", "30", env=env)
    assert r.code == 1 and "pass --yes to confirm" in r.err
    assert "Pause automatic recovery for 30 minutes? It resumes by itself at" in r.err
    assert not json.loads((await locotui("remediation", "--json", env=env)).out)["paused"]
    r = await locotui("remediation", "pause", "--minutes", "0", "--yes", env=env)
    assert r.code == 2 and "at most 10080 (a week)" in r.err
    r = await locotui("remediation", "resume", "--minutes", "5", env=env)
    assert r.code == 2 and "go with pause only" in r.err
    wrong = {**env, "LOCOTUI_CONTROL_TOKEN": "bad"}
    r = await locotui("remediation", "pause", "--yes", env=wrong)
    assert r.code == 3 and "the control token is wrong" in r.err
    r = await locotui("remediation", "pause", "--yes", "--read-only", env=env)
    assert r.code == 3 and "read-only" in r.err
    r = await locotui(
        "remediation", "pause", "--minutes", "30", "--reason", "moving racks", "--yes", env=env
    )
    assert r.code == 0, r
    assert r.out.startswith("auto-recovery: PAUSED until ")
    assert r.out.rstrip().endswith("(by 127.0.0.1: moving racks)")
    doc = json.loads((await locotui("remediation", "status", "--json", env=env)).out)
    assert doc["paused"] and doc["paused_reason"] == "moving racks"
    status = await locotui("status", env=env)
    assert "auto-recovery: PAUSED until" in status.out
    r = await locotui("remediation", "resume", "--yes", env=env)
    assert r.code == 0 and r.out == "auto-recovery: on\n", r
    r = await locotui("remediation", "resume", "--yes", env=env)
    assert r.code == 0 and "not paused: nothing to do" in r.out
    # A backend with the policy off: said, and how to turn it on.
    off = {**env, "LOCOTUI_BACKEND_URL": backend.url}
    assert (await locotui("remediation", env=off)).out == "auto-recovery: off\n"
    r = await locotui("remediation", "pause", "--yes", env=off)
    assert r.code == 1 and "off on this backend" in r.err and "--remediation" in r.err
    assert "Traceback" not in r.err


async def test_status_falls_back_to_kubernetes_but_still_exits_2(tmp_path: Path) -> None:
    async with KubeSim(namespace="loco", emulators=2, kubeconfig=tmp_path / "kc") as sim:
        await sim.async_wait_pods_ready(2)
        env = clean_env(
            tmp_path,
            LOCOTUI_BACKEND_URL=f"http://127.0.0.1:{free_port()}",
            KUBECONFIG=str(sim.kubeconfig),
        )
        r = await locotui("status", env=env)
        assert r.code == 2, r
        assert "unreachable" in r.err
        assert r.out.splitlines()[0] == "Kubernetes-only view (no emulator health):"
        assert "loco-emulator-0" in r.out and "loco-emulator-1" in r.out
        assert "unknown*" in r.out  # no health; stale marker


async def test_status_watch_reprints_until_ctrl_c(
    tmp_path: Path, fake: FakeEmulators, backend: BackendProcess
) -> None:
    env = clean_env(tmp_path, LOCOTUI_BACKEND_URL=backend.url)
    proc = await asyncio.create_subprocess_exec(
        LOCOTUI,
        "status",
        "--watch",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while True:
                doc = json.loads(await proc.stdout.readline())
                if doc["exit_code"] == 0 and len(doc["instances"]) == 2:
                    break
            fake.instances["loco-0"].overall_status = OverallStatus.UNHEALTHY
            while True:
                doc = json.loads(await proc.stdout.readline())
                if doc["counts"]["unhealthy"] == 1:
                    break
            assert doc["exit_code"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 15)
        err = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert code == 1, err  # the last state shown
    assert "Traceback" not in err


async def test_restart_soft_confirmations_and_exit_codes(
    tmp_path: Path, fake: FakeEmulators, backend: BackendProcess
) -> None:
    env = clean_env(tmp_path, LOCOTUI_BACKEND_URL=backend.url, LOCOTUI_CONTROL_TOKEN="tok")
    # Not a terminal and no --yes: refuse, do nothing.
    r = await locotui("restart", "loco-0", "--soft", env=env)
    assert r.code == 1 and "stdin is not a terminal; pass --yes" in r.err
    assert "Soft reset loco-0 (QMP system_reset" in r.err
    assert fake.instances["loco-0"].resets == 0
    r = await locotui("restart", "loco-0", "--soft", "--yes", env=env)
    assert r.code == 0, r
    assert r.out.strip() == "loco-0: system_reset sent" and fake.instances["loco-0"].resets == 1
    r = await locotui("restart", "ghost", "--soft", "--yes", env=env)
    assert r.code == 4 and "no instance named 'ghost'" in r.err
    r = await locotui(
        "restart", "loco-1", "--soft", "--yes", env={**env, "LOCOTUI_CONTROL_TOKEN": "bad"}
    )
    assert r.code == 3 and "the control token is wrong" in r.err
    r = await locotui("restart", "loco-1", "--yes", "--read-only", env=env)
    assert r.code == 3 and "read-only" in r.err
    # Restart of a static instance goes through the backend (QEMU restart).
    r = await locotui("restart", "loco-1", "--yes", env=env)
    assert r.code == 0, r
    assert fake.instances["loco-1"].restarts == 1
    await backend.stop()
    r = await locotui("restart", "loco-1", "--soft", "--yes", env=env)
    assert r.code == 2 and "unreachable" in r.err
    for res in (r,):
        assert "Traceback" not in res.err


def test_restart_asks_on_a_terminal(tmp_path: Path) -> None:
    """On a TTY the exact action is shown and only 'y' proceeds (run() called directly;
    the kube path is used because the backend is unreachable)."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    with KubeSim(namespace="loco", emulators=1, kubeconfig=tmp_path / "kc") as sim:
        sim.wait_pods_ready(1)
        settings = load_settings(
            {"backend_url": f"http://127.0.0.1:{free_port()}", "kubeconfig": str(sim.kubeconfig)},
            env={"XDG_CONFIG_HOME": str(tmp_path / "none")},
        )
        opts = argparse.Namespace(
            name="loco-emulator-0", soft=False, yes=False, wait=False, timeout=30.0
        )
        uid = sim.pod("loco-emulator-0")["metadata"]["uid"]  # type: ignore[index]
        assert restart_cmd.run(settings, opts, stdin=Tty("n\n")) == 1
        assert sim.pod("loco-emulator-0")["metadata"]["uid"] == uid  # type: ignore[index]
        opts.wait = True
        assert restart_cmd.run(settings, opts, stdin=Tty("y\n")) == 0
        new = sim.pod("loco-emulator-0")
        assert new is not None and new["metadata"]["uid"] != uid


async def test_restart_pod_with_kubernetes_credentials(tmp_path: Path) -> None:
    async with KubeSim(namespace="loco", emulators=2, kubeconfig=tmp_path / "kc") as sim:
        await sim.async_wait_pods_ready(2)
        env = clean_env(
            tmp_path,
            LOCOTUI_BACKEND_URL=f"http://127.0.0.1:{free_port()}",
            KUBECONFIG=str(sim.kubeconfig),
        )
        uid = sim.pod("loco-emulator-1")["metadata"]["uid"]  # type: ignore[index]
        r = await locotui("restart", "loco-emulator-1", "--yes", "--wait", env=env)
        assert r.code == 0, r
        assert "recreated and Ready" in r.out
        assert sim.pod("loco-emulator-1")["metadata"]["uid"] != uid  # type: ignore[index]
        r = await locotui("restart", "ghost", "--yes", env=env)
        assert r.code == 4 and 'pods "ghost" not found' in r.err
        ro = await locotui(
            "restart",
            "loco-emulator-0",
            "--yes",
            "--context",
            sim.context_for(sim.readonly),
            env=env,
        )
        assert ro.code == 3, ro
        assert 'RBAC denied: pods "loco-emulator-0" is forbidden' in ro.err


async def test_logs_from_backend_and_kubernetes(tmp_path: Path, backend: BackendProcess) -> None:
    env = clean_env(tmp_path, LOCOTUI_BACKEND_URL=backend.url)
    r = await locotui("logs", "loco-0", "--tail", "2", env=env)
    assert r.code == 0, r
    assert [json.loads(x)["message"] for x in r.out.splitlines()] == ["line 3", "line 4"]
    pretty = await locotui("logs", "loco-0", "--tail", "1", "--pretty", env=env)
    assert pretty.out == "12:00:04.000 INFO    emulator: line 4\n"
    r = await locotui("logs", "loco-1", env=env)
    assert r.code == 4 and "no registered log file" in r.err
    r = await locotui("logs", "loco-0", "--previous", env=env)
    assert r.code == 1 and "--previous needs Kubernetes access" in r.err
    r = await locotui("logs", "ghost", env=env)
    assert r.code == 4

    # Follow: lines appended to the file arrive; Ctrl-C ends it quietly.
    proc = await asyncio.create_subprocess_exec(
        LOCOTUI,
        "logs",
        "loco-0",
        "-f",
        "--tail",
        "1",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    async with asyncio.timeout(20):
        assert b"line 4" in await proc.stdout.readline()
        with (tmp_path / "loco-0.log").open("a") as fh:
            fh.write("appended\n")
        assert await proc.stdout.readline() == b"appended\n"
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), 15) == 130
    assert b"Traceback" not in await proc.stderr.read()

    async with KubeSim(namespace="loco", emulators=1, kubeconfig=tmp_path / "kc") as sim:
        await sim.async_wait_pods_ready(1)
        sim.append_log("loco-emulator-0", "first run")
        await asyncio.to_thread(sim.restart_container, "loco-emulator-0")
        sim.append_log("loco-emulator-0", "second run")
        kenv = clean_env(
            tmp_path,
            LOCOTUI_BACKEND_URL=f"http://127.0.0.1:{free_port()}",
            KUBECONFIG=str(sim.kubeconfig),
        )
        r = await locotui("logs", "loco-emulator-0", env=kenv)
        assert r.code == 0 and r.out == "second run\n", r
        r = await locotui("logs", "loco-emulator-0", "--previous", "--timestamps", env=kenv)
        assert r.code == 0 and r.out.rstrip().endswith(" first run") and r.out[:2] == "20"


async def test_config_command_and_config_errors(tmp_path: Path) -> None:
    env = clean_env(tmp_path, LOCOTUI_NAMESPACE="loco")
    r = await locotui("config", "--json", "--read-only", env=env)
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert doc["namespace"] == {"value": "loco", "source": "env"}
    assert doc["read_only"] == {"value": True, "source": "flag"}
    assert doc["backend_url"]["source"] == "default"
    bad = tmp_path / "bad.toml"
    bad.write_text('theme = "nord"\nview = "tiles"\n')
    r = await locotui("status", "--config", str(bad), env=env)
    assert r.code == 2
    assert (
        r.err == f"locotui: error: {bad}:2: unknown setting 'view' (see docs/locotui-config.md)\n"
    )


def test_status_run_directly_reports_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(
        {"backend_url": f"http://127.0.0.1:{free_port()}"},
        env={"XDG_CONFIG_HOME": str(tmp_path / "none")},
    )
    out = io.StringIO()
    opts = argparse.Namespace(json=False, watch=False)
    assert status_cmd.run(settings, opts, out=out) == 2
    assert "unreachable" in capsys.readouterr().err
