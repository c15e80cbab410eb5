"""The chart against the code it deploys: labels, ports, probes, environment, flags."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from backend.kube.conventions import LABEL_SELECTOR
from backend.kube.pods import parse_pod
from tests.deploy.chart import (
    ROOT,
    VARIANTS,
    Rendered,
    env_of,
    mounts_by_volume,
    port_named,
    render,
)

CONTRACT = {
    "app.kubernetes.io/component": "emulator",
    "app.kubernetes.io/part-of": "lego-loco-cluster",
    "app.kubernetes.io/name": "lego-loco-emulator",
}
# What the brief and DESIGN.md ask the emulator container's environment to carry.
REQUIRED_EMULATOR_ENV = {
    "LOCO_DISK_IMAGE",
    "LOCO_STATE_DIR",
    "LOCO_HEALTH_PORT",
    "LOCO_VNC",
    "LOCO_PROFILE",
    "LOCO_ACCEL",
    "LOCO_MEMORY_MB",
    "LOCO_INSTANCE_NAME",
    "LOCO_CONTROL_TOKEN_FILE",
    "LOCO_SHUTDOWN_GRACE",
    "LOG_LEVEL",
}


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def parse_equality_selector(text: str) -> dict[str, str]:
    """'a=b,c=d' (the only form the backend uses) as a dict; anything else fails."""
    out = {}
    for term in text.split(","):
        key, sep, value = term.partition("=")
        assert sep and "!" not in key and value, f"not an equality selector: {text}"
        out[key.strip()] = value.strip()
    return out


def env_names_read_by(package: str) -> set[str]:
    """Environment variable names the package's source mentions as string literals."""
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        names |= set(re.findall(r"[\"']((?:LOCO|LOG|KUBERNETES)_[A-Z_]+)[\"']", path.read_text()))
    return names


# ------------------------------------------------------------------------ labels


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_emulator_pods_carry_the_contract_labels(variant: str) -> None:
    r = render(VARIANTS[variant])
    labels = r.emulator_pod["metadata"]["labels"]
    assert CONTRACT.items() <= labels.items()
    assert labels["app.kubernetes.io/instance"] == "loco"
    assert labels["app.kubernetes.io/version"] == "0.1.0"
    assert CONTRACT.items() <= r.statefulset["metadata"]["labels"].items()
    selector = r.statefulset["spec"]["selector"]["matchLabels"]
    assert selector_matches(selector, labels)
    assert "app.kubernetes.io/version" not in selector


def test_emulator_service_selects_on_component_and_part_of() -> None:
    svc = render().get("Service", "loco-emulator")
    assert svc["spec"]["selector"] == {
        "app.kubernetes.io/component": "emulator",
        "app.kubernetes.io/part-of": "lego-loco-cluster",
    }
    assert selector_matches(svc["spec"]["selector"], render().emulator_pod["metadata"]["labels"])


def test_backend_discovery_selector_finds_emulators_only() -> None:
    r = render()
    selector = parse_equality_selector(LABEL_SELECTOR)
    assert selector == render().get("Service", "loco-emulator")["spec"]["selector"]
    assert selector_matches(selector, r.emulator_pod["metadata"]["labels"])
    assert not selector_matches(selector, r.backend_pod["metadata"]["labels"])
    assert r.backend_pod["metadata"]["labels"]["app.kubernetes.io/part-of"] == "lego-loco-cluster"


def test_backend_service_selects_the_backend() -> None:
    r = render()
    svc = r.get("Service", "loco-backend")
    assert selector_matches(svc["spec"]["selector"], r.backend_pod["metadata"]["labels"])
    assert not selector_matches(svc["spec"]["selector"], r.emulator_pod["metadata"]["labels"])
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 8081, "targetPort": "http", "protocol": "TCP"}
    ]


# ------------------------------------------------------------------------ ports, probes


def fake_pod(r: Rendered, ip: str = "10.1.2.3") -> dict[str, Any]:
    """A pod as the StatefulSet controller would create it from the template."""
    template = r.emulator_pod
    return {
        "metadata": {
            "name": "loco-emulator-0",
            "namespace": "lego",
            "labels": template["metadata"]["labels"],
            "annotations": template["metadata"].get("annotations", {}),
        },
        "spec": template["spec"],
        "status": {"podIP": ip, "phase": "Running"},
    }


@pytest.mark.parametrize(
    ("values", "health", "vnc"),
    [(None, 8080, 5900), ({"emulator": {"healthPort": 9000, "vnc": {"display": 3}}}, 9000, 5903)],
)
def test_backend_finds_the_health_and_vnc_ports_by_name(
    values: dict[str, Any] | None, health: int, vnc: int
) -> None:
    r = render(values)
    c = r.emulator_container
    assert port_named(c, "health") == health
    assert port_named(c, "vnc") == vnc
    target = parse_pod(fake_pod(r), "lego")
    assert target.health_url == f"http://10.1.2.3:{health}"
    assert target.vnc == f"10.1.2.3:{vnc}"
    svc_ports = {p["name"]: p["port"] for p in r.get("Service", "loco-emulator")["spec"]["ports"]}
    assert svc_ports == {"health": health, "vnc": vnc}


def emulator_routes() -> dict[str, set[str]]:
    from emulator.http_api import create_app

    instance = SimpleNamespace(name="probe-check", supervisor=SimpleNamespace())
    app = create_app(instance, control_token=None)  # type: ignore[arg-type]
    return {route.path: set(route.methods or ()) for route in app.routes}  # type: ignore[attr-defined]


def test_emulator_probes_hit_the_supervisors_endpoints() -> None:
    routes = emulator_routes()
    c = render().emulator_container
    expected = {"startupProbe": "/startup", "livenessProbe": "/health", "readinessProbe": "/ready"}
    for probe, path in expected.items():
        get = c[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] == "health", probe
        assert "GET" in routes[path], f"{path} is not a GET route of emulator.http_api"
    assert "GET" in routes["/metrics"]


def test_emulator_probe_timings_follow_seed_task_4_2() -> None:
    c = render().emulator_container
    startup, live, ready = c["startupProbe"], c["livenessProbe"], c["readinessProbe"]
    assert (live["periodSeconds"], live["timeoutSeconds"], live["failureThreshold"]) == (30, 10, 3)
    assert (ready["periodSeconds"], ready["timeoutSeconds"], ready["failureThreshold"]) == (
        10,
        5,
        3,
    )
    assert (startup["periodSeconds"], startup["timeoutSeconds"]) == (10, 5)
    assert startup["failureThreshold"] == 30
    # Windows 98 under TCG: give image checks and QEMU's start five minutes
    budget = startup["initialDelaySeconds"] + startup["periodSeconds"] * startup["failureThreshold"]
    assert budget >= 300
    for probe in (startup, live, ready):
        assert probe["successThreshold"] == 1
        assert probe["timeoutSeconds"] < probe["periodSeconds"]
    # the startup probe gates the others: extra initial delays would only hold back Ready
    assert live["initialDelaySeconds"] == ready["initialDelaySeconds"] == 0


def test_probe_timings_come_from_values() -> None:
    values = {"emulator": {"probes": {"startup": {"failureThreshold": 90, "periodSeconds": 5}}}}
    startup = render(values).emulator_container["startupProbe"]
    assert (startup["failureThreshold"], startup["periodSeconds"]) == (90, 5)


def backend_routes(tmp_path: Path) -> dict[str, set[str]]:
    from backend.api.app import create_app
    from backend.config import Settings
    from backend.models import InstanceSource
    from backend.runtime import build_runtime

    runtime = build_runtime(Settings(discovery=InstanceSource.LOCAL, local_dir=tmp_path))
    app = create_app(runtime)
    return {route.path: set(route.methods or ()) for route in app.routes}  # type: ignore[attr-defined]


def test_backend_probes_hit_the_backends_endpoints(tmp_path: Path) -> None:
    routes = backend_routes(tmp_path)
    c = render().backend_container
    assert port_named(c, "http") == 8081
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        assert c[probe]["httpGet"] == {"path": path, "port": "http"}
        assert "GET" in routes[path]
    assert "GET" in routes["/metrics"]


# ------------------------------------------------------------------------ environment


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_emulator_env_names_are_read_by_the_supervisor(variant: str) -> None:
    env = env_of(render(VARIANTS[variant]).emulator_container)
    assert env.keys() >= REQUIRED_EMULATOR_ENV
    unknown = env.keys() - env_names_read_by("emulator")
    assert not unknown, f"the supervisor never reads {sorted(unknown)}"


def test_instance_name_comes_from_the_pod_name() -> None:
    (item,) = [e for e in render().emulator_container["env"] if e["name"] == "LOCO_INSTANCE_NAME"]
    assert item["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def supervisor_settings(
    r: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, dict[str, str]]:
    """What ``loco-emulator run`` makes of the rendered environment."""
    from emulator.cli import _parser, settings_from

    env = env_of(r.emulator_container)
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    for name in list(os.environ):
        if name.startswith("LOCO_") or name == "LOG_LEVEL":
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name == "LOCO_CONTROL_TOKEN_FILE":
            value = str(token_file)
        monkeypatch.setenv(name, value)
    command = r.emulator_container["command"]
    assert command[0] == "loco-emulator"
    return settings_from(_parser().parse_args(command[1:])), env


@pytest.mark.parametrize("variant", ["default", "testimage-tcg", "kvm"])
def test_supervisor_accepts_the_rendered_environment(
    variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = render(VARIANTS[variant])
    settings, env = supervisor_settings(r, tmp_path, monkeypatch)
    c = r.emulator_container
    mounts = mounts_by_volume(c)
    assert settings.name == "loco-emulator-0"
    assert settings.control_token == "s3cret"
    assert str(settings.disk).startswith(mounts["base-image"]["mountPath"] + "/")
    assert settings.state_dir == Path(mounts["state"]["mountPath"])
    assert settings.health_port == port_named(c, "health")
    assert settings.health_host == "0.0.0.0"
    assert settings.vnc.port == port_named(c, "vnc")
    assert settings.vnc.host == "127.0.0.1"
    assert settings.profile == env["LOCO_PROFILE"]
    assert settings.accel == env["LOCO_ACCEL"]
    assert settings.effective_memory_mb == int(env["LOCO_MEMORY_MB"])
    assert settings.effective_grace < r.emulator_pod["spec"]["terminationGracePeriodSeconds"]
    assert settings.max_restarts == 5 and settings.fresh_overlay is False


def test_supervisor_settings_follow_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "emulator": {
            "memoryMB": 512,
            "shutdownGraceSeconds": 20,
            "maxRestarts": 2,
            "freshOverlay": True,
            "healthPort": 9090,
            "healthHost": "::",
            "vnc": {"host": "0.0.0.0", "display": 7},
            "logLevel": "debug",
        }
    }
    settings, env = supervisor_settings(render(values), tmp_path, monkeypatch)
    assert settings.effective_memory_mb == 512
    assert settings.effective_grace == 20
    assert settings.max_restarts == 2
    assert settings.fresh_overlay is True
    assert (settings.health_port, settings.health_host) == (9090, "::")
    assert (settings.vnc.host, settings.vnc.port) == ("0.0.0.0", 5907)
    assert env["LOG_LEVEL"] == "debug"


def test_backend_env_names_are_read_by_the_backend() -> None:
    env = env_of(render().backend_container)
    assert {"LOCO_BACKEND_PORT", "LOCO_CONTROL_TOKEN_FILE", "LOG_LEVEL"} <= env.keys()
    unknown = env.keys() - (env_names_read_by("backend") | env_names_read_by("emulator"))
    assert not unknown, f"the backend never reads {sorted(unknown)}"


def test_backend_accepts_the_rendered_command_line(tmp_path: Path) -> None:
    from backend.cli import build_parser, settings_from_args
    from backend.models import InstanceSource

    r = render({"backend": {"extraArgs": ["--probe-interval", "2"], "logLevel": "warning"}})
    c = r.backend_container
    assert c["command"] == ["loco-backend"]
    env = env_of(c)
    token_file = tmp_path / "token"
    token_file.write_text("s3cret")
    env["LOCO_CONTROL_TOKEN_FILE"] = str(token_file)
    settings = settings_from_args(build_parser().parse_args(c["args"]), env)
    assert settings.discovery is InstanceSource.KUBERNETES
    assert settings.port == port_named(c, "http")
    assert settings.host == "0.0.0.0"
    assert settings.control_token == "s3cret"
    assert settings.probe_interval == 2.0
    assert settings.label_selector == LABEL_SELECTOR
    # the namespace comes from the service-account file: the same one the Role is in
    assert settings.namespace is None and "KUBERNETES_NAMESPACE" not in env
    assert env["LOG_LEVEL"] == "warning"


def test_backend_and_emulators_share_the_control_token() -> None:
    r = render()
    emu = {v["name"]: v for v in r.emulator_pod["spec"]["volumes"]}["control-token"]
    be = {v["name"]: v for v in r.backend_pod["spec"]["volumes"]}["control-token"]
    assert emu == be
    assert (
        env_of(r.emulator_container)["LOCO_CONTROL_TOKEN_FILE"]
        == env_of(r.backend_container)["LOCO_CONTROL_TOKEN_FILE"]
    )
