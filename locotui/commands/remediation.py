"""``locotui remediation [status|pause|resume]``: the backend's automatic recovery, for
scripts (a maintenance window: pause, work, resume).

    locotui remediation [status] [--json]
    locotui remediation pause [--minutes N] [--reason TEXT] [--yes]
    locotui remediation resume [--yes]

``status`` (the default) prints the policy's state: on, on (dry run), PAUSED until when
and by whom, or off (also for a backend older than the feature), the acting replica, how
many instances it is working on and which need a person, and its budgets.

``pause`` and ``resume`` need the control token (LOCOTUI_CONTROL_TOKEN or
control_token_file) and are refused in read-only mode. The exact action is printed and
confirmed on a terminal unless ``--yes``; without a terminal on stdin, ``--yes`` is
required. Without ``--minutes`` a pause lasts until resumed (at most 10080 minutes, a
week, with it). Every replica of the backend sees a pause, and so does every console.

Exit codes: 0 done (status: read), 1 failed, not confirmed, or the policy is off on the
backend, 2 backend unreachable (or a bad --minutes), 3 forbidden or read-only, 4 the
backend has no automatic recovery (older than the console).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from backend.models import InstanceStatus, RemediationStatus
from locotui.commands._common import (
    EXIT_FAILED,
    EXIT_OK,
    confirmed,
    error,
    exit_code_for,
    note,
    open_backend,
    run_main,
)
from locotui.data.actions import ActionRunner, Phase, Progress
from locotui.data.backend_client import BackendClient
from locotui.data.errors import DataError, ReadOnly
from locotui.data.remediation import (
    describe_pause,
    describe_resume,
    pause_request,
    policy_state,
    policy_summary,
)

if TYPE_CHECKING:
    from locotui.config import Settings

HELP = "the automatic recovery: its state, or pause / resume it"
DESCRIPTION = __doc__ or ""
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "what",
        nargs="?",
        choices=("status", "pause", "resume"),
        default="status",
        help="status (the default), pause or resume",
    )
    parser.add_argument(
        "--minutes", help="pause: resume by itself after this long (default: until resumed)"
    )
    parser.add_argument("--reason", help="pause: why (others see it; audited by the backend)")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--json", action="store_true", help="status: print JSON")


def render_status(status: RemediationStatus) -> str:
    """The state as text, one fact a line."""
    lines = [f"auto-recovery: {policy_summary(status)}"]
    if not status.enabled:
        return lines[0]
    if status.holder:
        lines.append(f"acting replica: {status.holder}")
    people = ", ".join(status.needing_a_person) or "none"
    lines.append(f"working on: {status.in_remediation}; needing a person: {people}")
    lines.append(
        f"budgets: {status.max_actions_per_hour} actions per instance an hour, "
        f"{status.max_fraction:.0%} of the fleet at once, "
        f"{status.cooldown_seconds:g} s between two actions on one instance"
    )
    return "\n".join(lines)


async def _not_healthy(backend: BackendClient) -> int:
    """Instances not healthy now (for the resume question); 0 when it cannot be read."""
    try:
        items = (await backend.list_instances()).fleet.items
    except DataError:
        return 0
    return sum(1 for i in items if i.status is not InstanceStatus.HEALTHY)


async def _main(settings: Settings, options: argparse.Namespace, stdin: TextIO) -> int:
    what: str = options.what
    if what != "pause" and (options.minutes is not None or options.reason is not None):
        error("--minutes and --reason go with pause only")
        return EXIT_USAGE
    request = None
    if what == "pause":
        try:
            request = pause_request(options.minutes, options.reason)
        except ValueError as exc:
            error(f"--minutes: {exc}" if "minutes" in str(exc) else str(exc))
            return EXIT_USAGE
    if what != "status" and settings.read_only:
        raise ReadOnly(f"read-only mode: refusing to {what} the automatic recovery")
    async with open_backend(settings) as backend:
        status = await backend.remediation()
        if what == "status":
            if options.json:
                print(json.dumps(status.model_dump(mode="json"), separators=(",", ":")))
            else:
                print(render_status(status))
            return EXIT_OK
        if not status.enabled:
            error(
                "the automatic recovery is off on this backend: nothing to "
                f"{what} (start it with --remediation; Helm: backend.remediation.enabled)"
            )
            return EXIT_FAILED
        runner = ActionRunner(backend=backend)
        if request is not None:
            if status.paused:
                note(f"auto-recovery is {policy_summary(status)}; this pause replaces it")
            text = describe_pause(request, datetime.now(UTC))
            if not await confirmed(text, options.yes, stdin):
                return EXIT_FAILED
            results = await runner.pause_remediation(request.minutes, request.reason, _show)
        else:
            if policy_state(status) != "paused":
                print(f"auto-recovery: {policy_summary(status)} (not paused: nothing to do)")
                return EXIT_OK
            text = describe_resume(status, await _not_healthy(backend))
            if not await confirmed(text, options.yes, stdin):
                return EXIT_FAILED
            results = await runner.resume_remediation(_show)
    final = results[0]
    if final.phase is Phase.OK:
        print(f"auto-recovery: {final.message.removeprefix('now ')}")
        return EXIT_OK
    error(final.message)
    return exit_code_for(final.error) if final.error is not None else EXIT_FAILED


def _show(p: Progress) -> None:
    if p.phase is Phase.RUNNING:
        note(p.message)


def run(settings: Settings, options: argparse.Namespace, stdin: TextIO | None = None) -> int:
    return run_main(lambda: _main(settings, options, stdin or sys.stdin))
