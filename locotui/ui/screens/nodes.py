"""``N``: the frame rate by node and by accelerator — median, p10, the slowest — so one
stuck guest (an outlier on a healthy node) is told apart from a slow or throttled node
(its median is down). Follows the fleet as it changes; ``Enter`` filters the fleet to
the highlighted node.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from locotui.data.fleet import FleetModel
from locotui.data.fleetstats import GroupRate, rates_by_accel, rates_by_node

__all__ = ["NodesScreen"]

_VERDICT_STYLE = {"ok": "green", "no frame rates": "dim", "node slow": "bold red"}


def _fps(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _row(group: GroupRate, target: float) -> tuple[Text | str, ...]:
    verdict = group.verdict
    style = _VERDICT_STYLE.get(verdict, "bold yellow")
    median_style = "bold red" if group.median is not None and group.median < target else ""
    stuck = ", ".join(group.stuck[:3]) + (
        f" +{len(group.stuck) - 3}" if len(group.stuck) > 3 else ""
    )
    return (
        group.key,
        f"{group.measured}/{group.instances}",
        Text(_fps(group.median), style=median_style),
        _fps(group.p10),
        _fps(group.minimum),
        Text(verdict, style=style),
        stuck,
    )


class NodesScreen(Screen[None]):
    DEFAULT_CSS = """
    NodesScreen .nodes-title { height: 1; background: $panel; text-style: bold; }
    NodesScreen #nodes-table { height: auto; max-height: 60%; }
    NodesScreen #accel-table { height: auto; }
    NodesScreen #nodes-help { height: auto; color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("enter", "filter_node", "Filter to node"),  # the table's Enter: see below
    ]

    def __init__(self, model: FleetModel, target_fps: float) -> None:
        super().__init__()
        self.model = model
        self.target_fps = target_fps
        self._unsubscribe: Callable[[], None] | None = None
        self.nodes: list[GroupRate] = []
        self.accels: list[GroupRate] = []

    def compose(self) -> ComposeResult:
        yield Static(
            f" Frame rate by node (fps; target {self.target_fps:g}) — worst median first",
            classes="nodes-title",
        )
        yield DataTable(id="nodes-table", cursor_type="row", zebra_stripes=True)
        yield Static(" By accelerator", classes="nodes-title")
        yield DataTable(id="accel-table", cursor_type="none", zebra_stripes=True)
        yield Static(
            " node slow: its median is under target (look at the node);"
            " N stuck: far under their node's median (look at those instances)",
            id="nodes-help",
        )
        yield Footer()

    def on_mount(self) -> None:
        for table in self.query(DataTable):
            table.add_columns("node" if table.id == "nodes-table" else "accel", "measured",
                              "median", "p10", "min", "verdict", "stuck")  # fmt: skip
        self.refill()
        self._unsubscribe = self.model.subscribe(self.refill)
        self.query_one("#nodes-table", DataTable).focus()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def refill(self) -> None:
        entries = list(self.model.entries.values())
        self.nodes = rates_by_node(entries, self.target_fps)
        self.accels = rates_by_accel(entries, self.target_fps)
        for table_id, groups in (("#nodes-table", self.nodes), ("#accel-table", self.accels)):
            table: DataTable[Text | str] = self.query_one(table_id, DataTable)
            cursor = table.cursor_row
            table.clear()
            for group in groups:
                table.add_row(*_row(group, self.target_fps), key=group.key)
            if groups and table.cursor_type == "row":
                table.move_cursor(row=min(cursor, len(groups) - 1))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # The table takes Enter itself (select_cursor) before the screen's binding.
        if event.data_table.id == "nodes-table":
            self.action_filter_node()

    def action_filter_node(self) -> None:
        table: DataTable[Text | str] = self.query_one("#nodes-table", DataTable)
        if not self.nodes:
            return
        node = self.nodes[min(table.cursor_row, len(self.nodes) - 1)].key
        if node == "-":
            self.notify("these instances are not on a node", severity="warning")
            return
        # Anchored: node-a must not also show node-ab.
        self.model.set_filter(f"node:/^{re.escape(node)}$/")
        self.app.pop_screen()
