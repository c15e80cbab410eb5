"""Things the backend asks of the Kubernetes API besides discovery: restarts and logs.

Calls are blocking (official client) and run in worker threads, through the same circuit
breaker as discovery, so an unreachable API fails fast instead of piling up threads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client as k8s_client

from backend.breaker import TargetBreaker

LOG_LIMIT = 16 * 1024 * 1024


class KubeActions:
    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        breaker: TargetBreaker,
        request_timeout: float = 10.0,
    ) -> None:
        self.core = k8s_client.CoreV1Api(api_client)
        self.breaker = breaker
        self.request_timeout = request_timeout

    async def delete_pod(self, namespace: str, name: str) -> None:
        """Deletes the pod with its normal grace period; its StatefulSet recreates it."""

        def call() -> Any:
            resp = self.core.delete_namespaced_pod(
                name,
                namespace,
                _preload_content=False,
                _request_timeout=self.request_timeout,
            )
            resp.release_conn()

        await self.breaker.call(lambda: asyncio.to_thread(call))

    async def pod_log_tail(self, namespace: str, name: str, tail: int) -> str:
        """The last ``tail`` lines of the pod's (first) container log."""

        def call() -> str:
            resp = self.core.read_namespaced_pod_log(
                name,
                namespace,
                tail_lines=tail,
                # The API server stops there, so a pod with megabyte lines cannot make the
                # backend hold more than this.
                limit_bytes=LOG_LIMIT,
                _preload_content=False,
                _request_timeout=self.request_timeout,
            )
            try:
                return resp.data.decode("utf-8", errors="replace")
            finally:
                resp.release_conn()

        return await self.breaker.call(lambda: asyncio.to_thread(call))
