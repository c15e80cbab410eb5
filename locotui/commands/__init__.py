"""Scriptable subcommands (``locotui status|restart|logs|remediation|config``), built on the
data layer.

Each module has ``add_arguments(parser)`` and ``run(settings, options) -> int`` (the exit
code). The entry point wires them with :func:`register`::

    sub = parser.add_subparsers(dest="command")
    commands.register(sub)                       # adds the five subcommands
    args = parser.parse_args()
    if args.command:
        settings = config.load_settings(args)
        return args.run(settings, args)          # set by register()

Exit codes (all commands): 0 ok, 1 failed / not healthy, 2 backend or cluster
unreachable, 3 forbidden or read-only, 4 not found, 130 interrupted; ``status`` also
5: some instance needs a person (after 2, before 1).
"""

from __future__ import annotations

import argparse
from typing import Any

from locotui.commands import config_cmd, logs, remediation, restart, status

__all__ = ["COMMANDS", "config_cmd", "logs", "register", "remediation", "restart", "status"]

COMMANDS: dict[str, Any] = {
    "status": status,
    "restart": restart,
    "logs": logs,
    "remediation": remediation,
    "config": config_cmd,
}


def register(subparsers: Any, parents: list[argparse.ArgumentParser] | None = None) -> None:
    """Adds every subcommand to ``subparsers``; each parsed namespace gets ``run``."""
    for name, module in COMMANDS.items():
        p = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            parents=parents or [],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(run=module.run, command=name)
