"""Ready-made pytest fixtures. Import the ones you need into a test module (or list this
module in a conftest's ``pytest_plugins``):

    from tests.kubesim.fixtures import kubectl, kubesim, kubesim_factory  # noqa: F401

* ``kubesim``          a running KubeSim: namespace "loco", StatefulSet ``loco-emulator``
                       with 3 Ready pods, kubeconfig in tmp_path (function scope).
* ``kubesim_factory``  ``make(**KubeSim kwargs) -> KubeSim``, started, stopped at teardown.
* ``kubectl``          ``run(*args, token=None, timeout=20) -> CompletedProcess[str]``
                       running the real kubectl against ``kubesim`` (skips without kubectl).
* ``k8s_api_client``   an official-client ``ApiClient`` for ``kubesim`` (admin token).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kubesim.auth import Token
from tests.kubesim.sim import KubeSim

KubectlRunner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def kubesim(tmp_path: Path) -> Iterator[KubeSim]:
    with KubeSim(namespace="loco", emulators=3, kubeconfig=tmp_path / "kubeconfig") as sim:
        sim.wait_pods_ready(3)
        yield sim


@pytest.fixture
def kubesim_factory(tmp_path: Path) -> Iterator[Callable[..., KubeSim]]:
    started: list[KubeSim] = []

    def make(**kwargs: Any) -> KubeSim:
        kwargs.setdefault("kubeconfig", tmp_path / f"kubeconfig-{len(started)}")
        sim = KubeSim(**kwargs).start()
        started.append(sim)
        return sim

    yield make
    for sim in reversed(started):
        sim.stop()


def kubectl_runner(sim: KubeSim, cache_dir: Path) -> KubectlRunner:
    """A function running the real kubectl against ``sim`` (for custom fixtures)."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed")
    env = sim.env(cache_dir=cache_dir)

    def run(
        *args: str, token: Token | None = None, timeout: float = 20.0
    ) -> subprocess.CompletedProcess[str]:
        argv = [binary, *args]
        if token is not None:
            argv += ["--context", sim.context_for(token)]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture
def kubectl(kubesim: KubeSim, tmp_path: Path) -> KubectlRunner:
    return kubectl_runner(kubesim, tmp_path / "kubectl-cache")


@pytest.fixture
def k8s_api_client(kubesim: KubeSim) -> Iterator[Any]:
    client = kubesim.api_client()
    try:
        yield client
    finally:
        client.close()
