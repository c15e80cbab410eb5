"""End to end with real QEMU: loco-emulator (test image) → loco-backend (static) →
locotui status / logs / restart --soft, all as the real console scripts.

Slow: boots qemu-system-x86_64 under TCG.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.backend import CONSOLE_DATA_ARGS, BackendProcess
from tests.support.console import Result, clean_env, locotui
from tests.support.ports import free_port, free_vnc_display
from tests.support.waiting import GiveUp, eventually

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86_64 is not installed"
    ),
]

BIN = Path(sys.executable).parent
TOKEN = "e2e-token"


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A real supervisor running QEMU on the test image; yields (health URL, log file)."""
    image = tmp_path / "test.img"
    subprocess.run([str(BIN / "loco-emulator"), "make-test-image", str(image)], check=True)
    port = free_port()
    log = tmp_path / "emulator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCO_")}
    env["LOCO_CONTROL_TOKEN"] = TOKEN
    proc = subprocess.Popen(
        [
            str(BIN / "loco-emulator"),
            "run",
            "--disk",
            str(image),
            "--state-dir",
            str(tmp_path / "state"),
            "--health-host",
            "127.0.0.1",
            "--health-port",
            str(port),
            "--vnc",
            f"127.0.0.1:{free_vnc_display()}",
            "--name",
            "loco-e2e",
            "--log-file",
            str(log),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "emulator.stderr").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(trust_env=False) as client:

            async def ready() -> bool:
                if proc.poll() is not None:
                    raise GiveUp((tmp_path / "emulator.stderr").read_text()[-2000:])
                return (await client.get(f"{url}/ready", timeout=2)).status_code == 200

            await eventually(ready, 60, "emulator ready", interval=0.1)
        yield url, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)


async def test_status_logs_and_soft_reset_against_a_real_emulator(
    tmp_path: Path, emulator: tuple[str, Path]
) -> None:
    url, log = emulator
    static = tmp_path / "static.json"
    static.write_text(
        json.dumps({"instances": [{"name": "loco-e2e", "health_url": url, "log_file": str(log)}]})
    )
    async with BackendProcess.static(static, token=TOKEN, timing=CONSOLE_DATA_ARGS) as backend:
        env = clean_env(tmp_path, LOCOTUI_BACKEND_URL=backend.url, LOCOTUI_CONTROL_TOKEN=TOKEN)

        async def status() -> Result:
            r = await locotui("status", "--json", env=env)
            if r.code not in (0, 1):  # starting/degraded while the guest warms up; never 2
                raise GiveUp(repr(r))
            return r

        # Healthy comes first; the frame rate follows with the first sampling burst.
        r = await eventually(
            status,
            60,
            "healthy with a frame rate",
            interval=0.5,
            accept=lambda r: r.code == 0 and json.loads(r.out)["instances"][0]["fps"],
        )
        doc = json.loads(r.out)
        (inst,) = doc["instances"]
        assert inst["name"] == "loco-e2e" and inst["status"] == "healthy"
        assert inst["health"]["qemu_healthy"] and inst["fps"] > 0

        logs = await locotui("logs", "loco-e2e", "--tail", "50", "--pretty", env=env)
        assert logs.code == 0, logs
        assert logs.out.strip() and "INFO" in logs.out

        reset = await locotui("restart", "loco-e2e", "--soft", "--yes", env=env)
        assert reset.code == 0, reset
        assert reset.out.startswith("loco-e2e: ")
