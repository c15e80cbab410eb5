"""Object templates: namespaces, the emulator StatefulSet, Events.

The StatefulSet mirrors what the project's Helm chart deploys (labels from DESIGN.md's
Kubernetes conventions, health port 8080, VNC 5900) so clients see realistic objects.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from tests.kubesim.objects import Obj, now_rfc3339

EMULATOR_LABELS: dict[str, str] = {
    "app.kubernetes.io/component": "emulator",
    "app.kubernetes.io/part-of": "lego-loco-cluster",
    "app.kubernetes.io/name": "lego-loco-emulator",
}
DEFAULT_STATEFULSET = "loco-emulator"
DEFAULT_IMAGE = "ghcr.io/lego-loco-cluster/loco-emulator:0.1.0"
CONTAINER_NAME = "emulator"
HEALTH_PORT = 8080
VNC_PORT = 5900

# Pod annotations a pod bound to a real local process carries (see README.md).


def namespace(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def emulator_container(image: str = DEFAULT_IMAGE) -> Obj:
    return {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
            {"name": "vnc", "containerPort": VNC_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "health", "scheme": "HTTP"},
            "periodSeconds": 5,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": "health", "scheme": "HTTP"},
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "startupProbe": {
            "httpGet": {"path": "/startup", "port": "health", "scheme": "HTTP"},
            "periodSeconds": 2,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 60,
        },
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def statefulset(
    name: str = DEFAULT_STATEFULSET,
    namespace: str = "default",
    replicas: int = 3,
    image: str = DEFAULT_IMAGE,
    labels: dict[str, str] | None = None,
    pod_management_policy: str = "Parallel",
) -> Obj:
    """The emulator StatefulSet. Parallel pod management keeps tests fast; pass
    ``OrderedReady`` to get the real default's one-at-a-time startup."""
    pod_labels = dict(labels or EMULATOR_LABELS)
    selector = {
        k: pod_labels[k]
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/component")
        if k in pod_labels
    } or dict(pod_labels)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(pod_labels)},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": selector},
            "podManagementPolicy": pod_management_policy,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 10,
            "minReadySeconds": 0,
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {"labels": dict(pod_labels)},
                "spec": {
                    "containers": [emulator_container(image)],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                },
            },
        },
        "status": {"replicas": 0, "availableReplicas": 0},
    }


_event_seq = itertools.count()


def event(
    involved: Obj,
    reason: str,
    message: str,
    *,
    type_: str = "Normal",
    component: str = "kubelet",
    host: str | None = None,
    field_path: str | None = None,
) -> Obj:
    """A core/v1 Event as the kubelet/controllers record it (name = object.<unix nanos hex>)."""
    meta = involved["metadata"]
    now = now_rfc3339()
    # Real names use the event time in hex; a counter keeps two events in one tick apart.
    name = f"{meta['name']}.{time.time_ns() + next(_event_seq):x}"
    ref: dict[str, Any] = {
        "kind": involved.get("kind"),
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta.get("uid"),
        "apiVersion": involved.get("apiVersion"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if field_path:
        ref["fieldPath"] = field_path
    source: dict[str, str] = {"component": component}
    if host:
        source["host"] = host
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": meta.get("namespace") or "default"},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": type_,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }
