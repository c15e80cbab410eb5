"""``locotui status [--json] [--watch]``: the fleet at a glance, with a scriptable exit code.

Exit codes: 0 every instance is healthy; 1 any is degraded, unhealthy, starting or
unknown; 5 any needs a person (the backend's automatic recovery reset it, restarted it
and gave up on it), whatever the others are; 2 the backend is unreachable (or answers
errors), or the backend cannot reach the cluster (its discovery reports an error), which
goes before everything (nothing else can be known then). So: 2, then 5, then 1, then 0.
When the backend is unreachable and a kubeconfig is available, the pods are listed from
Kubernetes (marked as such) and the exit code is still 2.

Under the table: the automatic recovery's state (``auto-recovery: on``, ``on (dry
run)``, ``PAUSED until 14:05Z (by 10.0.0.3: moving racks)``, ``off``) and one line per
instance that needs a person, with why. ``--json`` has them as ``remediation`` (the
backend's ``GET /api/remediation``, null when it could not be read) and
``needs_person`` (names).

``--watch`` reprints whenever the fleet changes (at most twice a second) until Ctrl-C,
then exits with the code of the last state shown. With ``--json`` each state is one JSON
document per line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from backend.models import Instance, InstanceList, InstanceStatus, RemediationStatus
from locotui.commands._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NEEDS_PERSON,
    EXIT_OK,
    EXIT_UNREACHABLE,
    kube_configured,
    open_backend,
    open_kube,
    run_main,
)
from locotui.data.errors import DataError
from locotui.data.feeds import FleetFeeds
from locotui.data.fleet import SEVERITY, FleetModel, Origin, Source, qemu_started_at
from locotui.data.remediation import needing_a_person, policy_summary

if TYPE_CHECKING:
    from locotui.config import Settings

HELP = "show the fleet; exit 0 all healthy, 1 not all healthy, 5 some need a person, 2 unreachable"
DESCRIPTION = __doc__ or ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--watch", "-w", action="store_true", help="reprint on every change until Ctrl-C"
    )


def exit_code(instances: list[Instance], reachable: bool, discovery_ok: bool = True) -> int:
    """2 unreachable, then 5 someone must act, then 1 not all healthy, else 0."""
    if not reachable or not discovery_ok:
        return EXIT_UNREACHABLE
    if needing_a_person(instances):
        return EXIT_NEEDS_PERSON
    if all(i.status is InstanceStatus.HEALTHY for i in instances):
        return EXIT_OK
    return EXIT_FAILED


def render_recovery(instances: list[Instance], remediation: RemediationStatus | None) -> str:
    """The automatic recovery's lines under the table: its state, then who needs a
    person and why."""
    lines = [f"auto-recovery: {policy_summary(remediation)}"]
    for inst in needing_a_person(sorted(instances, key=lambda i: i.name)):
        why = (inst.remediation.reason if inst.remediation else None) or inst.status_reason
        lines.append(f"needs a person: {inst.name}" + (f" ({why})" if why else ""))
    return "\n".join(lines)


def _age(inst: Instance, now: datetime) -> str:
    started = None
    if inst.pod is not None:
        started = inst.pod.start_time or inst.pod.created_at
    if started is None:
        started = qemu_started_at(inst.health)
    if started is None:
        return "-"
    seconds = (now - started).total_seconds()
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _restarts(inst: Instance) -> int:
    return (inst.pod.restarts if inst.pod else 0) + (
        inst.health.qemu.restarts if inst.health else 0
    )


def render_table(
    instances: list[Instance],
    *,
    header: str | None = None,
    now: datetime | None = None,
) -> str:
    now = now or datetime.now(UTC)
    rows = [("NAME", "STATUS", "FPS", "RESTARTS", "NODE", "AGE", "REASON")]
    for i in sorted(instances, key=lambda i: (SEVERITY[i.status], i.name)):
        rows.append(
            (
                i.name,
                i.status.value + ("*" if i.stale else ""),
                f"{i.fps:.1f}" if i.fps is not None else "-",
                str(_restarts(i)),
                (i.pod.node if i.pod and i.pod.node else "-"),
                _age(i, now),
                (i.status_reason or "")[:80],
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    lines = [header] if header else []
    for r in rows:
        lines.append("  ".join(r[c].ljust(widths[c]) for c in range(len(widths))) + "  " + r[-1])
    counts: dict[str, int] = {}
    for i in instances:
        counts[i.status.value] = counts.get(i.status.value, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no instances"
    lines.append(
        f"{len(instances)} instances: {summary}"
        + ("  (* stale)" if any(i.stale for i in instances) else "")
    )
    return "\n".join(line.rstrip() for line in lines)


def render_json(
    instances: list[Instance],
    *,
    code: int,
    source: str,
    error: str | None,
    discovery: Any = None,
    remediation: RemediationStatus | None = None,
) -> str:
    return json.dumps(
        {
            "exit_code": code,
            "healthy": code == EXIT_OK,
            "source": source,
            "error": error,
            "at": datetime.now(UTC).isoformat(),
            "discovery": discovery.model_dump(mode="json") if discovery is not None else None,
            "counts": {s.value: sum(1 for i in instances if i.status is s) for s in InstanceStatus},
            "needs_person": sorted(i.name for i in needing_a_person(instances)),
            "remediation": remediation.model_dump(mode="json") if remediation else None,
            "instances": [i.model_dump(mode="json") for i in instances],
        },
        separators=(",", ":"),
    )


async def _kube_instances(settings: Settings) -> tuple[list[Instance] | None, str | None]:
    if not kube_configured(settings):
        return None, None
    from locotui.data.kube_client import pod_instance

    try:
        kube = await open_kube(settings)
        try:
            snapshot = await kube.list_pods()
        finally:
            await kube.aclose()
    except DataError as exc:
        return None, str(exc)
    return [pod_instance(p) for p in snapshot.pods], None


async def _once(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    backend_error: str | None = None
    fleet: InstanceList | None = None
    remediation: RemediationStatus | None = None
    async with open_backend(settings) as backend:
        try:
            fleet = (await backend.list_instances()).fleet
        except DataError as exc:
            backend_error = str(exc)
        if fleet is not None:
            # The fleet is the answer; the policy's state only adds to it.
            with contextlib.suppress(DataError):
                remediation = await backend.remediation()
    if fleet is not None:
        d = fleet.discovery
        code = exit_code(fleet.items, True, d.ok)
        if options.json:
            print(
                render_json(
                    fleet.items,
                    code=code,
                    source="backend",
                    error=None if d.ok else d.error,
                    discovery=d,
                    remediation=remediation,
                ),
                file=out,
            )
        else:
            header = None
            if not d.ok:
                header = f"backend cannot reach {d.source.value} discovery: {d.error or 'error'}"
            print(render_table(fleet.items, header=header), file=out)
            print(render_recovery(fleet.items, remediation), file=out)
        return code
    # The backend is gone: show what Kubernetes knows, but say so and still exit 2.
    pods, kube_error = await _kube_instances(settings)
    error = backend_error or "backend unreachable"
    if options.json:
        print(
            render_json(
                pods or [],
                code=EXIT_UNREACHABLE,
                source="kubernetes" if pods is not None else "none",
                error=error + (f"; {kube_error}" if kube_error else ""),
            ),
            file=out,
        )
    else:
        print(f"locotui: error: {error}", file=sys.stderr)
        if pods is not None:
            header = "Kubernetes-only view (no emulator health):"
            print(render_table(pods, header=header), file=out)
        elif kube_error:
            print(f"locotui: error: {kube_error}", file=sys.stderr)
    return EXIT_UNREACHABLE


def _model_code(fleet: FleetModel) -> int:
    instances = [e.full for e in fleet.entries.values() if e.full is not None]
    discovery_ok = fleet.discovery.ok if fleet.discovery is not None else True
    return exit_code(instances, fleet.live, discovery_ok)


async def _watch(
    settings: Settings, options: argparse.Namespace, out: TextIO, state: dict[str, int]
) -> int:
    fleet = FleetModel(max_rate=2.0)
    kube = (lambda: open_kube(settings)) if kube_configured(settings) else None
    code = EXIT_UNREACHABLE
    tty = out.isatty()
    async with open_backend(settings) as backend:
        feeds = FleetFeeds(fleet, backend=backend, kube=kube, fallback_after=3.0)
        await feeds.start()
        try:
            seen = -1
            while True:
                seen = await fleet.wait_changed(seen)
                code = state["code"] = _model_code(fleet)
                instances = [e.full for e in fleet.entries.values() if e.full is not None]
                link = fleet.links[Source.BACKEND]
                error = None if fleet.live else (link.error or f"backend {link.state.value}")
                if options.json:
                    source = (
                        "kubernetes"
                        if any(e.origin is Origin.KUBERNETES for e in fleet.entries.values())
                        else "backend"
                    )
                    print(
                        render_json(
                            instances,
                            code=code,
                            source=source,
                            error=error,
                            discovery=fleet.discovery,
                            remediation=fleet.remediation,
                        ),
                        file=out,
                        flush=True,
                    )
                    continue
                stamp = datetime.now().strftime("%H:%M:%S")
                header = f"{stamp}  backend {link.state.value}" + (f": {error}" if error else "")
                if feeds.fallback_active:
                    header += "  (Kubernetes-only view)"
                text = render_table(instances, header=header)
                if not feeds.fallback_active:
                    text += "\n" + render_recovery(instances, fleet.remediation)
                print(("\x1b[H\x1b[2J" if tty else "\n") + text, file=out, flush=True)
        except asyncio.CancelledError:
            return code
        finally:
            await feeds.stop()
            if feeds.kube is not None:
                await feeds.kube.aclose()


def run(settings: Settings, options: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if getattr(options, "watch", False):
        # Ctrl-C is the normal way out of --watch: exit with the last state's code.
        state = {"code": EXIT_UNREACHABLE}
        result = run_main(lambda: _watch(settings, options, out, state))
        return state["code"] if result == EXIT_INTERRUPTED else result
    return run_main(lambda: _once(settings, options, out))
