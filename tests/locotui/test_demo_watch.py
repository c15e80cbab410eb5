"""The demo notices its own processes ending, and the console keeps saying so."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from locotui.demo.stack import Child, DemoStack
from locotui.ui.app import LocoApp
from tests.support.builders import frozen_model
from tests.support.console import screen_text, ui_settings
from tests.support.waiting import wait_for


def _child(tmp: Path, name: str, code: str) -> Child:
    log = tmp / f"{name}.log"
    log.write_text(f"{name} says hello\n{name} last words\n")
    child = Child(name, [sys.executable, "-c", code], log, {})
    child.proc = subprocess.Popen(child.argv)
    return child


async def test_each_death_is_one_line_naming_the_process_and_how_it_ended(
    tmp_path: Path,
) -> None:
    stack = DemoStack()
    sleeper = _child(tmp_path, "loco-1", "import time; time.sleep(600)")
    quitter = _child(tmp_path, "backend", "import time; time.sleep(600)")
    stack.children += [sleeper, quitter]
    deaths = stack.deaths()
    try:
        first = asyncio.ensure_future(anext(deaths))
        await asyncio.sleep(0)  # the watch is armed once the generator runs
        assert sleeper.proc is not None and quitter.proc is not None
        sleeper.proc.send_signal(signal.SIGKILL)
        line = await asyncio.wait_for(first, 10)
        assert line.startswith(f"demo: loco-1 (pid {sleeper.proc.pid}) killed by SIGKILL")
        assert "loco-1 last words" in line and "loco-1.log" in line
        quitter.proc.terminate()
        line = await asyncio.wait_for(anext(deaths), 10)
        assert line.startswith("demo: backend") and "SIGTERM" in line
        # nothing left to watch: the iteration ends instead of waiting for ever
        rest = [x async for x in deaths]
        assert rest == []
    finally:
        await deaths.aclose()
        for child in stack.children:
            assert child.proc is not None
            child.proc.kill()
            child.proc.wait()


async def test_the_console_keeps_an_alert_in_its_banner() -> None:
    gate = asyncio.Event()

    async def notices() -> AsyncIterator[str]:
        await gate.wait()
        yield "demo: loco-2 (pid 4242) killed by SIGKILL; log /x/loco-2.log"

    app = LocoApp(
        ui_settings("http://backend:8081"),
        model=frozen_model([]),
        start_feeds=False,
        notices=notices(),
    )
    async with app.run_test(size=(120, 30)) as pilot:
        assert "killed by SIGKILL" not in screen_text(app)
        gate.set()
        await wait_for(
            pilot,
            lambda: "demo: loco-2 (pid 4242) killed by SIGKILL" in screen_text(app),
            what="the alert in the banner",
            describe=lambda: screen_text(app),
        )
