"""The console's look before it opens: it waits only for what can stop it from opening."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from locotui.console import _preflight
from locotui.data.errors import Unreachable
from tests.support.console import ui_settings


@contextmanager
def silent_backend() -> Iterator[str]:
    """A backend that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


class Cluster:
    server = "https://cluster.example:6443"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.closed = False

    async def list_pods(self) -> list[Any]:
        if self.error is not None:
            raise self.error
        return []

    async def aclose(self) -> None:
        self.closed = True


def test_pods_listed_is_enough_to_open_whatever_the_backend_does() -> None:
    kube = Cluster()
    with silent_backend() as url:
        # Guards the test against hanging; what is checked is the answer.
        backend, cluster = asyncio.run(asyncio.wait_for(_preflight(ui_settings(url), kube), 30))
    assert (backend, cluster) == (None, None), "the backend's verdict was not needed"
    assert kube.closed


def test_without_a_cluster_the_backend_is_not_waited_for() -> None:
    with silent_backend() as url:
        assert asyncio.run(asyncio.wait_for(_preflight(ui_settings(url), None), 30)) == (
            None,
            None,
        )


def test_both_verdicts_when_the_cluster_fails() -> None:
    kube = Cluster(Unreachable("Kubernetes API unreachable: connection refused"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        backend, cluster = asyncio.run(_preflight(ui_settings(url), kube))
    assert backend is not None and "unreachable" in backend
    assert cluster is not None and "connection refused" in cluster
