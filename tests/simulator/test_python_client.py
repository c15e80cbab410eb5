"""The official Python client against the simulator: the calls the backend and TUI make."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.kubesim import KubeSim, Timing

NS = "loco"
DISCOVERY = "app.kubernetes.io/component=emulator,app.kubernetes.io/part-of=lego-loco-cluster"


def _core(api: Any) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def _names(pod_list: Any) -> list[str]:
    return [p.metadata.name for p in pod_list.items]


def _standalone_pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }


def test_list_pods_with_label_selectors(kubesim: KubeSim, k8s_api_client: Any) -> None:
    v1 = _core(k8s_api_client)
    v1.create_namespaced_pod(
        NS,
        _standalone_pod("loco-backend-x", {"app.kubernetes.io/component": "backend", "tier": "3"}),
    )
    emulators = [f"loco-emulator-{i}" for i in range(3)]
    cases = {
        DISCOVERY: emulators,
        "app.kubernetes.io/component==emulator": emulators,
        "app.kubernetes.io/component!=emulator": ["loco-backend-x"],
        "app.kubernetes.io/component in (emulator, backend)": [*emulators, "loco-backend-x"],
        "app.kubernetes.io/component notin (emulator)": ["loco-backend-x"],
        "tier": ["loco-backend-x"],
        "!tier": emulators,
        "tier>2": ["loco-backend-x"],
        "statefulset.kubernetes.io/pod-name=loco-emulator-1": ["loco-emulator-1"],
    }
    for selector, expected in cases.items():
        got = sorted(_names(v1.list_namespaced_pod(NS, label_selector=selector)))
        assert got == sorted(expected), selector
    with pytest.raises(ApiException) as exc:
        v1.list_namespaced_pod(NS, label_selector="a in (b")
    assert exc.value.status == 400
    assert "unable to parse requirement" in json.loads(exc.value.body)["message"]


def test_list_pods_with_field_selectors(kubesim: KubeSim, k8s_api_client: Any) -> None:
    v1 = _core(k8s_api_client)
    pod1 = kubesim.pod("loco-emulator-1")
    assert pod1 is not None
    assert _names(v1.list_namespaced_pod(NS, field_selector="metadata.name=loco-emulator-1")) == [
        "loco-emulator-1"
    ]
    assert len(v1.list_namespaced_pod(NS, field_selector="status.phase=Running").items) == 3
    assert len(v1.list_namespaced_pod(NS, field_selector="status.phase!=Running").items) == 0
    on_node = v1.list_namespaced_pod(NS, field_selector=f"spec.nodeName={pod1['spec']['nodeName']}")
    assert "loco-emulator-1" in _names(on_node)
    assert len(v1.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={NS}").items) == 3
    with pytest.raises(ApiException) as exc:
        v1.list_namespaced_pod(NS, field_selector="spec.bogus=1")
    assert exc.value.status == 400
    assert json.loads(exc.value.body)["message"] == "field label not supported: spec.bogus"


def test_pod_facts_the_backend_reads(kubesim: KubeSim, k8s_api_client: Any) -> None:
    pod = _core(k8s_api_client).read_namespaced_pod("loco-emulator-0", NS)
    assert pod.status.phase == "Running"
    assert re.fullmatch(r"10\.244\.\d+\.\d+", pod.status.pod_ip)
    assert pod.status.host_ip and pod.spec.node_name.startswith("kubesim-node-")
    conditions = {c.type: c.status for c in pod.status.conditions}
    assert conditions["Ready"] == "True" and conditions["PodScheduled"] == "True"
    cs = pod.status.container_statuses[0]
    assert (cs.name, cs.ready, cs.restart_count) == ("emulator", True, 0)
    assert cs.state.running.started_at is not None
    assert pod.metadata.labels["app.kubernetes.io/name"] == "lego-loco-emulator"
    assert pod.metadata.owner_references[0].kind == "StatefulSet"


def test_list_pagination_and_expired_continue(kubesim: KubeSim, k8s_api_client: Any) -> None:
    v1 = _core(k8s_api_client)
    page1 = v1.list_namespaced_pod(NS, limit=2)
    assert _names(page1) == ["loco-emulator-0", "loco-emulator-1"]
    assert page1.metadata.remaining_item_count == 1
    page2 = v1.list_namespaced_pod(NS, limit=2, _continue=page1.metadata._continue)
    assert _names(page2) == ["loco-emulator-2"] and not page2.metadata._continue
    kubesim.expire_resource_versions()
    with pytest.raises(ApiException) as exc:
        v1.list_namespaced_pod(NS, limit=2, _continue=page1.metadata._continue)
    assert exc.value.status == 410
    assert json.loads(exc.value.body)["reason"] == "Expired"


def test_watch_from_resource_version_with_bookmarks(kubesim_factory: Any) -> None:
    sim: KubeSim = kubesim_factory(namespace=NS, emulators=2, timing=Timing(bookmark_interval=0.1))
    sim.wait_pods_ready(2)
    api = sim.api_client()
    v1 = _core(api)
    rv = v1.list_namespaced_pod(NS, label_selector=DISCOVERY).metadata.resource_version
    sim.delete_pod("loco-emulator-0")
    seen: list[tuple[str, str | None]] = []
    bookmark_rv = None
    w = watch.Watch()
    for ev in w.stream(
        v1.list_namespaced_pod,
        NS,
        label_selector=DISCOVERY,
        resource_version=rv,
        allow_watch_bookmarks=True,
        timeout_seconds=10,
    ):
        seen.append((ev["type"], ev["raw_object"]["metadata"].get("name")))
        if ev["type"] == "BOOKMARK":
            bookmark_rv = ev["raw_object"]["metadata"]["resourceVersion"]
            if ("DELETED", "loco-emulator-0") in seen and sum(t == "ADDED" for t, _ in seen):
                w.stop()
    types = [t for t, _ in seen]
    assert types.index("MODIFIED") < types.index("DELETED") < types.index("ADDED")
    assert all(name in (None, "loco-emulator-0") for _, name in seen)
    assert bookmark_rv is not None and int(bookmark_rv) >= int(rv)
    api.close()


def test_watch_reports_objects_leaving_the_selection_as_deleted(
    kubesim: KubeSim, k8s_api_client: Any
) -> None:
    v1 = _core(k8s_api_client)
    rv = v1.list_namespaced_pod(NS, label_selector=DISCOVERY).metadata.resource_version
    v1.patch_namespaced_pod(
        "loco-emulator-1", NS, {"metadata": {"labels": {"app.kubernetes.io/component": "retired"}}}
    )
    events = []
    w = watch.Watch()
    for ev in w.stream(
        v1.list_namespaced_pod, NS, label_selector=DISCOVERY, resource_version=rv, timeout_seconds=5
    ):
        events.append((ev["type"], ev["object"].metadata.name))
        if ev["type"] == "DELETED":
            w.stop()
    # The pod still exists, but it left the selection: a selector-filtered watch says DELETED.
    assert events == [("DELETED", "loco-emulator-1")]
    assert kubesim.pod("loco-emulator-1") is not None


def test_watch_without_resource_version_starts_with_current_state(
    kubesim: KubeSim, k8s_api_client: Any
) -> None:
    v1 = _core(k8s_api_client)
    started = time.monotonic()
    events = [
        (ev["type"], ev["object"].metadata.name)
        for ev in watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=1)
    ]
    assert events == [("ADDED", f"loco-emulator-{i}") for i in range(3)]
    assert 0.9 <= time.monotonic() - started < 5  # timeoutSeconds ends the stream


def test_watch_list_initial_events_end_with_a_marked_bookmark(kubesim: KubeSim) -> None:
    """client-go's WatchList mode: sendInitialEvents=true streams the state, then a BOOKMARK
    annotated k8s.io/initial-events-end, then live changes."""
    params = {
        "watch": "true",
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "5",
    }
    headers = {"Authorization": f"Bearer {kubesim.admin.token}"}
    url = kubesim.url + "/api/v1/namespaces/loco/pods"
    events: list[dict[str, Any]] = []
    with (
        httpx.Client(verify=kubesim.ssl_context(), timeout=10) as http,
        http.stream("GET", url, params=params, headers=headers) as resp,
    ):
        for line in resp.iter_lines():
            events.append(json.loads(line))
            if events[-1]["type"] == "BOOKMARK":
                break
    assert [e["type"] for e in events] == ["ADDED"] * 3 + ["BOOKMARK"]
    marker = events[-1]["object"]["metadata"]
    assert marker["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(marker["resourceVersion"]) >= max(
        int(e["object"]["metadata"]["resourceVersion"]) for e in events[:3]
    )


def test_expired_resource_version_gives_410(kubesim: KubeSim, k8s_api_client: Any) -> None:
    v1 = _core(k8s_api_client)
    rv = v1.list_namespaced_pod(NS).metadata.resource_version
    kubesim.expire_resource_versions()
    with pytest.raises(ApiException) as exc:
        for _ in watch.Watch().stream(v1.list_namespaced_pod, NS, resource_version=rv):
            pass
    assert exc.value.status == 410
    assert f"too old resource version: {rv}" in exc.value.reason

    # On the wire: HTTP 200 and one ERROR event carrying a 410 Status, as the watch cache does.
    resp = v1.list_namespaced_pod(NS, watch=True, resource_version=rv, _preload_content=False)
    lines = [json.loads(line) for line in resp.data.decode().splitlines()]
    assert resp.status == 200 and len(lines) == 1
    assert lines[0]["type"] == "ERROR"
    assert lines[0]["object"]["code"] == 410 and lines[0]["object"]["reason"] == "Expired"
    # A fresh list hands out a usable version again.
    fresh = v1.list_namespaced_pod(NS).metadata.resource_version
    with pytest.raises(ApiException) as exact:
        v1.list_namespaced_pod(NS, resource_version=rv, resource_version_match="Exact")
    assert exact.value.status == 410
    assert int(fresh) > int(rv)


def test_patch_statefulset_rolls_pods(kubesim: KubeSim, k8s_api_client: Any) -> None:
    apps = client.AppsV1Api(k8s_api_client)
    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in kubesim.pods()}
    patched = apps.patch_namespaced_stateful_set(
        "loco-emulator",
        NS,
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}
                }
            }
        },
    )
    assert patched.metadata.generation == 2
    assert patched.spec.template.spec.containers[0].name == "emulator"  # strategic merge kept it

    def rolled() -> bool:
        sts = apps.read_namespaced_stateful_set("loco-emulator", NS)
        s = sts.status
        return bool(
            s.observed_generation == 2
            and s.updated_replicas == 3
            and s.ready_replicas == 3
            and s.current_revision == s.update_revision
        )

    kubesim.wait_for(rolled, timeout=10, what="rolling restart")
    after = {p["metadata"]["name"]: p["metadata"]["uid"] for p in kubesim.pods()}
    assert all(after[n] != before[n] for n in before)

    # Merge patch scales down; JSON patch changes the image; both are real patch types.
    # (the client picks strategic merge for dict bodies, so send the others raw)
    scaled = _raw_patch(
        kubesim,
        "/apis/apps/v1/namespaces/loco/statefulsets/loco-emulator",
        "application/merge-patch+json",
        {"spec": {"replicas": 1}},
    )
    assert scaled["spec"]["replicas"] == 1
    kubesim.wait_for(lambda: [p["metadata"]["name"] for p in kubesim.pods()] == ["loco-emulator-0"])
    ops = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "loco:2"}]
    imaged = _raw_patch(
        kubesim,
        "/apis/apps/v1/namespaces/loco/statefulsets/loco-emulator",
        "application/json-patch+json",
        ops,
    )
    assert imaged["spec"]["template"]["spec"]["containers"][0]["image"] == "loco:2"
    kubesim.wait_for(
        lambda: (
            (p := kubesim.pod("loco-emulator-0")) is not None
            and p["spec"]["containers"][0]["image"] == "loco:2"
        ),
        what="pod with the new image",
    )


def _raw_patch(sim: KubeSim, path: str, content_type: str, body: Any) -> dict[str, Any]:
    resp = httpx.patch(
        sim.url + path,
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {sim.admin.token}", "Content-Type": content_type},
        verify=sim.ssl_context(),
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_list_events_for_a_pod(kubesim: KubeSim, k8s_api_client: Any) -> None:
    v1 = _core(k8s_api_client)
    v1.delete_namespaced_pod("loco-emulator-0", NS)
    kubesim.wait_for(
        lambda: any(e["reason"] == "Killing" for e in kubesim.events("loco-emulator-0")),
        what="Killing event",
    )
    evs = v1.list_namespaced_event(
        NS, field_selector="involvedObject.name=loco-emulator-0,involvedObject.kind=Pod"
    )
    reasons = [e.reason for e in evs.items]
    assert reasons[:5] == ["Scheduled", "Pulled", "Created", "Started", "Killing"]
    killing = next(e for e in evs.items if e.reason == "Killing")
    assert killing.message == "Stopping container emulator"
    assert killing.source.component == "kubelet" and killing.type == "Normal"
    assert killing.involved_object.field_path == "spec.containers{emulator}"
    warnings = v1.list_namespaced_event(NS, field_selector="type=Warning")
    assert warnings.items == []


def test_graceful_delete_then_new_instance(kubesim: KubeSim, k8s_api_client: Any) -> None:
    v1 = _core(k8s_api_client)
    old = v1.read_namespaced_pod("loco-emulator-1", NS)
    deleted = v1.delete_namespaced_pod("loco-emulator-1", NS)
    assert deleted.metadata.deletion_timestamp is not None
    assert deleted.metadata.deletion_grace_period_seconds == 30

    def replaced() -> Any:
        try:
            pod = v1.read_namespaced_pod("loco-emulator-1", NS)
        except ApiException as exc:
            assert exc.status == 404
            return None
        ready = {c.type: c.status for c in pod.status.conditions or []}.get("Ready") == "True"
        return pod if pod.metadata.uid != old.metadata.uid and ready else None

    new = kubesim.wait_for(replaced, what="replacement pod")
    assert new.status.container_statuses[0].restart_count == 0
    with pytest.raises(ApiException) as exc:
        v1.read_namespaced_pod("loco-emulator-9", NS)
    assert exc.value.status == 404
    assert json.loads(exc.value.body)["message"] == 'pods "loco-emulator-9" not found'


def test_rbac_denials_and_missing_token(kubesim: KubeSim) -> None:
    ro = kubesim.api_client(kubesim.readonly)
    v1 = _core(ro)
    assert len(v1.list_namespaced_pod(NS).items) == 3
    assert v1.read_namespaced_pod("loco-emulator-0", NS).metadata.name == "loco-emulator-0"
    with pytest.raises(ApiException) as exc:
        v1.delete_namespaced_pod("loco-emulator-0", NS)
    assert exc.value.status == 403
    body = json.loads(exc.value.body)
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'pods "loco-emulator-0" is forbidden: User "kubesim-readonly" cannot delete resource '
        '"pods" in API group "" in the namespace "loco"'
    )
    with pytest.raises(ApiException) as patch_exc:
        client.AppsV1Api(ro).patch_namespaced_stateful_set(
            "loco-emulator", NS, {"spec": {"replicas": 1}}
        )
    assert patch_exc.value.status == 403
    ro.close()

    anon = httpx.get(kubesim.url + "/api/v1/namespaces/loco/pods", verify=kubesim.ssl_context())
    assert anon.status_code == 401
    assert anon.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_namespaces_and_discovery(kubesim: KubeSim, k8s_api_client: Any) -> None:
    v1 = _core(k8s_api_client)
    names = [n.metadata.name for n in v1.list_namespace().items]
    assert "loco" in names and "default" in names
    assert v1.read_namespace("loco").status.phase == "Active"
    version = client.VersionApi(k8s_api_client).get_code()
    assert (version.major, version.minor) == ("1", "32")
    headers = {"Authorization": f"Bearer {kubesim.admin.token}"}
    verify = kubesim.ssl_context()
    aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    agg = httpx.get(
        kubesim.url + "/apis",
        headers={**headers, "Accept": f"{aggregated},application/json"},
        verify=verify,
    )
    assert agg.headers["content-type"] == aggregated
    assert agg.json()["items"][0]["versions"][0]["resources"][0]["resource"] == "statefulsets"
    legacy = httpx.get(kubesim.url + "/api/v1", headers=headers, verify=verify).json()
    assert {"pods", "pods/status", "events", "namespaces"} <= {
        r["name"] for r in legacy["resources"]
    }


def test_write_errors_match_the_api_server(kubesim: KubeSim, k8s_api_client: Any) -> None:
    v1 = _core(k8s_api_client)
    apps = client.AppsV1Api(k8s_api_client)
    sts = apps.read_namespaced_stateful_set("loco-emulator", NS)
    sts.spec.replicas = 2
    apps.replace_namespaced_stateful_set("loco-emulator", NS, sts)  # rv matches: accepted
    with pytest.raises(ApiException) as stale:
        apps.replace_namespaced_stateful_set("loco-emulator", NS, sts)  # same rv again: stale
    assert stale.value.status == 409
    assert json.loads(stale.value.body)["message"].startswith(
        'Operation cannot be fulfilled on statefulsets.apps "loco-emulator": '
        "the object has been modified"
    )
    with pytest.raises(ApiException) as frozen:
        v1.patch_namespaced_pod("loco-emulator-0", NS, {"spec": {"restartPolicy": "Never"}})
    assert frozen.value.status == 422
    assert (
        "pod updates may not change fields other than" in json.loads(frozen.value.body)["message"]
    )
    image = v1.patch_namespaced_pod(
        "loco-emulator-0", NS, {"spec": {"containers": [{"name": "emulator", "image": "loco:9"}]}}
    )
    assert image.spec.containers[0].image == "loco:9"
    with pytest.raises(ApiException) as no_ns:
        v1.create_namespaced_pod("nowhere", _standalone_pod("p", {}))
    assert no_ns.value.status == 404
    assert json.loads(no_ns.value.body)["message"] == 'namespaces "nowhere" not found'
    with pytest.raises(ApiException) as dup:
        v1.create_namespaced_pod(NS, _standalone_pod("loco-emulator-1", {}))
    assert dup.value.status == 409
    assert json.loads(dup.value.body)["reason"] == "AlreadyExists"
