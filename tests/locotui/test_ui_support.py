"""Shared helpers for the locotui UI tests (no tests here).

* :class:`FakeFleet` — tiny real HTTP servers serving real ``EmulatorStatus`` JSON whose
  content the test controls (``tests/backend/fake_emulator.py``), on a loop of their own
  in a thread, so they keep answering while a test blocks or runs its own loop.
* :class:`BackendProcess` — the real ``loco-backend`` console script, static discovery
  over a file that points at those servers, restartable on the same port.
* :func:`wait_for` — deadline-bounded waiting inside a Pilot session (never a fixed
  sleep that hopes): yields to the app between checks and fails with a description.
* :func:`screen_text` — what the terminal shows, as plain text.
* Deterministic builders (:func:`instance`, :func:`frozen_model`) for snapshot tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from textual.pilot import Pilot

from backend.models import (
    BreakerInfo,
    BreakerState,
    DiscoveryState,
    Instance,
    InstanceList,
    InstanceSource,
    InstanceStatus,
    PodCondition,
    PodFacts,
    RemediationInfo,
)
from emulator.models import DiskFacts, EmulatorStatus, OverallStatus, QemuFacts, VideoFacts
from locotui.config import Settings, load_settings
from locotui.data.fleet import FleetModel, Source
from locotui.data.link import LinkState
from tests.backend.fake_emulator import FakeEmulators
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "ui-test-token"


# --------------------------------------------------------------------------- waiting


async def wait_for(
    pilot: Pilot[Any],
    check: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
) -> Any:
    """Polls ``check`` between short pauses of the app until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception as exc:  # the widget may not exist yet
            value, error = None, exc
        else:
            error = None
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{describe()}" if describe else ""
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what} (last error: {error!r}){extra}"
            )
        await pilot.pause(0.05)


def screen_text(app: Any) -> str:
    """The current screen as plain text, one line per terminal row."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


# --------------------------------------------------------------------------- fake fleet


class FakeFleet:
    """Fake supervisors in a subprocess of their own, controlled over HTTP.

    A separate process, not a thread: Pilot waits for the test process to go idle after
    every key, and fake servers answering probes in the same process would keep it busy.
    ``fleet.set("loco-3", overall_status="unhealthy")`` changes what an instance serves;
    ``fleet.get("loco-3")["resets"]`` reads what was done to it.
    """

    BASELINE: dict[str, Any] = {
        "overall_status": "healthy", "fps": 25.0, "reasons": [], "health_delay": 0.0,
        "frame_ready": True, "resets": 0, "restarts": 0,
    }  # fmt: skip

    def __init__(self, names: list[str], token: str | None = None) -> None:
        self.names = names
        self.token = token
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> FakeFleet:
        port_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"fakefleet-{os.getpid()}-{id(self)}"
        port_file.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "tests.locotui.test_ui_support",
            "--port-file",
            str(port_file),
            *(["--token", self.token] if self.token else []),
            *self.names,
        ]
        self.proc = subprocess.Popen(argv, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake emulators did not start")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        port_file.unlink(missing_ok=True)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/i/{name}"

    def set(self, name: str, **fields: Any) -> None:
        r = httpx.post(
            f"http://127.0.0.1:{self.port}/_control/{name}", json=fields, timeout=5, trust_env=False
        )
        r.raise_for_status()

    def get(self, name: str) -> dict[str, Any]:
        r = httpx.get(f"http://127.0.0.1:{self.port}/_control/{name}", timeout=5, trust_env=False)
        r.raise_for_status()
        return dict(r.json())

    def baseline(self) -> None:
        """Every instance healthy at 25 fps, except loco-2 degraded at 4 fps (set in one
        step each, so no probe ever sees a state in between)."""
        degraded = {
            "overall_status": "degraded",
            "fps": 4.0,
            "reasons": ["frame rate low: 4.0 fps"],
        }
        for name in self.names:
            self.set(name, **{**self.BASELINE, **(degraded if name == "loco-2" else {})})

    def static_file(self, path: Path, log_files: dict[str, Path] | None = None) -> Path:
        items = []
        for name in self.names:
            item: dict[str, Any] = {"name": name, "health_url": self.url(name)}
            if log_files and name in log_files:
                item["log_file"] = str(log_files[name])
            items.append(item)
        path.write_text(json.dumps({"instances": items}), encoding="utf-8")
        return path


def _serve_fakes(argv: list[str]) -> None:
    """Entry point of the fake-fleet subprocess (see :class:`FakeFleet`)."""
    import argparse

    from fastapi import Body

    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--token")
    parser.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    fakes = FakeEmulators(args.names, token=args.token)

    @fakes.app.post("/_control/{name}")
    async def control(name: str, fields: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        inst = fakes.instances[name]
        for key, value in fields.items():
            if key == "overall_status":
                value = OverallStatus(value)
            setattr(inst, key, value)
        return {"ok": True}

    @fakes.app.get("/_control/{name}")
    async def state(name: str) -> dict[str, Any]:
        inst = fakes.instances[name]
        return {
            "resets": inst.resets,
            "restarts": inst.restarts,
            "thumbnails": inst.thumbnails,
            "overall_status": inst.overall_status.value,
        }

    async def run() -> None:
        await fakes.start()
        Path(args.port_file).write_text(str(fakes.port))
        await asyncio.Event().wait()

    asyncio.run(run())


class BackendProcess:
    """``loco-backend --discovery static`` in a subprocess, on a fixed port."""

    def __init__(
        self,
        static_file: Path,
        *,
        token: str | None = TOKEN,
        port: int | None = None,
        extra: list[str] | None = None,
    ) -> None:
        self.static_file = static_file
        self.token = token
        self.port = port or free_port()
        self.extra = extra or []
        self.log_path = static_file.with_suffix(".backend.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            str(BIN / "loco-backend"), "--host", "127.0.0.1", "--port", str(self.port),
            "--discovery", "static", "--static-config", str(self.static_file),
            "--probe-interval", "0.2", "--probe-timeout", "1", "--breaker-threshold", "2",
            "--breaker-reset", "0.5", "--sse-keepalive", "1", "--action-interval", "0.1",
            "--thumbnail-ttl", "0.2", "--no-access-log", *self.extra,
        ]  # fmt: skip

    def start(self, timeout: float = 30.0) -> BackendProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCO_")}
        env["LOG_LEVEL"] = "warning"
        if self.token:
            env["LOCO_CONTROL_TOKEN"] = self.token
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"loco-backend exited {self.proc.returncode}: "
                    + self.log_path.read_text(errors="replace")[-2000:]
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/ready", timeout=1, trust_env=False).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                raise RuntimeError("loco-backend did not become ready")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def ui_settings(backend_url: str = "http://127.0.0.1:9", **overrides: Any) -> Settings:
    """Settings as the CLI would build them, without reading any file or environment."""
    values: dict[str, Any] = {"backend_url": backend_url, "thumbnail_interval": 0.5}
    values.update(overrides)
    return load_settings(values, env={"XDG_CONFIG_HOME": "/nonexistent"})


# --------------------------------------------------------------------------- builders

NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


def health(
    name: str,
    status: OverallStatus = OverallStatus.HEALTHY,
    fps: float = 25.0,
    reasons: Iterable[str] = (),
    restarts: int = 0,
) -> EmulatorStatus:
    return EmulatorStatus(
        instance=name,
        overall_status=status,
        qemu_healthy=status is OverallStatus.HEALTHY,
        reasons=list(reasons),
        timestamp=NOW,
        supervisor_uptime_seconds=3725.0,
        qemu=QemuFacts(
            pid=4242,
            running=True,
            qmp_status="running",
            qmp_latency_ms=0.8,
            uptime_seconds=3600.0,
            restarts=restarts,
            booted=True,
        ),
        video=VideoFacts(
            display_active=status is not OverallStatus.UNHEALTHY,
            estimated_frame_rate=fps,
            width=640,
            height=400,
            last_frame_age_seconds=0.04,
            frames_total=90_000,
            vnc_connected=True,
        ),
        disk=DiskFacts(
            image="/images/win98.qcow2",
            format="qcow2",
            virtual_size=2 << 30,
            actual_size=700 << 20,
            overlay=f"/state/{name}/overlay.qcow2",
            overlay_size=48 << 20,
        ),
    )


def instance(
    name: str,
    status: InstanceStatus = InstanceStatus.HEALTHY,
    *,
    fps: float | None = 25.0,
    reason: str | None = None,
    stale: bool = False,
    breaker: BreakerState = BreakerState.CLOSED,
    restarts: int = 0,
    node: str = "node-a",
    probed: bool = True,
) -> Instance:
    emu_status = {
        InstanceStatus.HEALTHY: OverallStatus.HEALTHY,
        InstanceStatus.DEGRADED: OverallStatus.DEGRADED,
        InstanceStatus.UNHEALTHY: OverallStatus.UNHEALTHY,
        InstanceStatus.STARTING: OverallStatus.STARTING,
        InstanceStatus.UNKNOWN: OverallStatus.HEALTHY,
    }[status]
    started = NOW - timedelta(hours=2, minutes=13)
    return Instance(
        name=name,
        source=InstanceSource.KUBERNETES,
        status=status,
        status_reason=reason,
        pod=PodFacts(
            phase="Running",
            ready=status is not InstanceStatus.STARTING,
            restarts=restarts,
            node=node,
            ip="10.1.0.7",
            start_time=started,
            created_at=started,
            uid=f"uid-{name}",
            conditions=[PodCondition(type="Ready", status="True", last_transition_time=started)],
        ),
        health=health(name, emu_status, fps or 0.0, [reason] if reason else []) if probed else None,
        fps=fps,
        breaker=BreakerInfo(
            state=breaker,
            failures=3 if breaker is BreakerState.OPEN else 0,
            since=NOW - timedelta(minutes=5),
            retry_at=NOW + timedelta(seconds=4) if breaker is BreakerState.OPEN else None,
        ),
        stale=stale,
        stale_since=NOW - timedelta(seconds=42) if stale else None,
        stale_reason="health probe failing" if stale else None,
        last_probe_at=NOW if probed else None,
        last_ok_at=NOW if probed else None,
        health_url=f"http://10.1.0.7:8080/{name}",
        logs_available=True,
    )


def on_rung(inst: Instance, rung: str, seconds_ago: float = 40.0) -> Instance:
    """``inst`` as the automatic recovery has it: ``reset``, ``restart`` (acted, watching)
    or ``needs_person`` (gave up), since ``seconds_ago`` before :data:`NOW`."""
    info = RemediationInfo(
        rung=rung,  # type: ignore[arg-type]
        since=NOW - timedelta(seconds=seconds_ago),
        reason=inst.status_reason,
        actions_last_hour=1 if rung == "reset" else 2,
    )
    return inst.model_copy(update={"remediation": info})


def demo_instances(n: int = 9) -> list[Instance]:
    """A fleet with one of everything an operator must tell apart."""
    out = []
    for i in range(n):
        name = f"loco-{i}"
        if i == 2:
            out.append(
                instance(
                    name,
                    InstanceStatus.DEGRADED,
                    fps=4.0,
                    reason="frame rate low: 4.0 fps",
                    restarts=1,
                )
            )
        elif i == 4:
            out.append(
                instance(
                    name,
                    InstanceStatus.UNHEALTHY,
                    fps=None,
                    reason="supervisor unreachable, circuit open",
                    breaker=BreakerState.OPEN,
                    stale=True,
                )
            )
        elif i == 6:
            out.append(
                instance(
                    name, InstanceStatus.STARTING, fps=None, reason="pod not Ready", probed=False
                )
            )
        else:
            out.append(instance(name, fps=24.0 + i % 3, node=f"node-{'ab'[i % 2]}"))
    return out


def frozen_model(instances: list[Instance], mono: float = 1000.0) -> FleetModel:
    """A fleet model with a frozen clock, filled as if the backend had sent a snapshot,
    with a few seconds of fps history so sparklines have something to draw."""
    wall = NOW.timestamp()
    model = FleetModel(clock=lambda: mono, wall_clock=lambda: wall)
    fleet = InstanceList(
        items=instances,
        generated_at=NOW,
        revision=7,
        discovery=DiscoveryState(
            source=InstanceSource.KUBERNETES, ok=True, synced=True, last_sync=NOW, namespace="loco"
        ),
    )
    model.apply_snapshot(fleet)
    for entry in model.entries.values():
        entry.fps_history.clear()
        base = entry.fps
        for k in range(12):
            value = None if base is None else max(0.0, base - (k % 4) * 1.5)
            entry.fps_history.append((wall - (12 - k), value))
    model.set_link(Source.BACKEND, LinkState.CONNECTED, detail="http://backend:8081")
    model.set_link(Source.KUBERNETES, LinkState.IDLE, detail="standby")
    model.links[Source.BACKEND].last_data_at = mono
    return model


def png(width: int = 64, height: int = 40) -> bytes:
    """A fixed, colourful picture (deterministic) as PNG bytes."""
    import io

    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = (x * 255 // max(1, width - 1)).astype(np.uint8)
    img[..., 1] = (y * 255 // max(1, height - 1)).astype(np.uint8)
    img[..., 2] = 128
    img[height // 3 : height // 2, width // 4 : width // 2] = (255, 255, 255)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


if __name__ == "__main__":
    _serve_fakes(sys.argv[1:])
