"""``locotui keys [--markdown]``: the console's keys as they are in effect.

The defaults with the config file's ``[keys]`` remapping applied, one action a line
(``--markdown``: the table the docs carry, from the same code as the docs).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from locotui.keydocs import markdown_table
from locotui.keymap import ACTIONS, MUTATING

if TYPE_CHECKING:
    from locotui.config import Settings

HELP = "list the console's keys (with the config file's remapping)"
DESCRIPTION = __doc__ or ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")


def run(settings: Settings, options: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if getattr(options, "markdown", False):
        out.write(markdown_table(settings.keys))
        return 0
    width = max(len(name) for name in ACTIONS)
    keys = {name: ", ".join(settings.keys.keys_for(name)) or "(unbound)" for name in ACTIONS}
    key_width = max(len(k) for k in keys.values())
    for action in ACTIONS.values():
        note = " [off in read-only]" if action.name in MUTATING and settings.read_only else ""
        print(
            f"{action.name.ljust(width)}  {keys[action.name].ljust(key_width)}  "
            f"{action.description}{note}",
            file=out,
        )
    return 0
