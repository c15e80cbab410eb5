"""``locotui restart NAME [--soft] [--yes] [--wait]``: restart or soft-reset one instance.

Without ``--soft`` the pod is deleted with *your* Kubernetes credentials (its StatefulSet
recreates it); for local/static instances, or when no kubeconfig is available, the
backend's restart endpoint does it. ``--soft`` asks the backend for a QMP
``system_reset`` (needs the control token: LOCOTUI_CONTROL_TOKEN or control_token_file).

The exact action is printed and confirmed on a terminal unless ``--yes``; without a
terminal on stdin, ``--yes`` is required. Exit codes: 0 done, 1 failed (or not
confirmed), 2 backend/cluster unreachable, 3 forbidden or read-only, 4 no such instance.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from backend.models import Instance
from locotui.commands._common import (
    EXIT_FAILED,
    EXIT_OK,
    confirmed,
    error,
    exit_code_for,
    kube_configured,
    note,
    open_backend,
    open_kube,
    run_main,
)
from locotui.data.actions import ActionKind, ActionRunner, Phase, Progress
from locotui.data.errors import DataError, NotFound, ReadOnly
from locotui.data.fleet import FleetModel
from locotui.data.routes import is_pod

if TYPE_CHECKING:
    from locotui.config import Settings
    from locotui.data.kube_client import KubeClient

HELP = "restart (delete the pod) or --soft reset one instance"
DESCRIPTION = __doc__ or ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="instance (pod) name")
    parser.add_argument(
        "--soft", action="store_true", help="soft reset (QMP system_reset) instead of restart"
    )
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="after deleting a pod, wait until its replacement is Ready",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds --wait waits at most (300)"
    )


async def _main(settings: Settings, options: argparse.Namespace, stdin: TextIO) -> int:
    action = ActionKind.SOFT_RESET if options.soft else ActionKind.RESTART_POD
    if settings.read_only:
        raise ReadOnly(f"read-only mode: refusing to {'reset' if options.soft else 'restart'}")
    name: str = options.name
    fleet = FleetModel()
    kube: KubeClient | None = None
    async with open_backend(settings) as backend:
        instance: Instance | None = None
        backend_error: DataError | None = None
        try:
            instance = await backend.get_instance(name)
        except NotFound:
            raise NotFound(f"no instance named {name!r} (backend {settings.backend_url})") from None
        except DataError as exc:
            backend_error = exc
        try:
            source = instance.source if instance is not None else None
            if not options.soft and is_pod(source, kube_configured(settings)):
                try:
                    kube = await open_kube(settings)
                except DataError as exc:
                    if instance is None:
                        raise
                    note(f"{exc}; restarting through the backend instead")
            if instance is None:
                if options.soft or kube is None:
                    assert backend_error is not None
                    raise backend_error
                # Backend gone: the pod itself must exist.
                from locotui.data.kube_client import pod_instance

                instance = pod_instance(await kube.get_pod(name))
            fleet.upsert(instance)
            runner = ActionRunner(
                backend=backend,
                kube=kube,
                fleet=fleet,
                wait_ready=options.wait,
                ready_timeout=options.timeout,
            )
            if not await confirmed(runner.describe(action, [name]), options.yes, stdin):
                return EXIT_FAILED

            def show(p: Progress) -> None:
                if p.phase in (Phase.RUNNING, Phase.OK):
                    note(f"{p.target}: {p.message}")

            results = await runner.run(action, [name], show)
        finally:
            if kube is not None:
                await kube.aclose()
    final = results[0] if results else None
    if final is None:
        error("nothing was done")
        return EXIT_FAILED
    if final.phase is Phase.OK:
        print(f"{name}: {final.message}")
        return EXIT_OK
    error(final.message)
    return exit_code_for(final.error) if final.error is not None else EXIT_FAILED


def run(settings: Settings, options: argparse.Namespace, stdin: TextIO | None = None) -> int:
    return run_main(lambda: _main(settings, options, stdin or sys.stdin))
