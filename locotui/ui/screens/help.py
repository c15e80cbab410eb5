"""``?``: every key, as currently mapped (the ``[keys]`` table of the config applies)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from locotui.keymap import ACTIONS, MUTATING, Keymap

__all__ = ["FIXED_KEYS", "HelpScreen", "help_rows"]

# Keys that are not remappable actions: movement and the per-screen toggles.
FIXED_KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Moving around",
        (
            ("↑ ↓ ← →", "move between tiles / rows"),
            ("k j", "up / down"),
            ("PgUp PgDn", "a page up / down"),
            ("Home End", "first / last instance"),
            ("mouse", "click a tile to focus it, double-click for its detail"),
            ("Esc", "close the current screen (or clear the filter)"),
        ),
    ),
    (
        "Log view",
        (
            ("f", "follow on / off (keymap: follow_logs)"),
            ("w", "wrap long lines on / off"),
            ("t", "timestamps on / off"),
            ("J", "JSON lines pretty / raw"),
            ("p", "previous container's log (Kubernetes)"),
            ("n", "tail: how many lines to fetch"),
            ("/", "filter (text or /regex/), matches highlighted"),
            ("ctrl+s", "save the shown lines to a file (keymap: save_logs)"),
            ("g G", "top / bottom"),
        ),
    ),
    (
        "Confirmation",
        (
            ("y / Enter", "do it"),
            ("n / Esc", "cancel (or close once finished)"),
        ),
    ),
    (
        "Pausing the automatic recovery (keymap: pause_remediation; again to resume)",
        (
            ("↑ ↓", "15, 60, 240 minutes or until resumed (or type the minutes)"),
            ("Tab", "to the reason (others see it; audited)"),
            ("Enter / Esc", "pause / cancel"),
        ),
    ),
)


def _keys(keys: tuple[str, ...]) -> str:
    pretty = {
        "question_mark": "?",
        "slash": "/",
        "space": "Space",
        "escape": "Esc",
        "enter": "Enter",
    }
    return "  ".join(pretty.get(k, k) for k in keys) or "(unbound)"


def help_rows(
    keys: Keymap, read_only: bool, state_of: Callable[[str], bool | None]
) -> list[tuple[str, str, str]]:
    """(keys, action name, description) of every remappable action; ``state_of`` is the
    app's binding state (None: shown disabled)."""
    rows = []
    for name, action in ACTIONS.items():
        desc = action.description
        if state_of(name) is None and read_only and name in MUTATING:
            desc += "  [disabled: read-only]"
        rows.append((_keys(keys.keys_for(name)), name, desc))
    return rows


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 110; height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close"),
    ]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, show_header=True, header_style="bold")
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("action", style="dim", no_wrap=True)
        table.add_column("what it does")
        for keys, name, desc in self.rows:
            table.add_row(keys, name, desc)
        with VerticalScroll() as scroll:
            scroll.border_title = r"keys (remap them in the \[keys] table of the config file)"
            yield Static(table, id="help-actions")
            for title, rows in FIXED_KEYS:
                fixed = Table(
                    box=None,
                    expand=True,
                    show_header=False,
                    title=title,
                    title_justify="left",
                    title_style="bold underline",
                )
                fixed.add_column("key", style="bold cyan", no_wrap=True, min_width=12)
                fixed.add_column("what it does")
                for key, desc in rows:
                    fixed.add_row(key, desc)
                yield Static(fixed)
            legend = Text.assemble(
                ("Status: ", "bold"),
                ("● healthy  ", "green"),
                ("◐ degraded  ", "yellow"),
                ("✖ unhealthy  ", "red"),
                ("… starting  ", "cyan"),
                ("? unknown  ", "magenta"),
                ("~stale ", "yellow"),
                ("= last-known data  ", ""),
                ("⚠ ", "red"),
                ("= malformed data", ""),
            )
            yield Static(legend, id="help-legend")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
