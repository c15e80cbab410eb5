"""The chart lints, renders for every variant, and every manifest is valid Kubernetes."""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Iterator
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from tests.deploy.chart import (
    CHART_DIR,
    KUBE_VERSIONS,
    NAMESPACE,
    VARIANTS,
    Rendered,
    chart,
    env_of,
    mounts_by_volume,
    render,
    volumes_by_name,
)

# Kinds from CRDs that kubernetes-validate has no schema for, and the fields checked instead.
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


@pytest.fixture(scope="module")
def cached_k8s_schemas() -> Iterator[None]:
    """kubernetes-validate re-reads its (large) schema files on every call; read each once."""
    utils = kubernetes_validate.utils
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(utils, "schema_contents", functools.cache(utils.schema_contents))
        yield


def test_chart_metadata() -> None:
    meta = chart().metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "lego-loco-cluster"
    assert meta["type"] == "application"
    # persistentVolumeClaimRetentionPolicy is on by default from Kubernetes 1.27
    assert meta["kubeVersion"] == ">=1.27.0-0"
    pyproject = (CHART_DIR.parents[2] / "pyproject.toml").read_text()
    assert f'version = "{meta["appVersion"]}"' in pyproject, "appVersion != pyproject version"


@pytest.mark.parametrize("kube_version", ["v1.27.0", "v1.33.0"])
def test_lint_is_clean(kube_version: str) -> None:
    report = helm_python.lint(str(CHART_DIR), strict=True, kube_version=kube_version)
    assert report["errors"] == []
    findings = [m for m in report["messages"] if m["severity"] >= 2]
    assert findings == []


def test_lint_reports_bad_values() -> None:
    report = helm_python.lint(str(CHART_DIR), {"emulator": {"replicas": "three"}})
    assert any("/emulator/replicas" in e for e in report["errors"]), report


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.usefixtures("cached_k8s_schemas")
def test_every_manifest_validates(variant: str, kube_version: str) -> None:
    rendered = render(VARIANTS[variant])
    assert rendered.docs
    for doc in rendered.docs:
        where = f"{variant}: {doc['kind']} {doc['metadata']['name']}"
        assert doc["metadata"].get("namespace") == NAMESPACE, where
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {exc.message} at {list(exc.path)}")


def test_default_release_objects() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in render().docs)
    assert kinds == [
        ("ConfigMap", "loco-alerts"),
        ("ConfigMap", "loco-dashboard"),
        ("Deployment", "loco-backend"),
        ("Role", "loco-backend"),
        ("Role", "loco-operator"),
        ("Role", "loco-viewer"),
        ("RoleBinding", "loco-backend"),
        ("Secret", "loco-control-token"),
        ("Service", "loco-backend"),
        ("Service", "loco-emulator"),
        ("ServiceAccount", "loco-backend"),
        ("ServiceAccount", "loco-emulator"),
        ("StatefulSet", "loco-emulator"),
    ]


def test_names_follow_the_prefix() -> None:
    r = render({"namePrefix": "fleet"})
    assert r.get("StatefulSet", "fleet-emulator")["spec"]["serviceName"] == "fleet-emulator"
    assert r.get("Deployment", "fleet-backend")
    assert r.get("Secret", "fleet-control-token")


@pytest.mark.parametrize("replicas", [0, 1, 9])
def test_replicas_and_parallel_pod_management(replicas: int) -> None:
    sts = render({"emulator": {"replicas": replicas}}).statefulset
    assert sts["spec"]["replicas"] == replicas
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert sts["spec"]["serviceName"] == "loco-emulator"


def test_headless_service_governs_the_statefulset() -> None:
    r = render()
    svc = r.get("Service", r.statefulset["spec"]["serviceName"])
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
    assert ports == {"health": (8080, "health"), "vnc": (5900, "vnc")}


def test_supervisor_is_the_command_and_the_only_container() -> None:
    pod = render().emulator_pod
    assert [c["name"] for c in pod["spec"]["containers"]] == ["emulator"]
    assert render().emulator_container["command"] == ["loco-emulator", "run"]
    assert "args" not in render().emulator_container
    # one container, so `kubectl logs` and the backend's pods/log need no container name
    assert "initContainers" not in pod["spec"]


def test_state_lives_on_a_claim_per_pod() -> None:
    r = render()
    sts = r.statefulset
    (vct,) = sts["spec"]["volumeClaimTemplates"]
    assert vct["metadata"]["name"] == "state"
    assert vct["spec"]["resources"]["requests"]["storage"] == "4Gi"
    assert vct["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "storageClassName" not in vct["spec"]
    mount = mounts_by_volume(r.emulator_container)["state"]
    assert mount["mountPath"] == env_of(r.emulator_container)["LOCO_STATE_DIR"]
    assert not mount.get("readOnly")
    assert "state" not in volumes_by_name(r.emulator_pod)
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }


def test_volume_claim_template_is_stable_across_versions() -> None:
    """volumeClaimTemplates are immutable: an upgrade that changes them is refused."""
    a = render().statefulset["spec"]
    b = render({"emulator": {"image": {"tag": "9.9.9"}}}).statefulset["spec"]
    assert a["volumeClaimTemplates"] == b["volumeClaimTemplates"]
    assert a["selector"] == b["selector"]
    assert a["template"]["metadata"]["labels"] != b["template"]["metadata"]["labels"]


def test_storage_class_and_size() -> None:
    r = render(
        {"emulator": {"state": {"persistence": {"storageClassName": "fast", "size": "20Gi"}}}}
    )
    (vct,) = r.statefulset["spec"]["volumeClaimTemplates"]
    assert vct["spec"]["storageClassName"] == "fast"
    assert vct["spec"]["resources"]["requests"]["storage"] == "20Gi"


def test_state_without_persistence_is_an_empty_dir() -> None:
    r = render(VARIANTS["carrier-image-no-persistence"])
    assert "volumeClaimTemplates" not in r.statefulset["spec"]
    assert "persistentVolumeClaimRetentionPolicy" not in r.statefulset["spec"]
    assert volumes_by_name(r.emulator_pod)["state"]["emptyDir"] == {"sizeLimit": "4Gi"}


def _base_image(r: Rendered) -> tuple[dict[str, Any], dict[str, Any], str]:
    volume = volumes_by_name(r.emulator_pod)["base-image"]
    mount = mounts_by_volume(r.emulator_container)["base-image"]
    return volume, mount, env_of(r.emulator_container)["LOCO_DISK_IMAGE"]


def test_base_image_from_a_read_only_claim() -> None:
    volume, mount, disk = _base_image(render())
    assert volume["persistentVolumeClaim"] == {"claimName": "loco-win98-image", "readOnly": True}
    assert mount["readOnly"] is True
    assert disk == f"{mount['mountPath']}/win98.qcow2"


def test_base_image_from_a_host_path() -> None:
    r = render(VARIANTS["hostpath-no-backend"])
    volume, mount, disk = _base_image(r)
    assert volume["hostPath"] == {"path": "/var/lib/lego-loco/images", "type": "Directory"}
    assert mount["readOnly"] is True
    assert disk == "/var/lib/loco-images/win98.qcow2"


def test_base_image_copied_from_a_carrier_image() -> None:
    r = render(VARIANTS["carrier-image-no-persistence"])
    volume, mount, disk = _base_image(r)
    assert volume["emptyDir"] == {"sizeLimit": "4Gi"}
    assert mount["readOnly"] is True
    (init,) = r.emulator_pod["spec"]["initContainers"]
    assert init["image"] == "registry.example/win98-disk:latest"
    assert init["command"] == ["cp", "/images/win98.qcow2", disk]
    assert not mounts_by_volume(init)["base-image"].get("readOnly")


def test_base_image_is_the_builtin_test_guest() -> None:
    r = render(VARIANTS["testimage-tcg"])
    volume, mount, disk = _base_image(r)
    (init,) = r.emulator_pod["spec"]["initContainers"]
    assert init["image"] == r.emulator_container["image"]
    assert init["command"][:3] == ["loco-emulator", "make-test-image", disk]
    assert "emptyDir" in volume and mount["readOnly"] is True


def test_profile_defaults_follow_the_supervisor() -> None:
    from emulator.config import Settings

    for variant, profile in (("default", "win98"), ("testimage-tcg", "testimage")):
        r = render(VARIANTS[variant])
        env = env_of(r.emulator_container)
        defaults = Settings.model_construct(profile=profile)  # no disk or state dir needed
        assert env["LOCO_PROFILE"] == profile
        assert int(env["LOCO_MEMORY_MB"]) == defaults.effective_memory_mb
        assert float(env["LOCO_SHUTDOWN_GRACE"]) == defaults.effective_grace


@pytest.mark.parametrize(
    ("values", "grace", "termination"),
    [
        (None, 15.0, 30),
        ({"emulator": {"shutdownGraceSeconds": 40}}, 40.0, 55),
        ({"emulator": {"shutdownGraceSeconds": 2.5, "shutdownMarginSeconds": 5}}, 2.5, 8),
        ({"emulator": {"terminationGracePeriodSeconds": 120}}, 15.0, 120),
        (VARIANTS["testimage-tcg"], 0.5, 16),
    ],
)
def test_termination_grace_exceeds_the_acpi_grace(
    values: dict[str, Any] | None, grace: float, termination: int
) -> None:
    r = render(values)
    assert float(env_of(r.emulator_container)["LOCO_SHUTDOWN_GRACE"]) == grace
    t = r.emulator_pod["spec"]["terminationGracePeriodSeconds"]
    assert t == termination
    # QEMU needs up to 2 s to exit after quit (PLATFORM.md), the supervisor a bit more.
    assert t >= math.ceil(grace) + 5


def test_resources_default_to_the_seed() -> None:
    assert render().emulator_container["resources"] == {
        "limits": {"cpu": "2", "memory": "4Gi"},
        "requests": {"cpu": "500m", "memory": "1Gi"},
    }
    backend = render().backend_container["resources"]
    assert backend["limits"]["memory"] == "256Mi" and backend["requests"]["cpu"] == "100m"


def test_resources_from_values() -> None:
    res = {"limits": {"cpu": "4", "memory": "8Gi"}, "requests": {"cpu": "2", "memory": "2Gi"}}
    assert render({"emulator": {"resources": res}}).emulator_container["resources"] == res


def test_kvm_only_when_asked_for() -> None:
    for variant in ("default", "testimage-tcg", "replicas-9"):
        r = render(VARIANTS[variant])
        limits = r.emulator_container["resources"]["limits"]
        assert not any("kvm" in k for k in limits), variant
        assert "/dev/kvm" not in yaml.safe_dump(r.statefulset)
        assert "supplementalGroups" not in r.emulator_pod["spec"]["securityContext"]
        assert "nodeSelector" not in r.emulator_pod["spec"]
    r = render(VARIANTS["kvm"])
    assert env_of(r.emulator_container)["LOCO_ACCEL"] == "kvm"
    assert r.emulator_container["resources"]["limits"] == {
        "cpu": "2",
        "memory": "4Gi",
        "devices.kubevirt.io/kvm": "1",
    }
    assert r.emulator_pod["spec"]["securityContext"]["supplementalGroups"] == [108]
    assert r.emulator_pod["spec"]["nodeSelector"] == {"lego-loco.io/kvm": "true"}
    # the default values are not changed by the kvm rendering
    assert "devices.kubevirt.io/kvm" not in render().emulator_container["resources"]["limits"]


def test_other_kvm_device_plugin() -> None:
    r = render({"emulator": {"accel": "kvm", "kvm": {"resourceName": "squat.ai/kvm"}}})
    assert r.emulator_container["resources"]["limits"]["squat.ai/kvm"] == "1"


def test_generated_control_token() -> None:
    r = render()
    secret = r.get("Secret", "loco-control-token")
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) == 48 and token.isalnum()
    # offline rendering (no lookup result): every install gets its own token
    again = chart().render(None, name="loco", namespace=NAMESPACE)
    other = yaml.safe_load(again["lego-loco-cluster/templates/control-token-secret.yaml"])
    assert other["data"]["token"] != secret["data"]["token"]
    for pod in (r.emulator_pod, r.backend_pod):
        vol = volumes_by_name(pod)["control-token"]["secret"]
        assert vol["secretName"] == "loco-control-token"
        assert vol["items"] == [{"key": "token", "path": "token"}]


def test_existing_secret_is_used_and_none_created() -> None:
    r = render(VARIANTS["existing-secret"])
    assert r.all("Secret") == []
    for pod, c in ((r.emulator_pod, r.emulator_container), (r.backend_pod, r.backend_container)):
        vol = volumes_by_name(pod)["control-token"]["secret"]
        assert vol["secretName"] == "my-token"
        assert vol["items"] == [{"key": "tok", "path": "token"}]
        mount = mounts_by_volume(c)["control-token"]
        assert mount["readOnly"] is True
        assert env_of(c)["LOCO_CONTROL_TOKEN_FILE"] == f"{mount['mountPath']}/token"


def test_metrics_off_by_default() -> None:
    r = render()
    assert r.all("ServiceMonitor") == []
    for pod in (r.emulator_pod, r.backend_pod):
        assert not any(
            k.startswith("prometheus.io/") for k in pod["metadata"].get("annotations", {})
        )


def test_metrics_annotations_and_service_monitors() -> None:
    r = render(VARIANTS["metrics"])
    assert r.emulator_pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }
    assert r.backend_pod["metadata"]["annotations"]["prometheus.io/port"] == "8081"
    for name, service_name, port in (
        ("loco-emulator", "loco-emulator", "health"),
        ("loco-backend", "loco-backend", "http"),
    ):
        sm = r.get("ServiceMonitor", name)
        svc = r.get("Service", service_name)
        (endpoint,) = sm["spec"]["endpoints"]
        assert endpoint["port"] == port and endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
        selector = sm["spec"]["selector"]["matchLabels"]
        assert selector.items() <= svc["metadata"]["labels"].items()
        assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_service_monitor_extra_labels() -> None:
    values = {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}}}
    for sm in render(values).all("ServiceMonitor"):
        assert sm["metadata"]["labels"]["release"] == "kps"


def test_backend_can_be_left_out() -> None:
    r = render(VARIANTS["hostpath-no-backend"])
    assert r.all("Deployment") == []
    assert r.maybe("Role", "loco-backend") is None
    assert r.maybe("ServiceAccount", "loco-backend") is None
    assert r.statefulset and r.get("Secret", "loco-control-token")


def test_extra_pod_labels_cannot_override_the_contract() -> None:
    values = {
        "emulator": {
            "podLabels": {"team": "trains", "app.kubernetes.io/component": "other"},
            "podAnnotations": {"a": "b"},
        }
    }
    r = render(values)
    labels = r.emulator_pod["metadata"]["labels"]
    assert labels["team"] == "trains"
    assert labels["app.kubernetes.io/component"] == "emulator"
    assert r.emulator_pod["metadata"]["annotations"] == {"a": "b"}


def test_image_tag_digest_and_pull_secrets() -> None:
    r = render()
    assert r.emulator_container["image"] == "lego-loco-emulator:0.1.0"
    assert r.backend_container["image"] == "lego-loco-backend:0.1.0"
    digest = "sha256:" + "a" * 64
    r = render(
        {
            "emulator": {
                "image": {"repository": "reg.example/emu", "tag": "1.2", "digest": digest}
            },
            "backend": {"image": {"repository": "reg.example/be", "tag": "1.2"}},
            "imagePullSecrets": [{"name": "regcred"}],
        }
    )
    assert r.emulator_container["image"] == f"reg.example/emu@{digest}"
    assert r.backend_container["image"] == "reg.example/be:1.2"
    assert r.emulator_pod["metadata"]["labels"]["app.kubernetes.io/version"] == "1.2"
    for pod in (r.emulator_pod, r.backend_pod):
        assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_notes_tell_how_to_connect() -> None:
    notes = render().notes
    assert f'locotui --context "$(kubectl config current-context)" -n {NAMESPACE}' in notes
    assert "create rolebinding loco-operator-USER --role=loco-operator" in notes
    assert "port-forward svc/loco-backend 8081:8081" in notes
    assert "loco-win98-image" in notes
    assert "test guest" in render(VARIANTS["testimage-tcg"]).notes


@pytest.mark.usefixtures("cached_k8s_schemas")
def test_validation_is_strict() -> None:
    """The check above would catch a misspelt field: kubernetes-validate is strict here."""
    sts = yaml.safe_load(yaml.safe_dump(render().statefulset))
    sts["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, KUBE_VERSIONS[0], strict=True)
