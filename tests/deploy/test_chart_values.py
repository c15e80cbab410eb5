"""Bad values fail at install time with a message that names the value and the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART_DIR, chart, render, render_error

SCHEMA_ERROR = "values don't meet the specifications of the schema"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"emulator": {"replicas": -1}}, "at '/emulator/replicas': minimum: got -1, want 0"),
        ({"emulator": {"replicas": "3"}}, "at '/emulator/replicas': got string, want integer"),
        ({"emulator": {"profile": "win95"}}, "at '/emulator/profile': value must be one of"),
        ({"emulator": {"accel": "hvf"}}, "at '/emulator/accel': value must be one of 'auto'"),
        ({"emulator": {"memoryMB": 4}}, "at '/emulator/memoryMB': minimum: got 4, want 8"),
        ({"emulator": {"memoryMB": 70000}}, "at '/emulator/memoryMB': maximum"),
        ({"emulator": {"healthPort": 70000}}, "at '/emulator/healthPort': maximum"),
        ({"emulator": {"replica": 3}}, "at '/emulator': additional properties 'replica'"),
        ({"emulatr": {}}, "additional properties 'emulatr' not allowed"),
        ({"emulator": {"diskImage": {"source": "nfs"}}}, "at '/emulator/diskImage/source'"),
        (
            {"emulator": {"resources": {"limits": {"memory": "lots"}}}},
            "at '/emulator/resources/limits/memory'",
        ),
        ({"securityContext": {"runAsUser": 0}}, "at '/securityContext/runAsUser': minimum"),
        ({"logLevel": "verbose"}, "at '/logLevel': value must be one of"),
        ({"namePrefix": "Loco_1"}, "at '/namePrefix'"),
        ({"emulator": {"image": {"digest": "latest"}}}, "at '/emulator/image/digest'"),
        (
            {"emulator": {"probes": {"liveness": {"successThreshold": 2}}}},
            "at '/emulator/probes/liveness/successThreshold'",
        ),
        ({"rbac": {"operatorRole": {"subjects": [{"kind": "Team", "name": "x"}]}}}, "kind"),
        (
            {"emulator": {"state": {"persistence": {"retentionPolicy": {"whenScaled": "Keep"}}}}},
            "at '/emulator/state/persistence/retentionPolicy/whenScaled'",
        ),
        ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "interval"),
        ({"emulator": {"kvm": {"resourceName": ""}}}, "at '/emulator/kvm/resourceName'"),
        ({"alerts": {"prometheusRule": "maybe"}}, "at '/alerts/prometheusRule'"),
        ({"alerts": {"emulatorDown": {"for": "5 minutes"}}}, "at '/alerts/emulatorDown/for'"),
        ({"alerts": {"frameRateCollapsed": {"belowFps": 0}}}, "belowFps"),
        ({"alerts": {"namespaceLabel": "kubernetes-namespace"}}, "at '/alerts/namespaceLabel'"),
        ({"alerts": {"emulatorDown": {"severity": ""}}}, "at '/alerts/emulatorDown/severity'"),
        ({"dashboards": {"labelValue": "a b"}}, "at '/dashboards/labelValue'"),
    ],
)
def test_schema_rejects_bad_values(values: dict[str, Any], expected: str) -> None:
    message = render_error(values)
    assert SCHEMA_ERROR in message
    assert expected in message, message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"emulator": {"diskImage": {"source": "testimage"}}},
            "emulator.diskImage.source=testimage boots the built-in test guest: "
            "set emulator.profile=testimage",
        ),
        (
            {"emulator": {"memoryMB": 4000}},
            "emulator.memoryMB=4000 does not fit in emulator.resources.limits.memory=4Gi",
        ),
        (
            {"emulator": {"memoryMB": 1024, "resources": {"limits": {"memory": "1024Mi"}}}},
            "raise the limit to at least 1280Mi",
        ),
        (
            {"emulator": {"terminationGracePeriodSeconds": 10}},
            "emulator.terminationGracePeriodSeconds=10 must be greater than the ACPI "
            "shutdown grace (15 s",
        ),
        (
            {"emulator": {"diskImage": {"source": "image"}}},
            "emulator.diskImage.image.repository is required with emulator.diskImage.source=image",
        ),
        (
            {"emulator": {"diskImage": {"pvc": {"claimName": ""}}}},
            "emulator.diskImage.pvc.claimName is required with emulator.diskImage.source=pvc",
        ),
    ],
)
def test_cross_field_checks_explain_the_fix(values: dict[str, Any], expected: str) -> None:
    assert expected in render_error(values)


def test_good_values_pass() -> None:
    chart().validate_schema(None)
    chart().validate_schema(
        {
            "emulator": {
                "memoryMB": 512,
                "shutdownGraceSeconds": 30.5,
                "accel": "kvm",
                "vnc": {"host": "::", "display": 1},
                "resources": {"limits": {"cpu": 1.5, "memory": "6Gi"}},
                "extraEnv": [{"name": "X", "value": "1"}],
            },
            "controlToken": {"existingSecret": "loco.token"},
            "securityContext": {"runAsUser": None, "runAsGroup": None, "fsGroup": None},
        }
    )
    assert render({"emulator": {"memoryMB": 3840}}).statefulset


def test_every_value_has_a_comment() -> None:
    """values.yaml documents every key.

    A key is documented by a comment right above it, or by being part of a documented
    block: the first key under a documented parent, or the next key after a documented
    sibling with no blank line between (e.g. the four timings of one probe).
    """
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    def is_key(line: str) -> bool:
        s = line.strip()
        return bool(s) and not s.startswith(("#", "-")) and ":" in s

    documented: dict[int, bool] = {}
    undocumented = []
    for i, line in enumerate(lines):
        if not is_key(line):
            continue
        # step back over the previous sibling's children and list items
        j = i - 1
        while j >= 0 and lines[j].strip() and not lines[j].strip().startswith("#"):
            if indent(lines[j]) < indent(line) or (
                indent(lines[j]) == indent(line) and is_key(lines[j])
            ):
                break
            j -= 1
        if j < 0 or not lines[j].strip():
            ok = False
        elif lines[j].strip().startswith("#"):
            ok = True
        else:  # the previous sibling, or the parent
            ok = documented.get(j, False)
        documented[i] = ok
        if not ok:
            undocumented.append(f"{i + 1}: {line.strip()}")
    assert not undocumented, "values without a comment:\n" + "\n".join(undocumented)


def test_schema_covers_every_default_value() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

    def walk(value: Any, node: dict[str, Any], path: str) -> None:
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        if isinstance(value, dict) and node.get("additionalProperties") is False:
            for key, sub in value.items():
                assert key in node["properties"], f"{path}.{key} is not in the schema"
                walk(sub, node["properties"][key], f"{path}.{key}")

    walk(defaults, schema, "")
    assert schema["additionalProperties"] is False
