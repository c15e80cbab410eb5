"""``locotui demo``: a local fleet of emulators, the backend and Prometheus, then the console.

Quitting the console (or Ctrl-C, a closed terminal, SIGTERM) stops every process the demo
started; nothing is left running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from locotui import config
    from locotui.demo.stack import DemoStack

HELP = "run a local fleet of test emulators with the backend and open the console"
DESCRIPTION = """\
Builds the test guest image, starts N emulator supervisors (real QEMU) on free ports with
their overlays in the state directory, the backend with local discovery and, when
Prometheus is installed, a Prometheus scraping them all; then opens the console connected
to all of it. A control token is generated for the session and handed to every part in a
file only the owner can read. Quitting stops everything the demo started.

With --cluster: the same console on the real thing instead, a single-node Kubernetes on
this machine (root; `make demo-cluster`): the chart installed with Helm, N emulator pods
booting the test guest, the backend in the cluster, the console with the chart's operator
Role. Quitting stops the cluster if the demo started it (--keep-cluster keeps it).
"""

DEFAULT_INSTANCES = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Here --prometheus means "start a local one", not the console's "--prometheus URL":
    # the demo makes its own and points the console at it.
    parser.conflict_handler = "resolve"
    group = parser.add_argument_group("demo")  # made after, so it resolves the clash
    group.add_argument(
        "--instances",
        type=int,
        default=DEFAULT_INSTANCES,
        metavar="N",
        help=f"emulators to start (1-32, default {DEFAULT_INSTANCES})",
    )
    group.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where overlays, logs and the token go (default: a new directory, removed "
        "on exit; one given here is kept)",
    )
    group.add_argument(
        "--prometheus",
        dest="demo_prometheus",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start a local Prometheus for history (default: when it is installed)",
    )
    group.add_argument(
        "--fps", type=float, default=30.0, help="frames per second the test guests draw"
    )
    group.add_argument(
        "--cluster",
        action="store_true",
        help="run the fleet on a local single-node Kubernetes with the Helm chart instead "
        "of as local processes (needs root; see docs/deploy.md)",
    )
    group.add_argument(
        "--keep-cluster",
        action="store_true",
        help="with --cluster: leave the cluster running on quit (stop it with `make cluster-down`)",
    )
    group.add_argument(
        "--stream",
        action="store_true",
        help="stream each emulator's display (VP8), to watch in a browser at the backend's "
        "/watch/<name> page (the console's detail view shows it); costs CPU per emulator",
    )
    group.add_argument(
        "--no-console",
        action="store_true",
        help="start the fleet and wait (Ctrl-C stops it) instead of opening the console; "
        "prints the URLs so loco-backend or locotui can be pointed at it by hand",
    )


def _say(message: str) -> None:
    print(f"locotui demo: {message}", file=sys.stderr, flush=True)


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def run(settings: config.Settings, options: Any) -> int:
    if options.cluster:
        from locotui.demo import cluster

        return cluster.run(settings, options)
    # Here, not at import: building the command line must not load QEMU's tooling.
    from locotui.demo.stack import DemoError, DemoStack

    stack = DemoStack(
        instances=options.instances,
        state_dir=options.state_dir,
        prometheus=options.demo_prometheus,
        fps=options.fps,
        stream=options.stream,
    )
    started = time.monotonic()
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    failed = False
    try:
        try:
            asyncio.run(stack.start(_say))
        except DemoError as exc:
            failed = True
            _say(f"error: {exc}")
            return 1
        _say(f"ready in {time.monotonic() - started:.1f} s")
        if options.no_console:
            return _wait(stack)
        return _console(settings, stack)
    except (KeyboardInterrupt, _Stop):
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _say("stopping the fleet")
        stack.stop()
        if failed and stack.state_dir is not None:
            _say(f"logs kept in {stack.state_dir / 'logs'}")
        else:
            stack.cleanup()


def _wait(stack: DemoStack) -> int:
    _say(f"backend {stack.backend_url}")
    if stack.prometheus_url:
        _say(f"prometheus {stack.prometheus_url}")
    for child in stack.emulators:
        _say(f"emulator {child.name} {child.url}")
        if stack.stream:
            _say(f"  watch it at {stack.backend_url}/watch/{child.name}")
    _say(f"control token file {stack.token_file}; Ctrl-C stops everything")
    while True:  # until a signal raises out of here (KeyboardInterrupt or _Stop)
        signal.pause()


def _console(settings: config.Settings, stack: DemoStack) -> int:
    from locotui.console import run_console

    demo_settings = settings.model_copy(
        update={
            "backend_url": stack.backend_url,
            "control_token": stack.token,
            "prometheus_url": stack.prometheus_url or settings.prometheus_url,
            "read_only": False,
        }
    )
    # The demo's fleet lives on this machine only: no cluster, whatever kubeconfig is around.
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return run_console(demo_settings, env, kubernetes=False, notices=stack.deaths())
