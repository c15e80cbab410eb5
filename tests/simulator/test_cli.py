"""``python -m tests.kubesim`` as its own process, driven by kubectl and /_sim endpoints."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.kubesim.process import KubeSimProcess

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")


def _kubectl(kubeconfig: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(cache),
        "KUBECONFIG": str(kubeconfig),
        "KUBECACHEDIR": str(cache),
    }
    return subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, timeout=20)


def _port_refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_cli_seeds_emulators_and_serves_kubectl(tmp_path: Path) -> None:
    kubeconfig, cache = tmp_path / "kubeconfig", tmp_path / "cache"
    with KubeSimProcess(kubeconfig, namespace="fleet", emulators=2) as sim:
        deadline = time.monotonic() + 10
        while True:
            out = _kubectl(kubeconfig, cache, "get", "pods", "--no-headers")
            rows = [line.split() for line in out.stdout.splitlines()]
            if len(rows) == 2 and all(r[1] == "1/1" for r in rows):
                break
            assert time.monotonic() < deadline, (out.stdout, out.stderr)
            time.sleep(0.05)
        assert [r[0] for r in rows] == ["loco-emulator-0", "loco-emulator-1"]

        appended = sim.admin(
            "POST", "/_sim/namespaces/fleet/pods/loco-emulator-1/logs", content=b"hello\nworld\n"
        )
        assert appended.status_code == 200
        logs = _kubectl(kubeconfig, cache, "logs", "loco-emulator-1", "--tail=1")
        assert logs.stdout == "world\n"

        port = int(sim.url.rsplit(":", 1)[1])
        assert sim.admin("POST", "/_sim/down", params={"seconds": "1"}).status_code == 202
        deadline = time.monotonic() + 5
        while not _port_refuses(port):
            assert time.monotonic() < deadline, "API never went down"
            time.sleep(0.01)
        down = _kubectl(kubeconfig, cache, "get", "pods")
        assert down.returncode != 0 and "refused" in down.stderr
        deadline = time.monotonic() + 5
        while _port_refuses(port):
            assert time.monotonic() < deadline, "API never came back"
            time.sleep(0.02)
        assert _kubectl(kubeconfig, cache, "get", "pods").returncode == 0
