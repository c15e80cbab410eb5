"""The console in a real terminal (tmux) against the chart on the real cluster.

As an operator would run it: ``locotui`` on this machine, the backend's Service as its
backend, the API server with a user bound to the chart's operator (or viewer) Role.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.cluster.fleet import CLUSTER, OPERATOR, STATEFULSET, VIEWER, Fleet
from tests.support.console import fps_of
from tests.support.paths import BIN
from tests.support.processes import alive
from tests.support.tmux import Tmux, console_env
from tests.support.waiting import poll_until

pytestmark = [
    *CLUSTER,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

NAMES = [f"{STATEFULSET}-{i}" for i in range(3)]


def _open(term: Tmux, fleet: Fleet, user: str, tmp: Path) -> int:
    env = console_env(tmp)
    env["LOCOTUI_CONTROL_TOKEN"] = fleet.control_token()
    kubeconfig = fleet.kubeconfig_for(user)
    argv = [
        str(BIN / "locotui"),
        "--backend", fleet.service_url(),
        "--kubeconfig", str(kubeconfig),
        "--namespace", fleet.namespace,
    ]  # fmt: skip
    term.start(argv, env)
    return term.pid()


def _all_healthy_with_fps(screen: str) -> bool:
    return screen.count("● healthy") == 3 and all((fps_of(screen, n) or 0) > 5 for n in NAMES)


def _uid(fleet: Fleet, name: str) -> str:
    pod = fleet.pod(name)
    return pod["metadata"]["uid"] if pod else ""


def test_the_console_on_the_cluster_as_an_operator(
    fleet: Fleet, term: Tmux, tmp_path: Path
) -> None:
    pid = _open(term, fleet, OPERATOR, tmp_path)
    screen = term.wait(_all_healthy_with_fps, 120, "3 healthy tiles with frame rates")
    assert f"ns {fleet.namespace}" in screen and "backend ● live" in screen

    # Logs of the focused pod, through the API server with the operator's credentials.
    term.keys("L")
    logs = term.wait(lambda s: "QEMU is running" in s, 30, "the pod's log lines")
    assert f"logs  {NAMES[0]}" in logs
    term.keys("Escape")
    term.wait(lambda s: "● healthy" in s, 20, "back to the tiles")

    # Restart of the second pod: deleted with the operator Role, recreated by the
    # StatefulSet controller under the same name with a new UID.
    old = _uid(fleet, NAMES[1])
    term.keys("l")
    term.keys("R")
    term.wait(lambda s: f"Delete pod {NAMES[1]}" in s, 20, "the restart confirmation")
    term.keys("y")
    term.wait(
        lambda s: re.search(rf"✔\s+{NAMES[1]}\s+ok\s+pod {NAMES[1]} recreated and Ready", s),
        180,
        "the restart done",
    )
    assert _uid(fleet, NAMES[1]) not in ("", old), "a new pod"
    term.keys("Escape")
    term.wait(lambda s: "Delete pod" not in s, 20, "dialog closed")

    # Rolling restart of the StatefulSet: every pod replaced, one at a time.
    before = {n: _uid(fleet, n) for n in NAMES}
    term.keys("C-r")
    term.wait(lambda s: "Rolling restart of the StatefulSet owning" in s, 20, "ask")
    term.keys("y")
    term.wait(
        lambda s: re.search(rf"✔\s+{STATEFULSET}\s+ok\s+all 3 pods replaced", s),
        300,
        "the rolling restart done",
    )
    after = {n: _uid(fleet, n) for n in NAMES}
    assert all(after[n] != before[n] for n in NAMES), (before, after)
    term.keys("Escape")
    term.wait(_all_healthy_with_fps, 120, "all healthy again after the rollout")

    term.keys("q")
    poll_until(lambda: not alive(pid), 20, "the console to exit", describe=term.screen)
    assert term.wait_exit(10) == 0


def test_a_denied_restart_shows_the_api_servers_words(
    fleet: Fleet, term: Tmux, tmp_path: Path
) -> None:
    pid = _open(term, fleet, VIEWER, tmp_path)
    term.wait(lambda s: s.count("● healthy") == 3, 120, "3 healthy tiles")
    uid = _uid(fleet, NAMES[0])
    term.keys("R")
    term.wait(lambda s: f"Delete pod {NAMES[0]}" in s, 20, "the restart confirmation")
    term.keys("y")
    screen = term.wait(lambda s: "✖" in s and "forbidden" in s.lower(), 60, "the denial")
    # The API server's own message, wrapped inside the dialog.
    assert "DENIED" in screen and f'pods "{NAMES[0]}" is forbidden: User' in screen, screen
    assert f'"{VIEWER}" cannot delete resource "pods"' in screen, screen
    assert alive(pid), "a denied action is not a crash"
    assert _uid(fleet, NAMES[0]) == uid, "nothing was deleted"
    term.keys("Escape")
    # Wait for Escape to land: a key typed right after it would arrive as Alt+key.
    term.wait(lambda s: "Restart pod —" not in s, 20, "dialog closed")
    term.keys("q")
    poll_until(lambda: not alive(pid), 20, "the console to exit", describe=term.screen)
    assert term.wait_exit(10) == 0
