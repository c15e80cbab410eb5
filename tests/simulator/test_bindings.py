"""Binding simulated pods to real local processes: health URL, readiness probe, log file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.kubesim import KubeSim

NS = "loco"


class FakeSupervisor:
    """A stand-in for the emulator supervisor's health endpoints, on a free port."""

    def __init__(self) -> None:
        self.ready = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code = 200 if self.path != "/ready" or outer.ready else 503
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def supervisor() -> Iterator[FakeSupervisor]:
    sup = FakeSupervisor()
    yield sup
    sup.close()


def _ready(sim: KubeSim, name: str) -> bool | None:
    pod = sim.pod(name)
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return None
    conds = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}
    return conds.get("Ready") == "True"


def test_bound_pod_exposes_the_real_process(
    kubesim: KubeSim, supervisor: FakeSupervisor, tmp_path: Path, k8s_api_client: Any
) -> None:
    log = tmp_path / "emulator.log"
    log.write_text("boot 1\nboot 2\n")
    killed: list[str] = []
    health_url = f"http://127.0.0.1:{supervisor.port}"
    kubesim.bind_pod(
        "loco-emulator-0",
        health_url=health_url,
        vnc="127.0.0.1:5901",
        log_file=log,
        probe_readiness=True,
        on_delete=killed.append,
    )
    v1 = client.CoreV1Api(k8s_api_client)
    pod = v1.read_namespaced_pod("loco-emulator-0", NS)
    assert pod.metadata.annotations["lego-loco.io/health-url"] == health_url
    assert pod.metadata.annotations["lego-loco.io/vnc-address"] == "127.0.0.1:5901"
    assert pod.status.pod_ip == "127.0.0.1"
    ports = {p.name: p.container_port for p in pod.spec.containers[0].ports}
    assert ports == {"health": supervisor.port, "vnc": 5901}

    kubesim.wait_for(
        lambda: v1.read_namespaced_pod_log("loco-emulator-0", NS) == "boot 1\nboot 2\n",
        what="log file content",
    )
    with log.open("a") as fh:
        fh.write("live line\npartial")
    kubesim.wait_for(
        lambda: v1.read_namespaced_pod_log("loco-emulator-0", NS, tail_lines=1) == "live line\n",
        what="appended line",
    )  # the unterminated "partial" is held back until its newline arrives

    # Readiness follows the real /ready endpoint, like a kubelet readiness probe.
    supervisor.ready = False
    kubesim.wait_for(lambda: _ready(kubesim, "loco-emulator-0") is False, what="not ready")
    supervisor.ready = True
    kubesim.wait_for(lambda: _ready(kubesim, "loco-emulator-0") is True, what="ready again")

    # A deleted pod's binding carries over to its replacement, and the hook hears of the kill.
    old_uid = pod.metadata.uid
    kubesim.delete_pod("loco-emulator-0")
    kubesim.wait_for(lambda: killed == ["loco-emulator-0"], what="on_delete callback")
    kubesim.wait_for(
        lambda: (
            (p := kubesim.pod("loco-emulator-0")) is not None
            and p["metadata"]["uid"] != old_uid
            and _ready(kubesim, "loco-emulator-0")
        ),
        what="replacement ready",
    )
    new = v1.read_namespaced_pod("loco-emulator-0", NS)
    assert new.metadata.annotations["lego-loco.io/health-url"] == health_url
    assert new.status.pod_ip == "127.0.0.1"
    # A new container instance starts with an empty log: it only sees lines written after.
    assert v1.read_namespaced_pod_log("loco-emulator-0", NS) == ""
    with log.open("a") as fh:
        fh.write("after restart\n")
    kubesim.wait_for(
        lambda: v1.read_namespaced_pod_log("loco-emulator-0", NS) == "after restart\n",
        what="new instance log",
    )


def test_probe_keeps_pod_unready_when_the_process_is_down(kubesim_factory: Any) -> None:
    sup = FakeSupervisor()
    port = sup.port
    sup.close()  # nothing listens on the bound URL any more
    sim: KubeSim = kubesim_factory(namespace=NS, emulators=0)
    sim.bind_pod("loco-emulator-0", health_url=f"http://127.0.0.1:{port}", probe_readiness=True)
    sim.create_statefulset("loco-emulator", 1)
    sim.wait_for(
        lambda: (
            (p := sim.pod("loco-emulator-0")) is not None and p["status"].get("phase") == "Running"
        ),
        what="running pod",
    )
    sim.wait_for(
        lambda: any(
            c["type"] == "Ready"
            and c["status"] == "False"
            and c.get("reason") == "ContainersNotReady"
            for c in (sim.pod("loco-emulator-0") or {}).get("status", {}).get("conditions", [])
        ),
        what="explicitly unready",
    )
    sim.set_ready("loco-emulator-0", True)  # a test may still force it
    sim.wait_for(lambda: _ready(sim, "loco-emulator-0") is True, what="forced ready")
