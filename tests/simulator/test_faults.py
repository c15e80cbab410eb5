"""Fault injection: latency, error responses, dropped watches, expiry, the API down."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.kubesim import KubeSim

NS = "loco"


def _v1(api: Any) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def _timed(fn: Any) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def test_latency_on_chosen_paths_only(kubesim: KubeSim, k8s_api_client: Any) -> None:
    v1 = _v1(k8s_api_client)
    v1.read_namespace(NS)  # connect (TLS handshake) before timing anything
    fault = kubesim.add_latency(0.5, path=r"/pods(\?|$)")
    assert _timed(lambda: v1.list_namespaced_pod(NS)) >= 0.5
    # Generous bound: other suites may load the machine; undelayed requests take ~3 ms.
    assert _timed(lambda: v1.read_namespace(NS)) < 0.5
    kubesim.remove_fault(fault)
    assert _timed(lambda: v1.list_namespaced_pod(NS)) < 0.5


def test_5xx_for_a_number_of_requests_then_recovery(kubesim: KubeSim, k8s_api_client: Any) -> None:
    v1 = _v1(k8s_api_client)
    kubesim.add_error(500, path="/pods", methods=["GET"], count=2)
    for _ in range(2):
        with pytest.raises(ApiException) as exc:
            v1.list_namespaced_pod(NS)
        assert exc.value.status == 500
        assert json.loads(exc.value.body)["reason"] == "InternalError"
    assert len(v1.list_namespaced_pod(NS).items) == 3

    kubesim.add_error(503, path="/pods/loco-emulator-0$")
    with pytest.raises(ApiException) as unavailable:
        v1.read_namespaced_pod("loco-emulator-0", NS)
    assert unavailable.value.status == 503
    assert json.loads(unavailable.value.body)["reason"] == "ServiceUnavailable"
    assert len(v1.list_namespaced_pod(NS).items) == 3, "only the chosen path fails"
    kubesim.clear_faults()
    assert v1.read_namespaced_pod("loco-emulator-0", NS).metadata.name == "loco-emulator-0"


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_api_down_refuses_connections_then_comes_back(kubesim: KubeSim) -> None:
    configuration = client.Configuration()
    configuration.host = kubesim.url
    configuration.ssl_ca_cert = str(kubesim.ca_file())
    configuration.api_key = {"authorization": kubesim.admin.token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.retries = False  # see the refusal itself, not urllib3's retry loop
    api = client.ApiClient(configuration)
    v1 = _v1(api)
    assert len(v1.list_namespaced_pod(NS).items) == 3  # a kept-alive connection exists now

    with kubesim.outage():
        assert not kubesim.is_up
        assert _refused(kubesim.port)
        with pytest.raises(urllib3.exceptions.HTTPError):
            v1.list_namespaced_pod(NS)
        # The cluster keeps running while the API is unreachable, as a real one does.
        kubesim.delete_pod("loco-emulator-0")

    assert not _refused(kubesim.port)
    assert kubesim.wait_pods_ready(3)
    assert len(v1.list_namespaced_pod(NS).items) == 3
    api.close()


def test_api_down_resets_open_watches(kubesim: KubeSim) -> None:
    headers = {"Authorization": f"Bearer {kubesim.admin.token}"}
    with (
        httpx.Client(verify=kubesim.ssl_context(), timeout=10) as http,
        http.stream(
            "GET", kubesim.url + "/api/v1/namespaces/loco/pods?watch=true", headers=headers
        ) as resp,
    ):
        lines = resp.iter_lines()
        assert json.loads(next(lines))["type"] == "ADDED"
        kubesim.down()
        try:
            with pytest.raises(httpx.HTTPError):
                for _ in lines:
                    pass
        finally:
            kubesim.up()


def test_dropped_watch_ends_the_stream(kubesim: KubeSim, k8s_api_client: Any) -> None:
    v1 = _v1(k8s_api_client)
    seen: list[str] = []
    start = time.monotonic()
    # timeout_seconds also tells the Watch helper not to re-establish the stream itself.
    for ev in watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=20):
        seen.append(ev["type"])
        if len(seen) == 3:
            assert kubesim.drop_watches() == 1
    assert seen == ["ADDED"] * 3
    assert time.monotonic() - start < 5
    kubesim.wait_for(lambda: kubesim.open_streams() == 0, what="stream bookkeeping")


def test_expire_resource_versions_then_relist_recovers(
    kubesim: KubeSim, k8s_api_client: Any
) -> None:
    v1 = _v1(k8s_api_client)
    rv = v1.list_namespaced_pod(NS).metadata.resource_version
    kubesim.expire_resource_versions()
    with pytest.raises(ApiException) as exc:
        for _ in watch.Watch().stream(
            v1.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=5
        ):
            pass
    assert exc.value.status == 410
    # The informer pattern: re-list, then watch from the new version.
    rv2 = v1.list_namespaced_pod(NS).metadata.resource_version
    kubesim.delete_pod("loco-emulator-1", grace_seconds=0)
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_pod, NS, resource_version=rv2, timeout_seconds=5):
        if ev["type"] == "DELETED":
            assert ev["object"].metadata.name == "loco-emulator-1"
            w.stop()
