"""Rendering the Helm chart offline (helm-python-sdk, Helm v4's Go SDK) for the tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python
import yaml
from helm_python import _native as helm_native

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "deploy" / "helm" / "lego-loco-cluster"
IMAGES_DIR = ROOT / "deploy" / "images"
RELEASE = "loco"
NAMESPACE = "lego"
# The newest Kubernetes minor kubernetes-validate ships schemas for is 1.37; 1.33 is a
# release most managed clusters run today. Both are checked.
KUBE_VERSIONS = ("1.33", "1.37")

_chart: helm_python.Chart | None = None
_cache: dict[str, Rendered] = {}


def chart() -> helm_python.Chart:
    global _chart
    if _chart is None:
        _chart = helm_python.Chart.load(str(CHART_DIR))
    return _chart


@dataclass
class Rendered:
    """The manifests of one rendering, by kind and name."""

    files: dict[str, str]
    docs: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for path, text in sorted(self.files.items()):
            if path.endswith("NOTES.txt"):
                continue
            for doc in yaml.load_all(text, Loader=_Loader):
                if doc:
                    self.docs.append(doc)

    @property
    def notes(self) -> str:
        return next(t for p, t in self.files.items() if p.endswith("NOTES.txt"))

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def maybe(self, kind: str, name: str) -> dict[str, Any] | None:
        found = [d for d in self.all(kind) if d["metadata"]["name"] == name]
        assert len(found) <= 1, f"{len(found)} {kind}s named {name}"
        return found[0] if found else None

    def get(self, kind: str, name: str) -> dict[str, Any]:
        doc = self.maybe(kind, name)
        assert doc is not None, (
            f"no {kind} {name} in {[k['metadata']['name'] for k in self.all(kind)]}"
        )
        return doc

    # --- the objects most tests look at ------------------------------------------------
    @property
    def statefulset(self) -> dict[str, Any]:
        return self.get("StatefulSet", "loco-emulator")

    @property
    def emulator_pod(self) -> dict[str, Any]:
        return self.statefulset["spec"]["template"]

    @property
    def emulator_container(self) -> dict[str, Any]:
        return container(self.emulator_pod, "emulator")

    @property
    def backend(self) -> dict[str, Any]:
        return self.get("Deployment", "loco-backend")

    @property
    def backend_pod(self) -> dict[str, Any]:
        return self.backend["spec"]["template"]

    @property
    def backend_container(self) -> dict[str, Any]:
        return container(self.backend_pod, "backend")


def container(pod_template: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in pod_template["spec"]["containers"] if c["name"] == name]
    assert len(found) == 1, f"container {name}: {len(found)} found"
    return found[0]


def render(
    values: dict[str, Any] | None = None,
    *,
    api_versions: list[str] | None = None,
    **options: Any,
) -> Rendered:
    """Renders the chart as release ``loco`` in namespace ``lego`` (cached per values).

    ``api_versions`` are what the cluster would serve on top of the built-in APIs, as
    ``helm template --api-versions`` takes them (e.g. ``monitoring.coreos.com/v1/
    PrometheusRule``): what ``.Capabilities.APIVersions.Has`` answers.
    """
    key = json.dumps([values, api_versions, options], sort_keys=True)
    if key not in _cache:
        if api_versions is None:
            files = chart().render(values, name=RELEASE, namespace=NAMESPACE, **options)
        else:
            files = _render_with_api_versions(values, api_versions, options)
        _cache[key] = Rendered(files)
    return _cache[key]


def _render_with_api_versions(
    values: dict[str, Any] | None, api_versions: list[str], options: dict[str, Any]
) -> dict[str, str]:
    # Chart.render (helm-python-sdk 0.2) has no parameter for them, but the render call
    # beneath it takes the same JSON options as its parameters plus "api_versions";
    # tests/deploy/test_alerts.py fails if that ever stops being honoured.
    opts = {"name": RELEASE, "namespace": NAMESPACE, **options, "api_versions": api_versions}
    c = chart()
    rendered = helm_native.call_string(
        "helm_render", c._raw(), None if values is None else json.dumps(values), json.dumps(opts)
    )
    files: dict[str, str] = json.loads(rendered)
    return files


def render_error(values: dict[str, Any]) -> str:
    """The error message rendering ``values`` fails with (the test fails if it renders)."""
    try:
        chart().render(values, name=RELEASE, namespace=NAMESPACE)
    except helm_python.HelmError as exc:
        return str(exc)
    raise AssertionError(f"values {values} rendered without an error")


def port_named(container_: dict[str, Any], name: str) -> int:
    ports = [p for p in container_.get("ports") or [] if p.get("name") == name]
    assert len(ports) == 1, f"container {container_['name']}: {len(ports)} ports named {name}"
    return int(ports[0]["containerPort"])


def env_of(container_: dict[str, Any], pod_name: str = "loco-emulator-0") -> dict[str, str]:
    """The container's environment as the kubelet would set it (downward API resolved)."""
    env: dict[str, str] = {}
    for item in container_.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[item["name"]] = pod_name
        else:
            raise AssertionError(f"unexpected env source {item}")
    return env


def mounts_by_volume(container_: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in container_.get("volumeMounts") or []}


def volumes_by_name(pod_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod_template["spec"].get("volumes") or []}


# Variants rendered by several tests: name -> values.
VARIANTS: dict[str, dict[str, Any] | None] = {
    "default": None,
    "replicas-9": {"emulator": {"replicas": 9}},
    "testimage-tcg": {
        "emulator": {"profile": "testimage", "accel": "tcg", "diskImage": {"source": "testimage"}}
    },
    "kvm": {
        "emulator": {
            "accel": "kvm",
            "kvm": {"supplementalGroups": [108], "nodeSelector": {"lego-loco.io/kvm": "true"}},
        }
    },
    "existing-secret": {"controlToken": {"existingSecret": "my-token", "existingSecretKey": "tok"}},
    "metrics": {"metrics": {"podAnnotations": True, "serviceMonitor": {"enabled": True}}},
    "operator-alerts-no-dashboard": {
        "metrics": {"serviceMonitor": {"enabled": True}},
        "alerts": {"prometheusRule": True, "ruleLabels": {"release": "kps"}},
        "dashboards": {"enabled": False},
    },
    "carrier-image-no-persistence": {
        "emulator": {
            "diskImage": {
                "source": "image",
                "image": {"repository": "registry.example/win98-disk"},
            },
            "state": {"persistence": {"enabled": False}},
        }
    },
    "hostpath-no-backend": {
        "emulator": {"diskImage": {"source": "hostPath"}},
        "backend": {"enabled": False},
    },
    "bound-roles": {
        "rbac": {
            "operatorRole": {"create": True, "subjects": [{"kind": "Group", "name": "oncall"}]},
            "readOnlyRole": {"create": True, "subjects": [{"kind": "User", "name": "ada"}]},
        }
    },
    "no-optional-roles": {
        "rbac": {
            "operatorRole": {"create": False, "subjects": []},
            "readOnlyRole": {"create": False, "subjects": []},
        }
    },
}
