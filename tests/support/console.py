"""The console (``locotui``) under test: its settings, its screen as text, its subcommands
run as the real console script."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locotui.config import Settings, load_settings
from tests.support.paths import BIN

# The control token of the UI tests' fake fleets and backends.
TOKEN = "ui-test-token"
LOCOTUI = str(BIN / "locotui")


def ui_settings(backend_url: str = "http://127.0.0.1:9", **overrides: Any) -> Settings:
    """Settings as the CLI would build them, without reading any file or environment."""
    values: dict[str, Any] = {"backend_url": backend_url, "thumbnail_interval": 0.5}
    values.update(overrides)
    return load_settings(values, env={"XDG_CONFIG_HOME": "/nonexistent"})


def screen_text(app: Any) -> str:
    """The current screen as plain text, one line per terminal row."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


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


def tile_value(screen: str, name: str, pattern: str) -> str | None:
    """The first match of ``pattern`` inside the tile titled ``name`` (tiles sit side by
    side, so only the columns under the title count)."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if f" {name} " not in line:
            continue
        title = line.index(f" {name} ")
        left = max(0, title - 2)  # the tile's left border
        ends = [p for p in (line.find("╮", title), line.find("┓", title)) if p >= 0]
        right = min(ends) + 1 if ends else len(line)
        for below in lines[i + 1 : i + 6]:
            match = re.search(pattern, below[left:right])
            if match:
                return match.group(1)
    return None


def fps_of(screen: str, name: str) -> float | None:
    value = tile_value(screen, name, r"(\d+\.\d) fps")
    return float(value) if value else None


def uptime_of(screen: str, name: str) -> int | None:
    value = tile_value(screen, name, r"up (\d+)s")
    return int(value) if value else None
