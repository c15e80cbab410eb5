"""``locotui logs NAME [-f] [--tail N] [--previous] [--timestamps] [--since S] [--pretty]``.

Kubernetes pods are read from the Kubernetes API with your credentials (like ``kubectl
logs``); local and static instances through the backend's log endpoint (their supervisor's
log file). ``--previous`` (the container's previous run) needs Kubernetes. Lines are
printed as received unless ``--pretty`` formats JSON records (time, level, logger,
message, context). Exit codes: 0, 1 failed, 2 unreachable, 3 forbidden, 4 not found.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, TextIO

from backend.models import Instance
from locotui.commands._common import (
    EXIT_OK,
    kube_configured,
    note,
    open_backend,
    open_kube,
    run_main,
)
from locotui.data.errors import DataError, NotFound
from locotui.data.logs import format_line, parse_line
from locotui.data.routes import Routes, is_pod

if TYPE_CHECKING:
    from locotui.config import Settings
    from locotui.data.kube_client import KubeClient

HELP = "print (and follow) an instance's log"
DESCRIPTION = __doc__ or ""


def _count(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be 0 or more")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="instance (pod) name")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument(
        "--tail", type=_count, default=None, help="lines from the end (default: log_tail_lines)"
    )
    parser.add_argument(
        "--previous", "-p", action="store_true", help="the previous container's log (Kubernetes)"
    )
    parser.add_argument(
        "--timestamps", action="store_true", help="prefix each line with its time (Kubernetes)"
    )
    parser.add_argument(
        "--since", type=_count, default=None, metavar="SECONDS", help="only newer lines"
    )
    parser.add_argument("--container", "-c", help="container name (Kubernetes)")
    parser.add_argument("--pretty", action="store_true", help="format JSON log records")


async def _source(
    settings: Settings, options: argparse.Namespace, tail: int
) -> tuple[AsyncIterator[str], KubeClient | None, object]:
    """(lines, kube client to close, backend client to close)."""
    backend = open_backend(settings)
    instance: Instance | None = None
    backend_error: DataError | None = None
    try:
        instance = await backend.get_instance(options.name)
    except NotFound:
        await backend.aclose()
        raise NotFound(
            f"no instance named {options.name!r} (backend {settings.backend_url})"
        ) from None
    except DataError as exc:
        backend_error = exc
    source = instance.source if instance is not None else None
    kube: KubeClient | None = None
    if is_pod(source, kube_configured(settings)):
        try:
            kube = await open_kube(settings)
        except DataError:
            if instance is None or options.previous:
                await backend.aclose()
                raise
    if instance is None and kube is None:
        await backend.aclose()
        assert backend_error is not None
        raise backend_error
    routes = Routes(backend=backend, kube=kube, source_of=lambda _name: source)
    route = routes.logs(
        options.name,
        tail=tail,
        follow=options.follow,
        previous=options.previous,
        timestamps=options.timestamps,
        since_seconds=options.since,
        container=options.container,
    )
    if route.source is None:
        await backend.aclose()
        raise DataError(
            "--previous needs Kubernetes access (a kubeconfig); the backend serves only the "
            "current log"
        )
    if kube is None and (options.timestamps or options.since):
        note("--timestamps/--since apply to Kubernetes pods only; ignored")
    if route.note:
        note(route.note)
    return route.source, kube, backend


async def _main(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    tail = options.tail if options.tail is not None else settings.log_tail_lines
    lines, kube, backend = await _source(settings, options, tail)
    try:
        async for raw in lines:
            text = format_line(parse_line(raw), show_instance=False) if options.pretty else raw
            out.write(text + "\n")
            out.flush()
    finally:
        await lines.aclose()  # type: ignore[attr-defined]
        if kube is not None:
            await kube.aclose()
        await backend.aclose()  # type: ignore[attr-defined]
    return EXIT_OK


def run(settings: Settings, options: argparse.Namespace, out: TextIO | None = None) -> int:
    return run_main(lambda: _main(settings, options, out or sys.stdout))
