"""``loco-backend``: command line, environment, and startup checks.

Bad input (an unreadable or malformed static file, a bad port, a missing kubeconfig, a port
already in use, an unreadable token file) ends the program with one clear line on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from backend.models import InstanceSource
from backend.version import VERSION
from emulator import jsonlog
from emulator.errors import SettingsError
from emulator.jsonlog import log

if TYPE_CHECKING:
    from backend.config import Settings

logger = logging.getLogger("backend.cli")

EXIT_USAGE = 2

DESCRIPTION = """\
Discovers Lego Loco emulators, probes their health through per-target circuit breakers,
and serves the fleet over HTTP: /api/instances (JSON, ETag), /api/events (server-sent
events), /api/instances/{name}/thumbnail.png, reset/restart (bearer token), /health,
/ready, /metrics and /openapi.json.

Every option can also come from the environment variable named in its help; a flag wins.
The control token is read only from LOCO_CONTROL_TOKEN or LOCO_CONTROL_TOKEN_FILE (the
file wins), never from a flag, so it does not show in the process list. Without a token
every reset/restart is refused.
"""


class UsageError(Exception):
    """Bad input found after the settings were read: the message is the one line to print."""


def build_parser() -> argparse.ArgumentParser:
    """The command line. Each flag's ``dest`` is the settings field it sets, and a flag not
    given is ``None``: the environment and the defaults are the model's business."""
    p = argparse.ArgumentParser(
        prog="loco-backend",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"loco-backend {VERSION}")
    g = p.add_argument_group("serving")
    g.add_argument("--host", help="address to listen on (LOCO_BACKEND_HOST, 0.0.0.0)")
    g.add_argument("--port", help="TCP port; 0 picks a free one (LOCO_BACKEND_PORT, 8081)")
    g = p.add_argument_group("discovery")
    g.add_argument(
        "--discovery",
        choices=[s.value for s in InstanceSource],
        help="where instances come from (LOCO_DISCOVERY, kubernetes)",
    )
    g.add_argument(
        "--static-config",
        help="static: YAML/JSON file listing name, health_url, vnc, log_file of each "
        "instance (LOCO_STATIC_CONFIG)",
    )
    g.add_argument(
        "--local-dir",
        help="local: directory whose */instance.json files the supervisors write "
        "(LOCO_LOCAL_DIR, .state)",
    )
    g.add_argument(
        "--namespace",
        help="kubernetes: namespace to watch; else KUBERNETES_NAMESPACE, the service-account "
        "namespace file, the kubeconfig context's namespace, then 'default'",
    )
    g.add_argument(
        "--kubeconfig",
        help="kubernetes: kubeconfig file (KUBECONFIG); without one, in-cluster "
        "configuration inside a pod, else ~/.kube/config",
    )
    g.add_argument("--context", help="kubernetes: kubeconfig context (default: current)")
    g.add_argument(
        "--resync",
        dest="resync_seconds",
        metavar="RESYNC",
        help="kubernetes: seconds between full relists (the watch ends and restarts) (300)",
    )
    g = p.add_argument_group("probing")
    g.add_argument("--probe-interval", help="seconds between probes (1)")
    g.add_argument("--probe-timeout", help="seconds a probe may take (2)")
    g.add_argument("--probe-concurrency", help="probes in flight at most (32)")
    g.add_argument(
        "--no-probe",
        dest="probing",
        action="store_false",
        default=None,
        help="do not probe (show discovery only; for benchmarks and debugging)",
    )
    g.add_argument(
        "--no-stream",
        dest="streaming",
        action="store_false",
        default=None,
        help="poll every supervisor's /health instead of holding its status stream open "
        "(e.g. behind a proxy that buffers server-sent events)",
    )
    g.add_argument(
        "--breaker-threshold", help="consecutive failures that open a target's circuit (3)"
    )
    g.add_argument(
        "--breaker-reset", help="seconds an open circuit waits before one trial call (5)"
    )
    g = p.add_argument_group("API")
    g.add_argument(
        "--action-interval",
        help="minimum seconds between two resets/restarts of one instance (5)",
    )
    g.add_argument("--thumbnail-ttl", help="seconds a proxied thumbnail is reused (1)")
    g.add_argument(
        "--sse-keepalive",
        help="seconds of silence before an event stream gets a keep-alive comment (15)",
    )
    g.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        default=None,
        help="do not log one line per request",
    )
    g = p.add_argument_group("automatic recovery (docs/recovery.md)")
    g.add_argument(
        "--remediation",
        action="store_true",
        default=None,
        help="reset, then restart instances that stay bad, within budgets (LOCO_REMEDIATION)",
    )
    g.add_argument(
        "--remediation-dry-run",
        action="store_true",
        default=None,
        help="decide and report, but act on nothing (LOCO_REMEDIATION_DRY_RUN)",
    )
    g.add_argument(
        "--remediation-max-actions",
        help="actions per instance per hour at most; then it needs a person "
        "(LOCO_REMEDIATION_MAX_ACTIONS, 3)",
    )
    g.add_argument(
        "--remediation-max-fraction",
        help="share of the fleet in remediation at once, at least one instance "
        "(LOCO_REMEDIATION_MAX_FRACTION, 0.25)",
    )
    g.add_argument(
        "--remediation-cooldown",
        help="seconds between two actions on one instance (LOCO_REMEDIATION_COOLDOWN, 15)",
    )
    g.add_argument(
        "--remediation-thresholds",
        metavar="PROFILE.KEY=SECONDS,...",
        help="override the profiles' thresholds, e.g. win98.frozen_for=240 "
        "(LOCO_REMEDIATION_THRESHOLDS; keys bad_for, frozen_for, watch_reset, "
        "watch_restart, recovered_for)",
    )
    g.add_argument(
        "--lease-name",
        help="kubernetes: the Lease that elects the one replica that acts "
        "(LOCO_LEASE_NAME, lego-loco-remediation)",
    )
    g.add_argument(
        "--lease-duration",
        metavar="SECONDS",
        help="kubernetes: how long a silent leader keeps the lease before another replica "
        "takes over, 3-600 (LOCO_LEASE_DURATION, 15)",
    )
    g = p.add_argument_group("logging")
    g.add_argument("--log-level", help="debug, info, warning, error (LOG_LEVEL, info)")
    g.add_argument(
        "--log-file",
        help="also write log lines here, errors also to <stem>.error<suffix>, both rotated "
        "at 10 MiB (LOCO_LOG_FILE)",
    )
    return p


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """The flags, then the environment, then the defaults; the control token from the
    environment only. Raises :class:`SettingsError`, or :class:`UsageError` for a
    discovery source that cannot work as asked."""
    # Imported here: --help and argparse's own errors should not pay for the model.
    from backend.config import Settings
    from emulator.layered_settings import env_layer, flag_layer, read_control_token

    token = read_control_token(env, "LOCO_CONTROL_TOKEN", "LOCO_CONTROL_TOKEN_FILE")
    settings = Settings.load(
        flag_layer(Settings, build_parser(), args),
        env_layer(Settings, env),
        control_token=token.value if token else None,
    )
    if settings.discovery is InstanceSource.STATIC and settings.static_config is None:
        raise UsageError("--discovery static needs --static-config FILE (or LOCO_STATIC_CONFIG)")
    local = settings.local_dir
    if settings.discovery is InstanceSource.LOCAL and local.exists() and not local.is_dir():
        raise UsageError(f"--local-dir {local} is not a directory")
    return settings


def bind_socket(host: str, port: int) -> socket.socket:
    """Binds now, so a port in use is reported as one line before anything starts."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args, env)
        try:
            jsonlog.configure(settings.log_level, settings.log_file)
        except OSError as exc:
            raise UsageError(f"--log-file {settings.log_file}: {exc.strerror or exc}") from None
        # Imported here: the CLI's --help and usage errors should not pay for FastAPI.
        from backend.api.app import create_app
        from backend.runtime import build_runtime, connect_kubernetes

        try:
            kube = None
            if settings.discovery is InstanceSource.KUBERNETES:
                kube = connect_kubernetes(settings, env)
            runtime = build_runtime(settings, env=env, kube=kube)
        except ValueError as exc:  # StaticConfigError, KubeConfigError
            raise UsageError(str(exc)) from None
        sock = bind_socket(settings.host, settings.port)
    except (SettingsError, UsageError) as exc:
        print(f"loco-backend: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    import uvicorn

    app = create_app(runtime)
    host, port = sock.getsockname()[:2]
    log(
        logger,
        logging.INFO,
        "loco-backend listening",
        host=host,
        port=port,
        discovery=settings.discovery.value,
        version=VERSION,
        control="enabled" if settings.control_token else "disabled (no control token)",
    )
    config = uvicorn.Config(
        app,
        log_config=None,  # keep emulator.jsonlog's JSON handlers
        access_log=False,  # our middleware logs requests with the request id
        lifespan="on",
        timeout_graceful_shutdown=2,
        server_header=False,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, to the handlers that
    # were there before it started; with these no-op handlers a graceful stop exits 0
    # instead of dying by the signal a second time.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _after_graceful_shutdown)
    server.run(sockets=[sock])
    log(logger, logging.INFO, "loco-backend stopped")
    return 0 if server.started else 1


def _after_graceful_shutdown(signum: int, frame: object) -> None:
    """The server has already stopped cleanly when this runs; nothing left to do."""


if __name__ == "__main__":
    sys.exit(main())
