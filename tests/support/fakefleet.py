"""Fake supervisors in a process of their own, whose answers a test sets over HTTP.

``python -m tests.support.fakefleet`` is that process (see :class:`FakeFleet`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from emulator.models import OverallStatus
from tests.support.fake_emulator import FakeEmulators
from tests.support.paths import ROOT
from tests.support.waiting import GiveUp, poll_until


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
            "tests.support.fakefleet",
            "--port-file",
            str(port_file),
            *(["--token", self.token] if self.token else []),
            *self.names,
        ]
        proc = self.proc = subprocess.Popen(argv, cwd=ROOT)

        def port() -> str:
            if proc.poll() is not None:
                raise GiveUp(f"fake emulators exited {proc.returncode}")
            return port_file.read_text().strip() if port_file.exists() else ""

        self.port = int(poll_until(port, timeout, "fake emulators started", interval=0.05))
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


if __name__ == "__main__":
    _serve_fakes(sys.argv[1:])
