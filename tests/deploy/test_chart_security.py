"""Pod and container security: non-root, read-only root, no capabilities, seccomp."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.chart import VARIANTS, mounts_by_volume, render, volumes_by_name

CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod_templates(values: dict[str, Any] | None) -> Iterator[tuple[str, dict[str, Any]]]:
    r = render(values)
    yield "emulator", r.emulator_pod
    if r.all("Deployment"):
        yield "backend", r.backend_pod


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_container_is_locked_down(variant: str) -> None:
    for component, pod in pod_templates(VARIANTS[variant]):
        for c in all_containers(pod):
            assert c["securityContext"] == CONTAINER_SECURITY, f"{component}/{c['name']}"
            assert "add" not in c["securityContext"]["capabilities"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_pods_run_as_the_images_user(variant: str) -> None:
    for component, pod in pod_templates(VARIANTS[variant]):
        sc = pod["spec"]["securityContext"]
        assert sc["runAsNonRoot"] is True, component
        assert sc["runAsUser"] == sc["runAsGroup"] == sc["fsGroup"] == 10001, component
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        spec = pod["spec"]
        for key in ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"):
            assert not spec.get(key), f"{component}: {key}"


def test_platform_assigned_uids() -> None:
    """OpenShift-style: no fixed uid, but still non-root."""
    values = {"securityContext": {"runAsUser": None, "runAsGroup": None, "fsGroup": None}}
    for _, pod in pod_templates(values):
        assert pod["spec"]["securityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_writable_paths_are_volumes(variant: str) -> None:
    """With a read-only root filesystem, every path the programs write is a volume."""
    r = render(VARIANTS[variant])
    for _, pod in pod_templates(VARIANTS[variant]):
        for c in pod["spec"]["containers"]:
            assert mounts_by_volume(c)["tmp"]["mountPath"] == "/tmp"
    mounts = mounts_by_volume(r.emulator_container)
    assert mounts["base-image"]["readOnly"] is True
    assert mounts["control-token"]["readOnly"] is True
    assert not mounts["state"].get("readOnly")


def test_only_the_host_path_source_touches_the_host() -> None:
    for variant, values in VARIANTS.items():
        r = render(values)
        host_paths = [v for v in r.emulator_pod["spec"]["volumes"] if "hostPath" in v]
        if variant == "hostpath-no-backend":
            assert [v["name"] for v in host_paths] == ["base-image"]
            assert mounts_by_volume(r.emulator_container)["base-image"]["readOnly"] is True
        else:
            assert host_paths == [], variant
        if r.all("Deployment"):
            assert not any("hostPath" in v for v in r.backend_pod["spec"]["volumes"])


def test_token_files_are_not_world_readable() -> None:
    r = render()
    for pod in (r.emulator_pod, r.backend_pod):
        secret = volumes_by_name(pod)["control-token"]["secret"]
        assert secret["defaultMode"] == 0o440


def test_emptydirs_are_bounded() -> None:
    r = render(VARIANTS["carrier-image-no-persistence"])
    for pod in (r.emulator_pod, r.backend_pod):
        for volume in pod["spec"]["volumes"]:
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), volume["name"]


def test_no_service_links_and_no_token_for_emulators() -> None:
    r = render()
    assert r.emulator_pod["spec"]["enableServiceLinks"] is False
    assert r.backend_pod["spec"]["enableServiceLinks"] is False
    assert r.emulator_pod["spec"]["automountServiceAccountToken"] is False


def test_vnc_stays_on_loopback_by_default() -> None:
    env = {e["name"]: e.get("value") for e in render().emulator_container["env"]}
    assert env["LOCO_VNC"].startswith("127.0.0.1:")
