"""PromQL checks shared by the alert and dashboard tests.

* :func:`promtool` runs the real ``promtool`` (Debian's ``prometheus`` package, which
  ``make setup`` installs), so a rule or query is parsed and evaluated by Prometheus's own
  engine. Without it the tests fail and say how to get it: silently skipping would let
  rules that Prometheus refuses ship.
* :func:`exported_names` lists every series name the code exports (the backend's and an
  emulator's registry), and :func:`metric_names` finds the metric names a PromQL
  expression uses, so a test can say that every expression names only those.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from backend.metrics import BackendMetrics
from emulator.metrics import create_registry
from emulator.models import DiskFacts, EmulatorStatus, OverallStatus, QemuFacts, VideoFacts


def promtool(*args: str, cwd: Path) -> str:
    """Runs promtool; fails the test with its output unless it succeeds."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is not on PATH: it comes with Debian's prometheus package, which "
            "`make setup` installs (scripts/setup-system.sh)"
        )
    done = subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


# ------------------------------------------------------------------ exported names
# The series a metric family of each type is exposed as (text format, prometheus_client).
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def _names(registry: CollectorRegistry) -> set[str]:
    # From the families' types, not only from their samples: a labelled metric that has
    # no child yet (no breaker, no remediation action so far) exports no sample at all.
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def _full_status() -> EmulatorStatus:
    """An emulator status with every optional figure present, so every gauge is exported."""
    return EmulatorStatus(
        instance="loco-emulator-0",
        overall_status=OverallStatus.HEALTHY,
        qemu_healthy=True,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        supervisor_uptime_seconds=60.0,
        qemu=QemuFacts(pid=1, running=True, qmp_status="running", uptime_seconds=50.0),
        video=VideoFacts(
            display_active=True, estimated_frame_rate=12.0, last_frame_age_seconds=0.5
        ),
        disk=DiskFacts(
            image="/i/win98.qcow2",
            format="qcow2",
            virtual_size=1,
            overlay="/s/overlay.qcow2",
            overlay_size=1,
            free_bytes=1,
        ),
    )


def exported_names() -> set[str]:
    """Every series name the backend and an emulator export."""
    status = _full_status()
    emulator: Any = SimpleNamespace(
        name=status.instance,
        supervisor=SimpleNamespace(on_qmp_latency=None),
        status=lambda: status,
    )
    return _names(BackendMetrics().registry) | _names(create_registry(emulator))


# ------------------------------------------------------------------ names in PromQL
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
# Label lists: by (...), without (...), on (...), ignoring (...), group_left (...), ...
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"offset", "bool", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects: identifiers that are not functions, aggregation
    operators, keywords, label names or numbers. (promtool prints no syntax tree, so this
    strips strings, matchers, ranges and label lists and reads what is left.)"""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _LABEL_LISTS.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word, call = match.group(1), match.group(2)
        if call is None and word.lower() not in _KEYWORDS:
            names.add(word)
    return names


def selectors(expr: str) -> list[tuple[str, str]]:
    """Each vector selector of ``expr`` as (metric name, its matchers or "")."""
    names = metric_names(expr)
    text = _LABEL_LISTS.sub(" ", expr)
    found = []
    for match in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\{[^{}]*\})?(?![\w:=!~(])", text):
        if match.group(1) in names:
            found.append((match.group(1), match.group(2) or ""))
    return found


def unknown_names(exprs: Iterable[str], known: set[str]) -> dict[str, set[str]]:
    """expression -> the names it uses that ``known`` does not have (only those with any)."""
    found = {expr: metric_names(expr) - known for expr in exprs}
    return {expr: names for expr, names in found.items() if names}
