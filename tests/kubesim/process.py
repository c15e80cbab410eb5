"""Run the simulator as a separate process (``python -m tests.kubesim``) and drive it
through its /_sim admin endpoints. Use this when the simulator must outlive or be
isolated from the test process; in-process ``KubeSim`` is simpler and faster otherwise."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


class KubeSimProcess:
    def __init__(
        self,
        kubeconfig: str | os.PathLike[str],
        namespace: str = "loco",
        emulators: int = 3,
        port: int = 0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.argv = [
            sys.executable,
            "-m",
            "tests.kubesim",
            "--port",
            str(port),
            "--kubeconfig-out",
            str(self.kubeconfig),
            "--namespace",
            namespace,
            "--emulators",
            str(emulators),
            *extra_args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._ca: Path | None = None

    def start(self, timeout: float = 15.0) -> KubeSimProcess:
        self.kubeconfig.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            self.argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        # The kubeconfig is written (atomically) only once the port listens.
        while not self.kubeconfig.exists():
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"kubesim exited with {self.proc.returncode}: {err}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("kubesim did not write its kubeconfig in time")
            time.sleep(0.02)
        config = yaml.safe_load(self.kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.url = cluster["server"]
        if "certificate-authority-data" in cluster:
            self._ca = self.kubeconfig.with_name(self.kubeconfig.name + ".ca.crt")
            self._ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        return self

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call a /_sim endpoint, e.g. ``admin("POST", "/_sim/expire")``."""
        verify: Any = ssl.create_default_context(cafile=str(self._ca)) if self._ca else True
        return httpx.request(method, self.url + path, verify=verify, timeout=10, **kwargs)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def __enter__(self) -> KubeSimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
