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

from backend.models import Instance, InstanceSource
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
    use_kube = (instance is None or instance.source is InstanceSource.KUBERNETES) and (
        kube_configured(settings)
    )
    if use_kube:
        try:
            kube = await open_kube(settings)
        except DataError:
            if instance is None or options.previous:
                await backend.aclose()
                raise
            kube = None
        if kube is not None:
            lines = kube.pod_logs(
                options.name,
                container=options.container,
                tail=tail,
                follow=options.follow,
                previous=options.previous,
                timestamps=options.timestamps,
                since_seconds=options.since,
            )
            return lines, kube, backend
    if instance is None:
        await backend.aclose()
        assert backend_error is not None
        raise backend_error
    if options.previous:
        await backend.aclose()
        raise DataError(
            "--previous needs Kubernetes access (a kubeconfig); the backend serves only the "
            "current log"
        )
    if options.timestamps or options.since:
        note("--timestamps/--since apply to Kubernetes pods only; ignored")
    if options.follow:
        return backend.follow_logs(options.name, tail=tail), None, backend
    return _listed(backend, options.name, tail), None, backend


async def _listed(backend: object, name: str, tail: int) -> AsyncIterator[str]:
    for line in await backend.logs(name, tail=tail):  # type: ignore[attr-defined]
        yield line


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
