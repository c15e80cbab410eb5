"""The real supervisor, started the way the chart starts it (test guest, real QEMU).

The pod's environment is taken from the rendered StatefulSet; only what a pod gets from
Kubernetes is mapped onto this machine: volume mount paths become temporary directories,
and the ports become free ones (tests run in parallel). The init container's command
writes the disk image, the probes' paths are polled like the kubelet would, and SIGTERM
must end everything within the pod's terminationGracePeriodSeconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy.chart import VARIANTS, env_of, mounts_by_volume, render
from tests.support.ports import free_port, free_vnc_display
from tests.support.waiting import poll_until

pytestmark = pytest.mark.slow


def wait_for(url: str, deadline: float) -> httpx.Response:
    """The answer once ``url`` answers 200, polled like the kubelet's probe."""
    return poll_until(
        lambda: httpx.get(url, timeout=2),
        deadline,
        f"{url} answering 200",
        accept=lambda r: r.status_code == 200,
    )


def test_supervisor_runs_from_the_rendered_pod_spec(tmp_path: Path) -> None:
    r = render(VARIANTS["testimage-tcg"])
    pod = r.emulator_pod
    c = r.emulator_container
    mounts = mounts_by_volume(c)
    local = {m["mountPath"]: tmp_path / name for name, m in mounts.items()}
    for directory in local.values():
        directory.mkdir()
    (local[mounts["control-token"]["mountPath"]] / "token").write_text("chart-token\n")

    def remap(value: str) -> str:
        for mount_path, directory in local.items():
            if value == mount_path or value.startswith(mount_path + "/"):
                return str(directory) + value[len(mount_path) :]
        return value

    # the init container writes the test guest into the base-image volume
    (init,) = pod["spec"]["initContainers"]
    assert init["command"][0] == "loco-emulator"
    cmd = [sys.executable, "-m", "emulator.cli", *(remap(a) for a in init["command"][1:])]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)

    port, display = free_port(), free_vnc_display()
    env = {name: remap(value) for name, value in env_of(c).items()}
    env |= {
        "LOCO_HEALTH_PORT": str(port),
        "LOCO_HEALTH_HOST": "127.0.0.1",
        "LOCO_VNC": f"127.0.0.1:{display}",
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOCO_")}
    assert c["command"][0] == "loco-emulator"
    argv = [sys.executable, "-m", "emulator.cli", *c["command"][1:]]
    url = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            env={**base, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
        )

    proc = start()
    try:
        startup = c["startupProbe"]
        budget = (
            startup["initialDelaySeconds"] + startup["periodSeconds"] * startup["failureThreshold"]
        )
        wait_for(url + c["startupProbe"]["httpGet"]["path"], min(budget, 30))
        wait_for(url + c["readinessProbe"]["httpGet"]["path"], 30)
        health = wait_for(url + c["livenessProbe"]["httpGet"]["path"], 5).json()
        assert health["overall_status"] == "healthy"
        # the token comes from the mounted Secret file
        assert httpx.post(url + "/reset", timeout=5).status_code == 401
        ok = httpx.post(url + "/reset", headers={"Authorization": "Bearer chart-token"}, timeout=5)
        assert ok.status_code == 200, ok.text
        # the overlay is on the state volume
        state = local[mounts["state"]["mountPath"]]
        overlay = state / "overlay.qcow2"
        assert overlay.exists()
        inode = overlay.stat().st_ino

        # SIGTERM (pod deletion): everything ends within terminationGracePeriodSeconds
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=pod["spec"]["terminationGracePeriodSeconds"])
        took = time.monotonic() - started
        assert took < pod["spec"]["terminationGracePeriodSeconds"]

        # the pod comes back with the same state volume: the overlay is kept
        proc = start()
        wait_for(url + "/ready", 30)
        assert overlay.stat().st_ino == inode
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
