"""The chart's Grafana dashboard: its ConfigMap for the sidecar, its JSON, and its queries,
which promtool parses and evaluates against a sample fleet like the alerting rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART_DIR, NAMESPACE, render
from tests.deploy.promql import exported_names, metric_names, promtool, unknown_names

DASHBOARD = CHART_DIR / "files" / "dashboards" / "lego-loco.json"
# What Grafana puts in for the dashboard's variables when it runs a query.
VARIABLES = {"$namespace": NAMESPACE, "$__rate_interval": "2m"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def queries() -> dict[str, str]:
    """Each panel's queries, by "panel title / refId", as Grafana sends them."""
    found = {}
    for panel in panels():
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            found[f"{panel['title']} / {target['refId']}"] = expr
    return found


def by_title(title: str) -> str:
    (expr,) = [e for k, e in queries().items() if k.startswith(f"{title} / ")]
    return expr


# ------------------------------------------------------------------ the ConfigMap
def test_a_configmap_for_grafanas_sidecar() -> None:
    cm = render().get("ConfigMap", "loco-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == NAMESPACE
    assert json.loads(cm["data"]["lego-loco.json"]) == dashboard()


def test_sidecar_label_namespace_and_annotations_from_values() -> None:
    values = {
        "dashboards": {
            "label": "grafana.example/dashboard",
            "labelValue": "yes",
            "namespace": "monitoring",
            "annotations": {"grafana_folder": "Lego Loco"},
        }
    }
    cm = render(values).get("ConfigMap", "loco-dashboard")
    assert cm["metadata"]["labels"]["grafana.example/dashboard"] == "yes"
    assert "grafana_dashboard" not in cm["metadata"]["labels"]
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Lego Loco"}
    assert render({"dashboards": {"enabled": False}}).maybe("ConfigMap", "loco-dashboard") is None


# ------------------------------------------------------------------ the JSON
def test_every_panel_queries_the_chosen_prometheus() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert board["uid"] and board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels():
        where = panel["title"]
        assert panel["datasource"] == DATASOURCE, where
        assert panel["targets"], where
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), where
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, where
            assert target["expr"].strip(), where
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, where


def test_the_panels_the_fleet_needs() -> None:
    everything = " ".join(queries().values())
    for metric in (
        "loco_backend_instances",  # fleet health
        "loco_backend_stale_instances",
        "loco_backend_discovery_up",
        "loco_backend_instance_info",  # frame rates by node
        "loco_emulator_fps",  # by instance
        "loco_backend_circuit_breaker_state",
        "loco_remediation_actions_total",
        "loco_remediation_needs_person",
        "loco_remediation_paused",
        "loco_remediation_leader",
    ):
        assert metric in metric_names(everything), metric


def test_every_variable_a_query_uses_is_known() -> None:
    for key, expr in queries().items():
        assert not re.findall(r"\$\{?[A-Za-z_]\w*", expr), key


# ------------------------------------------------------------------ the queries
def test_queries_name_only_metrics_the_code_exports() -> None:
    exprs = list(queries().values())
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(metric, label) is Grafana's, not PromQL: its metric is checked.
            match = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["definition"])
            assert match, variable["definition"]
            exprs.append(match.group(1))
    assert all(metric_names(e) for e in exprs)
    assert unknown_names(exprs, exported_names()) == {}


def test_promtool_parses_every_query(tmp_path: Path) -> None:
    recorded = [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, expr in enumerate(queries().values())
    ]
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]})
    )
    out = promtool("check", "rules", "queries.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(recorded)} rules found" in out


# A small fleet as Prometheus would hold it: a backend scraped without honor_labels (the
# emulators' names in exported_instance), one emulator scraped so and one with
# honor_labels, and a series from another namespace that no panel may show.
_B = 'namespace="lego", job="loco-backend", instance="10.0.0.2:8081"'
_E0 = 'namespace="lego", job="loco-emulator", instance="10.0.0.10:8080", exported_instance="loco-emulator-0"'  # noqa: E501
_E1 = 'namespace="lego", job="loco-emulator", instance="loco-emulator-1"'
_FLEET = [
    *(
        (f'loco_backend_instances{{{_B}, status="{s}"}}', v)
        for s, v in (("healthy", "1"), ("degraded", "1"), ("unhealthy", "0"))
    ),
    *((f'loco_backend_instances{{{_B}, status="{s}"}}', "0") for s in ("starting", "unknown")),
    ('loco_backend_instances{namespace="other", instance="x", status="healthy"}', "50"),
    (f"loco_backend_stale_instances{{{_B}}}", "1"),
    (f"loco_backend_discovery_up{{{_B}}}", "1"),
    (f'loco_backend_discovery_last_sync_timestamp_seconds{{{_B}, source="kubernetes"}}', "0+60x30"),
    (f'loco_backend_instance_fps{{{_B}, exported_instance="loco-emulator-0"}}', "12"),
    (f'loco_backend_instance_fps{{{_B}, exported_instance="loco-emulator-1"}}', "3"),
    (f'loco_backend_instance_fps{{{_B}, exported_instance="static-0"}}', "6"),
    (
        f'loco_backend_instance_info{{{_B}, exported_instance="loco-emulator-0", node="node-a"}}',
        "1",
    ),
    (
        f'loco_backend_instance_info{{{_B}, exported_instance="loco-emulator-1", node="node-b"}}',
        "1",
    ),
    (f'loco_backend_instance_info{{{_B}, exported_instance="static-0", node=""}}', "1"),
    *(
        (
            f'loco_backend_circuit_breaker_state{{{_B}, target="{t}", '
            f'loco_backend_circuit_breaker_state="{s}"}}',
            "1" if s == now else "0",
        )
        for t, now in (
            ("loco-emulator-0", "closed"),
            ("loco-emulator-1", "open"),
            ("kubernetes-api", "closed"),
        )
        for s in ("closed", "open", "half_open")
    ),
    (f'loco_backend_circuit_breaker_failures{{{_B}, target="loco-emulator-0"}}', "0"),
    (f'loco_backend_circuit_breaker_failures{{{_B}, target="loco-emulator-1"}}', "4"),
    (f"loco_remediation_enabled{{{_B}}}", "1"),
    (f"loco_remediation_leader{{{_B}}}", "1"),
    (f"loco_remediation_paused{{{_B}}}", "1"),
    (f"loco_remediation_paused_since_timestamp_seconds{{{_B}}}", "60"),
    (f"loco_remediation_pause_until_timestamp_seconds{{{_B}}}", "0"),
    (f"loco_remediation_in_progress{{{_B}}}", "1"),
    (f'loco_remediation_needs_person{{{_B}, exported_instance="loco-emulator-1"}}', "1"),
    (
        f'loco_remediation_actions_total{{{_B}, action="reset", reason="frozen", outcome="acted"}}',
        "0+1x30",
    ),
    (
        f'loco_remediation_actions_total{{{_B}, action="give_up", reason="still_bad", '
        'outcome="acted"}',
        "0x10 1x20",
    ),
    (f"loco_emulator_fps{{{_E0}}}", "12"),
    (f"loco_emulator_fps{{{_E1}}}", "3"),
    ('loco_emulator_fps{namespace="other", instance="x:8080", exported_instance="x-0"}', "30"),
    (f"loco_emulator_qemu_up{{{_E0}}}", "1"),
    (f"loco_emulator_qemu_up{{{_E1}}}", "0"),
    *(
        (f'loco_emulator_health_state{{{e}, loco_emulator_health_state="{s}"}}', v)
        for e, now in ((_E0, "healthy"), (_E1, "unhealthy"))
        for s in ("starting", "healthy", "degraded", "unhealthy")
        for v in ["1" if s == now else "0"]
    ),
]
# Exact answers of the queries that join or relabel (the rest must merely answer).
_EXPECTED: dict[str, list[tuple[str, float]]] = {
    "Frame rate by node (mean of its emulators)": [
        ('{node="node-a"}', 12),
        ('{node="node-b"}', 3),
        ('{node="(none)"}', 6),
    ],
    "Frame rate by emulator": [
        ('{emulator="loco-emulator-0"}', 12),
        ('{emulator="loco-emulator-1"}', 3),
    ],
    "Emulators per node": [('{node="node-a"}', 1), ('{node="node-b"}', 1), ('{node="(none)"}', 1)],
    "Needs a person": [('{emulator="loco-emulator-1"}', 1)],
    "Breakers by state": [
        ('{loco_backend_circuit_breaker_state="closed"}', 1),
        ('{loco_backend_circuit_breaker_state="open"}', 1),
    ],
    "Instances by status": [
        ('{status="healthy"}', 1),
        ('{status="degraded"}', 1),
        ('{status="unhealthy"}', 0),
        ('{status="starting"}', 0),
        ('{status="unknown"}', 0),
    ],
    "QEMU down": [("{}", 1)],
}


def test_every_query_answers_over_a_sample_fleet(tmp_path: Path) -> None:
    """promtool evaluates each query: every one returns something (``absent`` of it is
    empty), and the joins and relabellings return exactly what they should."""
    checks: list[dict[str, Any]] = []
    for expr in queries().values():
        checks.append({"expr": f"absent({expr})", "eval_time": "10m", "exp_samples": []})
    for title, samples in _EXPECTED.items():
        checks.append(
            {
                "expr": by_title(title),
                "eval_time": "10m",
                "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
            }
        )
    unit = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                # A lone figure is the series' value all along (sampled every minute).
                "input_series": [
                    {"series": s, "values": v if " " in v or "x" in v else f"{v}x20"}
                    for s, v in _FLEET
                ],
                "promql_expr_test": checks,
            }
        ],
    }
    (tmp_path / "queries-test.yaml").write_text(yaml.safe_dump(unit, sort_keys=False))
    assert "SUCCESS" in promtool("test", "rules", "queries-test.yaml", cwd=tmp_path)


@pytest.mark.parametrize("title", sorted(_EXPECTED))
def test_expected_answers_name_real_panels(title: str) -> None:
    assert by_title(title)
