"""``locotui``: open the console, or run one of the scriptable subcommands.

    locotui [--backend URL] [--context CTX] [-n NAMESPACE] [--prometheus URL]
            [--read-only] [--no-thumbnails] [--config FILE]
    locotui status|restart|logs|config ...

What stops the console from opening, with one line on stderr and exit status 2:

* a bad config file, a malformed option or environment value (``ConfigError``);
* a backend URL whose host does not resolve (a typo, not an outage);
* a kubeconfig or context that was asked for explicitly (``--context``, ``--kubeconfig``,
  ``KUBECONFIG``, the config file) but cannot be loaded;
* nothing to show at all: the backend does not answer *and* the cluster that was asked
  for does not answer either (both reasons are on the line).

What does not: a backend that is merely down (refused, timing out) opens the console
with the banner and keeps reconnecting, showing pods from Kubernetes while it can; a
cluster that does not answer while the backend does opens the console with the
Kubernetes connection marked in the header (logs and restarts through it will fail with
the reason). Without any kubeconfig the console runs on the backend alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from locotui import options

if TYPE_CHECKING:
    from locotui import config

__all__ = ["EXIT_USAGE", "build_parser", "main", "subcommands"]

EXIT_USAGE = 2

DESCRIPTION = """\
The operator console for the Lego Loco emulator fleet: every emulator as a live tile
(status with a symbol and colour, fps sparkline, pod facts, breaker, last error,
thumbnail) or as a row of a dense table; logs, soft resets, pod restarts and rolling
restarts from the keyboard. Press ? inside for every key.

Settings come from flags, then LOCOTUI_* environment variables, then the config file
($XDG_CONFIG_HOME/locotui/config.toml or --config FILE). The control token for resets
and restarts is read from LOCOTUI_CONTROL_TOKEN or a token file, never from a flag.
"""

EPILOG = """\
subcommands print and exit (for scripts): `locotui status` (exit 0 when all healthy),
`locotui restart NAME`, `locotui logs NAME -f`, `locotui config`. See docs/locotui.md.
"""


def subcommands() -> dict[str, ModuleType]:
    """Subcommand name → module with ``HELP``, ``DESCRIPTION``, ``add_arguments(parser)``
    and ``run(settings, options) -> int``.

    The scriptable commands come from :mod:`locotui.commands`; add further ones here
    (``demo`` goes here: ``table["demo"] = <module>``).
    """
    from locotui import commands
    from locotui.demo import command as demo

    table: dict[str, ModuleType] = dict(commands.COMMANDS)
    table["demo"] = demo
    return table


def _global_options() -> argparse.ArgumentParser:
    """The console's settings, shared by the main parser and every subcommand.

    ``options.add_arguments`` defines them (``--backend-url``, ``--read-only``,
    ``--no-thumbnails``, ``--context``, ``--config``...); the short forms of the command
    line (``--backend``, ``-n``, ``--prometheus``) replace three of those entries, so each
    option is listed once in ``--help`` with both spellings.
    """
    parent = argparse.ArgumentParser(add_help=False, conflict_handler="resolve")
    options.add_arguments(parent)
    sup = argparse.SUPPRESS
    parent.add_argument(
        "--backend",
        "--backend-url",
        dest="backend_url",
        default=sup,
        metavar="URL",
        help=f"loco-backend base URL (LOCOTUI_BACKEND_URL, {options.DEFAULT_BACKEND_URL})",
    )
    parent.add_argument(
        "-n",
        "--namespace",
        dest="namespace",
        default=sup,
        metavar="NAMESPACE",
        help="Kubernetes namespace for pods, logs and restarts (LOCOTUI_NAMESPACE; default: "
        "the context's namespace, then 'default')",
    )
    parent.add_argument(
        "--prometheus",
        "--prometheus-url",
        dest="prometheus_url",
        default=sup,
        metavar="URL",
        help="Prometheus base URL for fps/status history (LOCOTUI_PROMETHEUS_URL; default: "
        "none, history of this session only)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = argparse.ArgumentParser(
        prog="locotui",
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in subcommands().items():
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(run=module.run, command=name)
    return parser


def _error(message: str) -> int:
    print(f"locotui: error: {message}", file=sys.stderr, flush=True)
    return EXIT_USAGE


class _Usage(Exception):
    """Stops the console from opening; ``str()`` is the one line."""


def _check_backend_host(url: str) -> None:
    """A host that does not resolve is a wrong URL, not an outage worth waiting for."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise _Usage(
            f"backend URL {url}: host {host!r} does not resolve ({exc.strerror}); "
            "check --backend / LOCOTUI_BACKEND_URL"
        ) from None


def _kube_requested(settings: config.Settings, env: Mapping[str, str]) -> bool:
    explicit = any(k in settings.sources for k in ("kubeconfig", "kube_context", "namespace"))
    return explicit or bool(env.get("KUBECONFIG", "").strip())


def _current_context(settings: config.Settings, env: Mapping[str, str]) -> str | None:
    """The context name the header shows when none was given (best effort)."""
    if settings.kube_context:
        return settings.kube_context
    try:
        from kubernetes import config as kconfig

        path = settings.kubeconfig or (
            Path(env["KUBECONFIG"].split(os.pathsep)[0]) if env.get("KUBECONFIG") else None
        )
        _, current = kconfig.list_kube_config_contexts(str(path) if path else None)
        return str(current.get("name")) if current else None
    except Exception:
        return None


def _connect_kube(settings: config.Settings, env: Mapping[str, str]) -> tuple[Any, str | None]:
    """(KubeClient or None, note for the operator)."""
    from locotui.data.kube_client import KubeClient, KubeConfigError

    requested = _kube_requested(settings, env)
    try:
        return KubeClient.connect(
            settings.kubeconfig, settings.kube_context, settings.namespace, env
        ), None
    except KubeConfigError as exc:
        if requested:
            raise _Usage(str(exc)) from None
        return None, f"Kubernetes not used: {exc}"


async def _preflight(settings: config.Settings, kube: Any) -> tuple[str | None, str | None]:
    """(backend error, kube error) from one quick look at each, at most ~3 s."""
    from locotui.data.backend_client import BackendClient
    from locotui.data.errors import DataError

    async def backend() -> str | None:
        async with BackendClient(settings.backend_url, timeout=2.5) as client:
            try:
                await client.health()
            except DataError as exc:
                return str(exc)
        return None

    async def cluster() -> str | None:
        if kube is None:
            return None
        try:
            async with asyncio.timeout(3.0):
                await kube.list_pods()
        except TimeoutError:
            return f"Kubernetes API {kube.server} did not answer within 3 s"
        except DataError as exc:
            return str(exc)
        return None

    b, k = await asyncio.gather(backend(), cluster())
    return b, k


def _fail_fast_sniffio() -> None:
    """httpcore runs ``import sniffio`` on every request; when sniffio is not installed
    each attempt searches the whole import path again (about a millisecond: 1-2 % of a
    core with thumbnails at 1 Hz). A ``None`` entry in ``sys.modules`` is Python's way to
    make an import fail at once; httpcore then assumes asyncio, which is what runs here.
    """
    try:
        import sniffio  # noqa: F401
    except ImportError:
        sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]


def run_console(
    settings: config.Settings,
    env: Mapping[str, str],
    *,
    kubernetes: bool = True,
    notices: AsyncIterator[str] | None = None,
) -> int:
    """Opens the console (after the checks in the module docstring); returns the exit code.

    ``kubernetes=False`` leaves the cluster out entirely, whatever kubeconfig is around
    (``locotui demo``: its fleet runs on this machine). ``notices`` are lines the console
    shows as alerts as they come (the demo's processes ending).
    """
    try:
        _check_backend_host(settings.backend_url)
        kube, kube_note = _connect_kube(settings, env) if kubernetes else (None, None)
        backend_error, kube_error = asyncio.run(_preflight(settings, kube))
        if backend_error and kube_error and _kube_requested(settings, env):
            raise _Usage(f"{backend_error}; and Kubernetes: {kube_error}")
        if kube_error:
            kube_note = kube_error
    except _Usage as exc:
        return _error(str(exc))

    _fail_fast_sniffio()
    from locotui.data.backend_client import BackendClient
    from locotui.ui.app import LocoApp

    state_home = env.get("XDG_STATE_HOME", "").strip()
    state = (
        Path(state_home)
        if state_home and os.path.isabs(state_home)
        else (Path.home() / ".local" / "state")
    )
    app = LocoApp(
        settings,
        backend=BackendClient(settings.backend_url, token=settings.control_token),
        kube=kube,
        kube_note=kube_note,
        context=_current_context(settings, env) if kube is not None else None,
        audit_path=state / "locotui" / "audit.jsonl",
        notices=notices,
    )
    app.run()
    if kube is not None:
        kube.close()
    return app.return_code or 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = build_parser()
    args = parser.parse_args(argv)
    from locotui import config  # after parsing: --help does not load the settings model

    try:
        settings = config.load_settings(args, env=env)
    except config.ConfigError as exc:
        return _error(str(exc))
    command = getattr(args, "command", None)
    if command:
        result: int = args.run(settings, args)
        return result
    return run_console(settings, env)


if __name__ == "__main__":
    sys.exit(main())
