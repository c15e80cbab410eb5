"""``L``: what this console did in this session (every action, including refusals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from locotui.data.actions import AuditEntry, AuditLog

__all__ = ["AuditScreen"]

_RESULT_STYLE = {
    "ok": "bold green",
    "failed": "bold red",
    "partial": "bold yellow",
    "refused": "bold magenta",
}


class AuditScreen(Screen[None]):
    DEFAULT_CSS = """
    AuditScreen #audit-title { height: 1; background: $panel; text-style: bold; }
    AuditScreen DataTable { height: 1fr; }
    AuditScreen #audit-detail { height: auto; max-height: 8; background: $panel; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back"),
    ]

    def __init__(self, audit: AuditLog) -> None:
        super().__init__()
        self.audit = audit
        self._unsubscribe: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        yield Static(" Audit log — actions of this session, newest first", id="audit-title")
        table: DataTable[Text | str] = DataTable(cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="audit-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("time", "action", "targets", "result", "error")
        self._fill()
        self._unsubscribe = self.audit.subscribe(lambda _e: self.call_later(self._fill))
        table.focus()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _entries(self) -> list[AuditEntry]:
        return list(reversed(self.audit.entries))

    def _fill(self) -> None:
        table: DataTable[Text | str] = self.query_one(DataTable)
        table.clear()
        entries = self._entries()
        for i, e in enumerate(entries):
            targets = ", ".join(e.targets[:4]) + (
                f" +{len(e.targets) - 4}" if len(e.targets) > 4 else ""
            )
            table.add_row(
                e.at.astimezone().strftime("%H:%M:%S"),
                e.action.value.replace("_", " "),
                targets,
                Text(e.result, style=_RESULT_STYLE.get(e.result, "")),
                Text(e.error or "", style="red"),
                key=str(i),
            )
        if not entries:
            self.query_one("#audit-detail", Static).update(
                Text("no actions yet in this session", style="dim italic")
            )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        entries = self._entries()
        try:
            entry = entries[int(event.row_key.value or 0)]
        except (ValueError, IndexError):
            return
        detail = Text()
        for line in entry.details or (
            f"{', '.join(entry.targets)}: {entry.error or entry.result}",
        ):
            detail.append(line + "\n")
        self.query_one("#audit-detail", Static).update(detail)
