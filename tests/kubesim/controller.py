"""The simulated control plane and kubelet: StatefulSet controller, scheduler, pod lifecycle.

Real behaviour reproduced (in compressed time, see Timing):
  * a pod goes Pending -> scheduled -> Running (not ready) -> Ready, recording the
    Scheduled/Pulled/Created/Started events and filling podIP, hostIP, nodeName,
    containerStatuses (restartCount, startedAt) and conditions;
  * a graceful delete marks the pod Terminating (Killing event), then removes it;
  * the StatefulSet controller recreates missing pods (new uid), scales, and rolls pods
    whose template revision is outdated one at a time in reverse ordinal order, waiting
    for each replacement to be Running and Ready (``kubectl rollout restart``);
  * deleting a StatefulSet garbage-collects its pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import secrets
import time

from tests.kubesim import manifests
from tests.kubesim.objects import Obj, now_rfc3339
from tests.kubesim.store import ADDED, DELETED, Change, Store, StoreError
from tests.kubesim.timing import Timing

log = logging.getLogger(__name__)

PODS = "pods"
STS = "apps/statefulsets"
EVENTS = "events"
REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
NODES = ("kubesim-node-1", "kubesim-node-2", "kubesim-node-3")


def _set_condition(
    pod: Obj, type_: str, status: bool, reason: str | None = None, message: str | None = None
) -> None:
    conds: list[Obj] = pod.setdefault("status", {}).setdefault("conditions", [])
    value = "True" if status else "False"
    existing = next((c for c in conds if c["type"] == type_), None)
    if existing is None:
        existing = {"type": type_, "lastProbeTime": None}
        conds.append(existing)
    if existing.get("status") != value:
        existing["lastTransitionTime"] = now_rfc3339()
    existing["status"] = value
    for k, v in (("reason", reason), ("message", message)):
        if v is None:
            existing.pop(k, None)
        else:
            existing[k] = v


def _is_ready(pod: Obj) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


def _healthy(pod: Obj) -> bool:
    return (
        pod.get("status", {}).get("phase") == "Running"
        and _is_ready(pod)
        and not pod["metadata"].get("deletionTimestamp")
    )


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    # Real hashes are short alphanumerics (fnv32 rendered safe); ten hex digits look alike.
    return digest[:10]


class Cluster:
    """Owns every simulated moving part. Runs on the simulator loop only."""

    def __init__(self, store: Store, timing: Timing) -> None:
        self.store = store
        self.timing = timing
        self.ready_override: dict[tuple[str, str], bool] = {}
        self._tasks: dict[str, set[asyncio.Task[None]]] = {}  # by pod uid
        self._pending_reconcile: set[tuple[str, str]] = set()
        self._next_node = 0
        self._next_ip = 0
        self._bg: set[asyncio.Task[None]] = set()
        store.add_listener(self._on_change)

    # --- change dispatch --------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        # Listeners run inside the store's write; defer all work to the next loop turn so
        # no write nests inside another.
        loop = asyncio.get_running_loop()
        if change.resource == PODS:
            loop.call_soon(self._on_pod_change, change)
        elif change.resource == STS:
            meta = change.obj["metadata"]
            if change.type == DELETED:
                loop.call_soon(self._garbage_collect, meta["namespace"], meta["uid"])
            else:
                self.kick(meta["namespace"], meta["name"])

    def _on_pod_change(self, change: Change) -> None:
        meta = change.obj["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        if change.type == ADDED:
            self._spawn(uid, self._run_pod(ns, name, uid))
        elif change.type == DELETED:
            self._cancel_tasks(uid)
        elif meta.get("deletionTimestamp") and not (change.old or {}).get("metadata", {}).get(
            "deletionTimestamp"
        ):
            self._cancel_tasks(uid)
            grace = int(meta.get("deletionGracePeriodSeconds") or 0)
            self._spawn(uid, self._terminate(ns, name, uid, grace))
        for ref in meta.get("ownerReferences") or []:
            if ref.get("kind") == "StatefulSet":
                self.kick(ns, ref["name"])

    def _spawn(self, uid: str, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.setdefault(uid, set()).add(task)
        task.add_done_callback(lambda t: self._tasks.get(uid, set()).discard(t))

    def _cancel_tasks(self, uid: str) -> None:
        for t in self._tasks.pop(uid, set()):
            t.cancel()

    # --- kubelet ----------------------------------------------------------------------

    def _current(self, ns: str, name: str, uid: str) -> Obj | None:
        pod = self.store.get(PODS, ns, name)
        if pod is None or pod["metadata"]["uid"] != uid:
            return None
        return pod

    def record(self, involved: Obj, reason: str, message: str, **kw: object) -> None:
        try:
            self.store.create(EVENTS, manifests.event(involved, reason, message, **kw))  # type: ignore[arg-type]
        except StoreError:  # pragma: no cover - a name clash only drops one event
            log.debug("event name clash for %s", reason)

    def _pick_node(self) -> str:
        node = NODES[self._next_node % len(NODES)]
        self._next_node += 1
        return node

    def _alloc_ip(self, node: str) -> str:
        self._next_ip += 1
        return f"10.244.{NODES.index(node) + 1 if node in NODES else 9}.{self._next_ip % 250 + 2}"

    async def _run_pod(self, ns: str, name: str, uid: str) -> None:
        t = self.timing
        await asyncio.sleep(t.schedule)
        pod = self._current(ns, name, uid)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        spec, status = pod["spec"], pod.setdefault("status", {})
        node = spec.get("nodeName") or self._pick_node()
        spec["nodeName"] = node
        status.update(
            phase="Pending",
            hostIP=f"192.168.49.{NODES.index(node) + 2 if node in NODES else 9}",
        )
        status["hostIPs"] = [{"ip": status["hostIP"]}]
        status["startTime"] = now_rfc3339()
        _set_condition(pod, "PodScheduled", True)
        _set_condition(pod, "PodReadyToStartContainers", False)
        _set_condition(pod, "Initialized", True)
        not_ready = (
            f"containers with unready status: [{', '.join(c['name'] for c in spec['containers'])}]"
        )
        _set_condition(pod, "Ready", False, "ContainersNotReady", not_ready)
        _set_condition(pod, "ContainersReady", False, "ContainersNotReady", not_ready)
        status["containerStatuses"] = [
            {
                "name": c["name"],
                "state": {"waiting": {"reason": "ContainerCreating"}},
                "lastState": {},
                "ready": False,
                "restartCount": 0,
                "image": c.get("image", ""),
                "imageID": "",
                "started": False,
            }
            for c in spec["containers"]
        ]
        status.setdefault("qosClass", "BestEffort")
        pod = self.store.update(PODS, pod)
        self.record(
            pod,
            "Scheduled",
            f"Successfully assigned {ns}/{name} to {node}",
            component="default-scheduler",
        )

        await asyncio.sleep(t.start)
        pod = self._current(ns, name, uid)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        for c in pod["spec"]["containers"]:
            fp = f"spec.containers{{{c['name']}}}"
            self.record(
                pod,
                "Pulled",
                f'Container image "{c.get("image", "")}" already present on machine',
                host=node,
                field_path=fp,
            )
            self.record(pod, "Created", f"Created container {c['name']}", host=node, field_path=fp)
        self._start_containers(pod)
        pod = self.store.update(PODS, pod)
        for c in pod["spec"]["containers"]:
            fp = f"spec.containers{{{c['name']}}}"
            self.record(pod, "Started", f"Started container {c['name']}", host=node, field_path=fp)

        await asyncio.sleep(t.ready)
        self.apply_readiness(ns, name)

    def _start_containers(self, pod: Obj) -> None:
        status = pod["status"]
        node = pod["spec"]["nodeName"]
        ip = self._alloc_ip(node)
        status.update(phase="Running", podIP=ip, podIPs=[{"ip": ip}])
        _set_condition(pod, "PodReadyToStartContainers", True)
        started = now_rfc3339()
        for cs in status.get("containerStatuses") or []:
            cs["state"] = {"running": {"startedAt": started}}
            cs["started"] = True
            cs["ready"] = False
            cs["containerID"] = f"containerd://{secrets.token_hex(32)}"
            cs["imageID"] = (
                f"{cs['image']}@sha256:{hashlib.sha256(cs['image'].encode()).hexdigest()}"
            )

    def apply_readiness(self, ns: str, name: str) -> None:
        """Set Ready from the override, else True."""
        pod = self.store.get(PODS, ns, name)
        if pod is None or pod.get("status", {}).get("phase") != "Running":
            return
        if pod["metadata"].get("deletionTimestamp"):
            return
        statuses = pod["status"].get("containerStatuses") or []
        if any("running" not in cs.get("state", {}) for cs in statuses):
            return
        ready = self.ready_override.get((ns, name), True)
        for cs in statuses:
            cs["ready"] = ready
        names = ", ".join(cs["name"] for cs in statuses)
        reason = None if ready else "ContainersNotReady"
        message = None if ready else f"containers with unready status: [{names}]"
        _set_condition(pod, "ContainersReady", ready, reason, message)
        _set_condition(pod, "Ready", ready, reason, message)
        self.store.update(PODS, pod)

    async def _terminate(self, ns: str, name: str, uid: str, grace: int) -> None:
        pod = self._current(ns, name, uid)
        if pod is None:
            return
        node = pod["spec"].get("nodeName")
        for c in pod["spec"]["containers"]:
            self.record(
                pod,
                "Killing",
                f"Stopping container {c['name']}",
                host=node,
                field_path=f"spec.containers{{{c['name']}}}",
            )
        await asyncio.sleep(min(float(grace), self.timing.terminate))
        pod = self._current(ns, name, uid)
        if pod is None:
            return
        finished = now_rfc3339()
        for cs in pod.get("status", {}).get("containerStatuses") or []:
            started = cs.get("state", {}).get("running", {}).get("startedAt", finished)
            cs["state"] = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": started,
                    "finishedAt": finished,
                    "containerID": cs.get("containerID", ""),
                }
            }
            cs["ready"] = False
            cs["started"] = False
        if pod.get("status"):
            _set_condition(pod, "Ready", False, "PodCompleted")
            _set_condition(pod, "ContainersReady", False, "PodCompleted")
        with contextlib.suppress(StoreError):
            self.store.update(PODS, pod)
            # The kubelet's final delete (grace 0) removes the object.
            self.store.delete(PODS, ns, name)

    def restart_container(self, ns: str, name: str, exit_code: int, reason: str) -> Obj:
        """The container died and the kubelet restarted it in place (same pod, same uid)."""
        pod = self.store.get(PODS, ns, name)
        if pod is None:
            raise StoreError(404, "NotFound")
        statuses = pod.get("status", {}).get("containerStatuses") or []
        if not statuses or "running" not in statuses[0].get("state", {}):
            raise StoreError(409, "Conflict")
        uid = pod["metadata"]["uid"]
        now = now_rfc3339()
        node = pod["spec"].get("nodeName")
        cs = statuses[0]
        cs["lastState"] = {
            "terminated": {
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": cs["state"]["running"]["startedAt"],
                "finishedAt": now,
                "containerID": cs.get("containerID", ""),
            }
        }
        cs["restartCount"] = int(cs.get("restartCount", 0)) + 1
        cs["state"] = {"running": {"startedAt": now}}
        cs["containerID"] = f"containerd://{secrets.token_hex(32)}"
        cs["ready"] = False
        _set_condition(
            pod,
            "ContainersReady",
            False,
            "ContainersNotReady",
            f"containers with unready status: [{cs['name']}]",
        )
        _set_condition(
            pod,
            "Ready",
            False,
            "ContainersNotReady",
            f"containers with unready status: [{cs['name']}]",
        )
        pod = self.store.update(PODS, pod)
        fp = f"spec.containers{{{cs['name']}}}"
        if exit_code != 0:
            self.record(
                pod,
                "BackOff",
                f"Back-off restarting failed container {cs['name']} in pod {name}_{ns}({uid})",
                type_="Warning",
                host=node,
                field_path=fp,
            )
        self.record(
            pod,
            "Pulled",
            f'Container image "{cs["image"]}" already present on machine',
            host=node,
            field_path=fp,
        )
        self.record(pod, "Created", f"Created container {cs['name']}", host=node, field_path=fp)
        self.record(pod, "Started", f"Started container {cs['name']}", host=node, field_path=fp)

        async def become_ready() -> None:
            await asyncio.sleep(self.timing.ready)
            self.apply_readiness(ns, name)

        self._spawn(uid, become_ready())
        return pod

    # --- StatefulSet controller -------------------------------------------------------

    def kick(self, ns: str, name: str) -> None:
        """Schedule one reconcile of a StatefulSet (coalescing bursts of changes)."""
        key = (ns, name)
        if key in self._pending_reconcile:
            return
        self._pending_reconcile.add(key)
        asyncio.get_running_loop().call_soon(self._reconcile_safely, key)

    def _reconcile_safely(self, key: tuple[str, str]) -> None:
        self._pending_reconcile.discard(key)
        try:
            self.reconcile(*key)
        except StoreError as exc:  # a concurrent write; the next change kicks us again
            log.debug("reconcile %s/%s: %s", key[0], key[1], exc.reason)

    def _owned_pods(self, sts: Obj) -> dict[int, Obj]:
        ns, name, uid = (
            sts["metadata"]["namespace"],
            sts["metadata"]["name"],
            sts["metadata"]["uid"],
        )
        pattern = re.compile(re.escape(name) + r"-(\d+)")
        pods: dict[int, Obj] = {}
        for pod in self.store.list(PODS, ns):
            m = pattern.fullmatch(pod["metadata"]["name"])
            owners = pod["metadata"].get("ownerReferences") or []
            if m and any(o.get("uid") == uid for o in owners):
                pods[int(m.group(1))] = pod
        return pods

    def reconcile(self, ns: str, name: str) -> None:
        sts = self.store.get(STS, ns, name)
        if sts is None:
            return
        spec = sts["spec"]
        replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        parallel = spec.get("podManagementPolicy") == "Parallel"
        update_rev = f"{name}-{template_hash(spec['template'])}"
        current_rev = sts.get("status", {}).get("currentRevision") or update_rev
        pods = self._owned_pods(sts)

        created = False
        for i in range(replicas):
            if i in pods:
                continue
            if not parallel and not all(j in pods and _healthy(pods[j]) for j in range(i)):
                break
            self._create_pod(sts, i, update_rev)
            created = True
            if not parallel:
                break

        condemned = sorted((i for i in pods if i >= replicas), reverse=True)
        for i in condemned:
            pod = pods[i]
            if not pod["metadata"].get("deletionTimestamp"):
                self.delete_pod(ns, pod["metadata"]["name"], None, reason_owner=sts)
            if not parallel:
                break

        strategy = spec.get("updateStrategy", {}) or {}
        in_range = [i for i in range(replicas) if i in pods]
        if (
            strategy.get("type", "RollingUpdate") == "RollingUpdate"
            and not created
            and len(in_range) == replicas
            and all(_healthy(pods[i]) for i in in_range)
        ):
            partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
            outdated = [
                i
                for i in range(replicas - 1, partition - 1, -1)
                if pods[i]["metadata"].get("labels", {}).get(REVISION_LABEL) != update_rev
            ]
            if outdated:
                self.delete_pod(ns, pods[outdated[0]]["metadata"]["name"], None, reason_owner=sts)

        self._update_status(sts, replicas, update_rev, current_rev)

    def _create_pod(self, sts: Obj, ordinal: int, revision: str) -> None:
        meta = sts["metadata"]
        ns, name = meta["namespace"], f"{meta['name']}-{ordinal}"
        template = sts["spec"]["template"]
        labels = dict(template.get("metadata", {}).get("labels") or {})
        labels.update(
            {REVISION_LABEL: revision, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)}
        )
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "generateName": f"{meta['name']}-",
                "namespace": ns,
                "labels": labels,
                "annotations": dict(template.get("metadata", {}).get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "StatefulSet",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                **json.loads(json.dumps(template.get("spec", {}))),
                "hostname": name,
                "subdomain": sts["spec"].get("serviceName", meta["name"]),
            },
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        if not pod["metadata"]["annotations"]:
            del pod["metadata"]["annotations"]
        self.store.create(PODS, pod)
        self.record(
            sts,
            "SuccessfulCreate",
            f"create Pod {name} in StatefulSet {meta['name']} successful",
            component="statefulset-controller",
        )

    def delete_pod(
        self, ns: str, name: str, grace: int | None, reason_owner: Obj | None = None
    ) -> Obj:
        """Graceful pod deletion as the API server does it; returns the pod as stored after."""
        pod = self.store.get(PODS, ns, name)
        if pod is None:
            raise StoreError(404, "NotFound")
        if grace is None:
            grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        meta = pod["metadata"]
        if reason_owner is not None:
            self.record(
                reason_owner,
                "SuccessfulDelete",
                f"delete Pod {name} in StatefulSet {reason_owner['metadata']['name']} successful",
                component="statefulset-controller",
            )
        # An unscheduled pod, or grace 0, is removed at once (no kubelet to wait for).
        if grace <= 0 or not pod["spec"].get("nodeName"):
            return self.store.delete(PODS, ns, name)
        current = meta.get("deletionGracePeriodSeconds")
        if current is not None and grace >= int(current):
            return pod  # already terminating at least this fast
        meta["deletionTimestamp"] = now_rfc3339(time.time() + grace)
        meta["deletionGracePeriodSeconds"] = grace
        return self.store.update(PODS, pod)

    def _update_status(self, sts: Obj, replicas: int, update_rev: str, current_rev: str) -> None:
        pods = self._owned_pods(sts)
        live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in live if _healthy(p)]
        updated = [
            p for p in live if p["metadata"].get("labels", {}).get(REVISION_LABEL) == update_rev
        ]
        if len(updated) == replicas and len(ready) == replicas:
            current_rev = update_rev  # the rollout is complete
        current = [
            p for p in live if p["metadata"].get("labels", {}).get(REVISION_LABEL) == current_rev
        ]
        status = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(live),
            "readyReplicas": len(ready),
            "currentReplicas": len(current),
            "updatedReplicas": len(updated),
            "currentRevision": current_rev,
            "updateRevision": update_rev,
            "collisionCount": 0,
            "availableReplicas": len(ready),
        }
        if sts.get("status") != status:
            sts["status"] = status
            self.store.update(STS, sts)

    def _garbage_collect(self, ns: str, owner_uid: str) -> None:
        for pod in self.store.list(PODS, ns):
            owners = pod["metadata"].get("ownerReferences") or []
            if any(o.get("uid") == owner_uid for o in owners) and not pod["metadata"].get(
                "deletionTimestamp"
            ):
                with contextlib.suppress(StoreError):
                    self.delete_pod(ns, pod["metadata"]["name"], None)
