"""The chart's alerting rules: their two forms, promtool's verdict, and the metrics they name.

The unit tests of every alert (a case that fires and a case that must not, for each) are
in tests/deploy/alerts/rules-test.yaml, run here with `promtool test rules`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART_DIR, NAMESPACE, Rendered, render
from tests.deploy.promql import (
    exported_names,
    metric_names,
    promtool,
    selectors,
    unknown_names,
)

UNIT_TESTS = Path(__file__).parent / "alerts" / "rules-test.yaml"
OPERATOR = ["monitoring.coreos.com/v1/PrometheusRule"]
ALERTS = {
    "LocoEmulatorDown",
    "LocoEmulatorUnready",
    "LocoEmulatorFrameRateCollapsed",
    "LocoBreakerOpen",
    "LocoDiscoveryStale",
    "LocoRemediationNeedsPerson",
    "LocoRemediationPauseOverdue",
    "LocoRemediationPausedOpenEnded",
}


def groups(rendered: Rendered) -> list[dict[str, Any]]:
    """The rule groups, from whichever form the chart rendered."""
    rule = rendered.maybe("PrometheusRule", "loco-alerts")
    if rule is not None:
        assert rendered.maybe("ConfigMap", "loco-alerts") is None
        return rule["spec"]["groups"]
    text = rendered.get("ConfigMap", "loco-alerts")["data"]["rules.yaml"]
    return yaml.safe_load(text)["groups"]


def rules(rendered: Rendered) -> dict[str, dict[str, Any]]:
    found = [r for g in groups(rendered) for r in g["rules"]]
    by_name = {r["alert"]: r for r in found}
    assert len(by_name) == len(found), "two alerts with one name"
    return by_name


def write_rules(rendered: Rendered, directory: Path) -> Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups(rendered)}, sort_keys=False))
    return path


# ------------------------------------------------------------------ the two forms
def test_a_plain_rules_file_without_the_operator() -> None:
    r = render()
    assert r.all("PrometheusRule") == []
    cm = r.get("ConfigMap", "loco-alerts")
    assert set(cm["data"]) == {"rules.yaml"}
    assert set(rules(r)) == ALERTS


def test_a_prometheus_rule_where_the_operator_is() -> None:
    r = render(api_versions=OPERATOR)
    rule = r.get("PrometheusRule", "loco-alerts")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert r.maybe("ConfigMap", "loco-alerts") is None
    assert set(rules(r)) == ALERTS


def test_both_forms_hold_the_same_rules() -> None:
    assert groups(render(api_versions=OPERATOR)) == groups(render())


@pytest.mark.parametrize(
    ("mode", "api_versions", "kind"),
    [
        (True, None, "PrometheusRule"),
        (False, OPERATOR, "ConfigMap"),
        ("auto", None, "ConfigMap"),
        ("auto", OPERATOR, "PrometheusRule"),
    ],
)
def test_the_form_can_be_chosen(mode: object, api_versions: list[str] | None, kind: str) -> None:
    r = render({"alerts": {"prometheusRule": mode}}, api_versions=api_versions)
    assert [d["kind"] for d in r.docs if d["metadata"]["name"] == "loco-alerts"] == [kind]


def test_rule_labels_and_no_rules_when_disabled() -> None:
    r = render({"alerts": {"ruleLabels": {"release": "kps"}}}, api_versions=OPERATOR)
    assert r.get("PrometheusRule", "loco-alerts")["metadata"]["labels"]["release"] == "kps"
    off = render({"alerts": {"enabled": False}}, api_versions=OPERATOR)
    assert off.maybe("PrometheusRule", "loco-alerts") is None
    assert off.maybe("ConfigMap", "loco-alerts") is None


# ------------------------------------------------------------------ promtool
def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    path = write_rules(render(), tmp_path)
    assert f"SUCCESS: {len(ALERTS)} rules found" in promtool(
        "check", "rules", path.name, cwd=tmp_path
    )


def test_promtool_unit_tests_of_every_alert(tmp_path: Path) -> None:
    write_rules(render(), tmp_path)
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    assert "SUCCESS" in promtool("test", "rules", UNIT_TESTS.name, cwd=tmp_path)


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing == ALERTS, f"no case in which these fire: {ALERTS - firing}"
    assert quiet == ALERTS, f"no case in which these stay quiet: {ALERTS - quiet}"


# ------------------------------------------------------------------ metric names
def test_expressions_name_only_metrics_the_code_exports() -> None:
    exprs = [r["expr"] for r in rules(render()).values()]
    assert all(metric_names(e) for e in exprs)
    assert unknown_names(exprs, exported_names()) == {}


def test_the_metric_name_check_can_fail() -> None:
    """Functions, keywords, label names, strings and durations are not taken for metric
    names, and a misspelt metric is caught."""
    expr = (
        'sum by (node) (rate(loco_x_total{a="b", c=~"d(e)"}[5m] offset 1h)) '
        "* on (instance) group_left (node) foo_info "
        'unless bar == bool 1 and label_replace(baz, "x", "$1", "y", "(.*)") > 1e+06 or vector(0)'
    )
    assert metric_names(expr) == {"loco_x_total", "foo_info", "bar", "baz"}
    known = exported_names()
    assert {"loco_emulator_fps", "loco_backend_instance_info"} <= known
    assert unknown_names(["loco_emulator_fps == 0", "loco_emulator_fpz == 0"], known) == {
        "loco_emulator_fpz == 0": {"loco_emulator_fpz"}
    }


# ------------------------------------------------------------------ values
def test_thresholds_durations_and_labels_come_from_values(tmp_path: Path) -> None:
    values = {
        "alerts": {
            "labels": {"team": "trains"},
            "namespaceLabel": "",
            "emulatorDown": {"for": "2m", "severity": "page", "labels": {"team": "qemu"}},
            "frameRateCollapsed": {
                "window": "20m",
                "belowFps": 0.5,
                "baseline": "3h",
                "normalFps": 8,
            },
            "discoveryStale": {"maxSyncAgeSeconds": 1200},
            "pauseOverdue": {"graceSeconds": 60},
            "pausedOpenEnded": {"maxSeconds": 7200},
            "breakerOpen": {"enabled": False},
        }
    }
    r = render(values)
    found = rules(r)
    assert "LocoBreakerOpen" not in found
    down = found["LocoEmulatorDown"]
    assert down["for"] == "2m"
    assert down["labels"] == {"severity": "page", "team": "qemu"}  # its own labels win
    assert found["LocoEmulatorUnready"]["labels"] == {"severity": "warning", "team": "trains"}
    assert down["expr"] == "loco_emulator_qemu_up == 0"  # no namespace limit
    fps = found["LocoEmulatorFrameRateCollapsed"]["expr"]
    assert "max_over_time(loco_emulator_fps[20m]) < 0.5" in fps
    assert "quantile_over_time(0.5, loco_emulator_fps[3h] offset 20m) >= 8" in fps
    assert "> 1200" in found["LocoDiscoveryStale"]["expr"]
    assert "> 60\n" in found["LocoRemediationPauseOverdue"]["expr"]
    assert "> 7200\n" in found["LocoRemediationPausedOpenEnded"]["expr"]
    path = write_rules(r, tmp_path)
    promtool("check", "rules", path.name, cwd=tmp_path)


def test_every_selector_is_limited_to_the_release_namespace() -> None:
    for name, rule in rules(render()).items():
        found = selectors(rule["expr"])
        assert found, name
        for metric, matchers in found:
            assert f'namespace="{NAMESPACE}"' in matchers, (name, metric)


def test_a_group_whose_alerts_are_all_off_is_left_out(tmp_path: Path) -> None:
    off = {"enabled": False}
    r = render({"alerts": {"needsPerson": off, "pauseOverdue": off, "pausedOpenEnded": off}})
    assert [g["name"] for g in groups(r)] == ["lego-loco.emulators", "lego-loco.backend"]
    path = write_rules(r, tmp_path)
    promtool("check", "rules", path.name, cwd=tmp_path)


def test_every_runbook_link_has_its_section() -> None:
    docs = (CHART_DIR.parents[2] / "docs" / "deploy.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in docs.splitlines()
        if line.startswith("#")
    }
    for name, rule in rules(render()).items():
        path, anchor = rule["annotations"]["runbook_url"].split("#")
        assert path == "docs/deploy.md", name
        assert anchor in anchors, f"{name}: no section #{anchor} in docs/deploy.md"
