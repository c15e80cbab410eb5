"""``locotui``: open the console, or run one of the scriptable subcommands.

    locotui [--backend URL] [--context CTX] [-n NAMESPACE] [--prometheus URL]
            [--read-only] [--no-thumbnails] [--config FILE]
    locotui status|restart|logs|remediation|config ...

Opening the console, and what stops it, is :mod:`locotui.console`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType

from locotui import options

__all__ = ["build_parser", "main", "subcommands"]

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
subcommands print and exit (for scripts): `locotui status` (exit 0 when all healthy,
5 when an instance needs a person), `locotui restart NAME`, `locotui logs NAME -f`,
`locotui remediation pause --minutes 60 --reason ...` / `resume`, `locotui config`.
See docs/locotui.md.
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


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = build_parser()
    args = parser.parse_args(argv)
    # After parsing: --help loads neither the settings model nor the console.
    from locotui import config
    from locotui.console import usage_error

    try:
        settings = config.load_settings(args, env=env)
    except config.ConfigError as exc:
        return usage_error(str(exc))
    command = getattr(args, "command", None)
    if command:
        result: int = args.run(settings, args)
        return result
    from locotui.console import run_console

    return run_console(settings, env)


if __name__ == "__main__":
    sys.exit(main())
