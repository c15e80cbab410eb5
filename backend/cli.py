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
from pathlib import Path

from backend.config import DEFAULT_LOCAL_DIR, DEFAULT_PORT, Settings
from backend.kube.conventions import SERVICE_ACCOUNT_NAMESPACE_FILE
from backend.models import InstanceSource
from backend.version import VERSION
from emulator import jsonlog
from emulator.jsonlog import log

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
    """Bad input: the message is the one line to print."""


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value not in (None, "") else None


def _port(value: str, where: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise UsageError(f"{where}={value!r} is not a port number (0-65535)") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"{where}={value!r} is out of range (0-65535)")
    return port


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be greater than 0")
    return number


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="loco-backend",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"loco-backend {VERSION}")
    g = p.add_argument_group("serving")
    g.add_argument("--host", help="address to listen on (LOCO_BACKEND_HOST, 0.0.0.0)")
    g.add_argument(
        "--port",
        help=f"TCP port; 0 picks a free one (LOCO_BACKEND_PORT, {DEFAULT_PORT})",
    )
    g = p.add_argument_group("discovery")
    g.add_argument(
        "--discovery",
        choices=[s.value for s in InstanceSource],
        help="where instances come from (LOCO_DISCOVERY, kubernetes)",
    )
    g.add_argument(
        "--static-config",
        type=Path,
        help="static: YAML/JSON file listing name, health_url, vnc, log_file of each "
        "instance (LOCO_STATIC_CONFIG)",
    )
    g.add_argument(
        "--local-dir",
        type=Path,
        help="local: directory whose */instance.json files the supervisors write "
        f"(LOCO_LOCAL_DIR, {DEFAULT_LOCAL_DIR})",
    )
    g.add_argument(
        "--namespace",
        help="kubernetes: namespace to watch; else KUBERNETES_NAMESPACE, the service-account "
        "namespace file, the kubeconfig context's namespace, then 'default'",
    )
    g.add_argument(
        "--kubeconfig",
        type=Path,
        help="kubernetes: kubeconfig file (KUBECONFIG); without one, in-cluster "
        "configuration inside a pod, else ~/.kube/config",
    )
    g.add_argument("--context", help="kubernetes: kubeconfig context (default: current)")
    g.add_argument(
        "--resync",
        type=_positive,
        default=300.0,
        help="kubernetes: seconds between full relists (the watch ends and restarts) (300)",
    )
    g = p.add_argument_group("probing")
    g.add_argument(
        "--probe-interval", type=_positive, default=1.0, help="seconds between probes (1)"
    )
    g.add_argument(
        "--probe-timeout", type=_positive, default=2.0, help="seconds a probe may take (2)"
    )
    g.add_argument(
        "--probe-concurrency", type=_count, default=32, help="probes in flight at most (32)"
    )
    g.add_argument(
        "--no-probe",
        action="store_true",
        help="do not probe (show discovery only; for benchmarks and debugging)",
    )
    g.add_argument(
        "--breaker-threshold",
        type=_count,
        default=3,
        help="consecutive failures that open a target's circuit (3)",
    )
    g.add_argument(
        "--breaker-reset",
        type=_positive,
        default=5.0,
        help="seconds an open circuit waits before one trial call (5)",
    )
    g = p.add_argument_group("API")
    g.add_argument(
        "--action-interval",
        type=_positive,
        default=5.0,
        help="minimum seconds between two resets/restarts of one instance (5)",
    )
    g.add_argument(
        "--thumbnail-ttl",
        type=_positive,
        default=1.0,
        help="seconds a proxied thumbnail is reused (1)",
    )
    g.add_argument(
        "--sse-keepalive",
        type=_positive,
        default=15.0,
        help="seconds of silence before an event stream gets a keep-alive comment (15)",
    )
    g.add_argument("--no-access-log", action="store_true", help="do not log one line per request")
    g = p.add_argument_group("logging")
    g.add_argument("--log-level", help="debug, info, warning, error (LOG_LEVEL, info)")
    g.add_argument(
        "--log-file",
        type=Path,
        help="also write log lines here, errors also to <stem>.error<suffix>, both rotated "
        "at 10 MiB (LOCO_LOG_FILE)",
    )
    return p


def read_control_token(env: Mapping[str, str]) -> str | None:
    """LOCO_CONTROL_TOKEN_FILE (wins) or LOCO_CONTROL_TOKEN; an empty one is an error."""
    token_file = _env(env, "LOCO_CONTROL_TOKEN_FILE")
    if token_file:
        try:
            value = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(
                f"LOCO_CONTROL_TOKEN_FILE={token_file}: {exc.strerror or exc}"
            ) from None
        if not value:
            raise UsageError(f"LOCO_CONTROL_TOKEN_FILE={token_file} is empty")
        return value
    token = env.get("LOCO_CONTROL_TOKEN")
    if token is not None and not token.strip():
        raise UsageError("LOCO_CONTROL_TOKEN is set but empty; unset it or give a token")
    return token.strip() if token else None


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    port_text = args.port if args.port is not None else _env(env, "LOCO_BACKEND_PORT")
    where = "--port" if args.port is not None else "LOCO_BACKEND_PORT"
    port = _port(port_text, where) if port_text is not None else DEFAULT_PORT
    mode_text = args.discovery or _env(env, "LOCO_DISCOVERY") or "kubernetes"
    try:
        mode = InstanceSource(mode_text.strip().lower())
    except ValueError:
        raise UsageError(
            f"LOCO_DISCOVERY={mode_text!r} is not one of kubernetes, static, local"
        ) from None
    static = args.static_config or (Path(v) if (v := _env(env, "LOCO_STATIC_CONFIG")) else None)
    if mode is InstanceSource.STATIC and static is None:
        raise UsageError("--discovery static needs --static-config FILE (or LOCO_STATIC_CONFIG)")
    local_dir = args.local_dir or Path(_env(env, "LOCO_LOCAL_DIR") or DEFAULT_LOCAL_DIR)
    if mode is InstanceSource.LOCAL and local_dir.exists() and not local_dir.is_dir():
        raise UsageError(f"--local-dir {local_dir} is not a directory")
    sa_file = Path(
        _env(env, "LOCO_SERVICE_ACCOUNT_NAMESPACE_FILE") or SERVICE_ACCOUNT_NAMESPACE_FILE
    )
    return Settings(
        discovery=mode,
        host=args.host or _env(env, "LOCO_BACKEND_HOST") or "0.0.0.0",  # noqa: S104
        port=port,
        static_config=static,
        local_dir=local_dir,
        namespace=args.namespace,
        kubeconfig=args.kubeconfig,
        context=args.context,
        service_account_namespace_file=sa_file,
        resync_seconds=args.resync,
        probing=not args.no_probe,
        probe_interval=args.probe_interval,
        probe_timeout=args.probe_timeout,
        probe_concurrency=args.probe_concurrency,
        breaker_threshold=args.breaker_threshold,
        breaker_reset=args.breaker_reset,
        control_token=read_control_token(env),
        action_interval=args.action_interval,
        thumbnail_ttl=args.thumbnail_ttl,
        sse_keepalive=args.sse_keepalive,
        access_log=not args.no_access_log,
    )


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
        level = args.log_level or _env(env, "LOG_LEVEL")
        log_file = args.log_file or (Path(v) if (v := _env(env, "LOCO_LOG_FILE")) else None)
        try:
            jsonlog.configure(level, log_file)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"--log-file {log_file}: {exc.strerror or exc}") from None
        settings = settings_from_args(args, env)
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
    except UsageError as exc:
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
