"""``locotui config [--json]``: the effective settings and where each one came from.

Useful to see why the console connects where it does (flag, LOCOTUI_* environment,
config file, or default). The control token is never printed, only whether it is set.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, TextIO

from locotui.options import default_config_path

if TYPE_CHECKING:
    from locotui.config import Settings

HELP = "show the effective settings and their sources"
DESCRIPTION = __doc__ or ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(settings: Settings, options: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    info = settings.describe()
    if getattr(options, "json", False):
        print(json.dumps(info, indent=2, default=str), file=out)
        return 0
    path = info.pop("config_path") or f"{default_config_path()} (not present)"
    print(f"config file: {path}", file=out)
    keys = info.pop("keys")
    views = info.pop("views")
    commands = info.pop("commands")
    width = max(len(k) for k in info)
    for name, item in info.items():
        value = item["value"]
        shown = "-" if value is None else str(value).lower() if isinstance(value, bool) else value
        print(f"{name.ljust(width)}  {shown}  ({item['source']})", file=out)
    print(f"keys ({keys['source']}):", file=out)
    for action, bound in keys["value"].items():
        print(f"  {action.ljust(width)}{', '.join(bound) or '(unbound)'}", file=out)
    print(f"views ({views['source']}):" + ("" if views["value"] else " (none)"), file=out)
    for name, query in views["value"].items():
        print(f"  @{name.ljust(width - 1)}{query}", file=out)
    print(f"commands ({commands['source']}):" + ("" if commands["value"] else " (none)"), file=out)
    for name, argv in commands["value"].items():
        print(f"  {name.ljust(width)}{' '.join(argv)}", file=out)
    for warning in settings.warnings:
        print(f"warning: {warning}", file=out)
    return 0
