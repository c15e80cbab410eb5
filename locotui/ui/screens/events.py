"""``E``: the fleet's events, newest first — the namespace's Kubernetes events merged with
the backend's record of each instance (status changes, the automatic recovery's
decisions, people's actions) — filterable with the fleet filter's language over the
events' own fields (``!source:kube reason:oom``). Read again every 15 s (60 s for fleets
of more than 50) and on ``F5``.
``Enter`` jumps to the instance of the highlighted event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from locotui.data.events import EVENT_FIELDS, EventsResult, FleetEvent, matches
from locotui.data.query import FilterError, Query, parse_query

__all__ = ["EventsScreen"]

REFRESH_EVERY = 15.0
REFRESH_EVERY_LARGE = 60.0
"""For fleets over :data:`LARGE` instances: each read is one timeline request per
instance, and a big fleet is not worth 10 requests a second to the backend."""
LARGE = 50

_ORIGIN_STYLE = {"kube": "blue", "status": "", "auto": "magenta", "action": "cyan"}

Loader = Callable[[], Awaitable[EventsResult]]


def _when(at: datetime, now: datetime) -> str:
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    if (now - at).total_seconds() < 20 * 3600:
        return at.strftime("%H:%M:%SZ")
    return at.strftime("%m-%d %H:%MZ")


class EventsScreen(Screen[None]):
    DEFAULT_CSS = """
    EventsScreen #events-status { height: 1; background: $panel; }
    EventsScreen DataTable { height: 1fr; }
    EventsScreen #events-filter { dock: bottom; display: none; height: 3; }
    EventsScreen #events-filter.-shown { display: block; }
    EventsScreen #events-filter.-error { border: tall $error; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back"),
        Binding("slash", "filter", "Filter"),
        Binding("f5", "reload", "Reload"),
    ]

    def __init__(
        self, load: Loader, now: Callable[[], datetime], query: str = "", instances: int = 0
    ) -> None:
        super().__init__()
        self.refresh_every = REFRESH_EVERY if instances <= LARGE else REFRESH_EVERY_LARGE
        self.load = load
        self.now = now
        self.initial_query = query
        self.query_ = parse_query(query, fields=EVENT_FIELDS) if query else Query()
        self.result: EventsResult | None = None
        self.shown: list[FleetEvent] = []

    def compose(self) -> ComposeResult:
        yield Static(" events — loading…", id="events-status")
        yield DataTable(id="events-table", cursor_type="row", zebra_stripes=True)
        yield Input(
            self.initial_query,
            placeholder="filter events: text !text name: source: reason: type: /regex/",
            id="events-filter",
        )
        yield Footer()

    def on_mount(self) -> None:
        table: DataTable[Text | str] = self.query_one(DataTable)
        table.add_columns("time", "source", "instance", "reason", "what", "by")
        table.focus()
        self.action_reload()
        self.set_interval(self.refresh_every, self.action_reload, name="events-refresh")

    @work(exclusive=True, group="events")
    async def action_reload(self) -> None:
        self.result = await self.load()
        self._fill()

    def _fill(self) -> None:
        result = self.result
        table: DataTable[Text | str] = self.query_one(DataTable)
        table.clear()
        if result is None:
            return
        self.shown = matches(self.query_, result.events)
        now = self.now()
        for i, e in enumerate(self.shown):
            style = "bold red" if e.warning and e.origin in ("kube", "auto") else ""
            style = style or ("yellow" if e.warning else "")
            text = e.text if e.count == 1 else f"{e.text} (x{e.count})"
            table.add_row(
                Text(_when(e.at, now), style="dim"),
                Text(e.origin, style=_ORIGIN_STYLE[e.origin]),
                e.name,
                Text(e.reason, style=style or "bold"),
                Text(text, style=style),
                Text(e.by or "", style="dim"),
                key=str(i),
            )
        status = Text(" events ", style="bold reverse")
        total = len(result.events)
        figure = f" {len(self.shown)} of {total}" if self.query_ else f" {total}"
        status.append(figure + " newest first", style="bold")
        if self.query_:
            status.append(" │ filter ", style="dim")
            status.append(self.query_.text, style="bold black on yellow")
        for note in result.notes:
            status.append(f" │ {note}", style="yellow")
        self.query_one("#events-status", Static).update(status)

    def action_back(self) -> None:
        bar = self.query_one("#events-filter", Input)
        if bar.has_class("-shown"):  # Escape in the filter closes it, keeping the filter
            bar.remove_class("-shown")
            self.query_one(DataTable).focus()
            return
        self.app.pop_screen()

    def action_filter(self) -> None:
        bar = self.query_one("#events-filter", Input)
        bar.add_class("-shown")
        bar.focus()

    @on(Input.Changed, "#events-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        try:
            self.query_ = parse_query(event.value, fields=EVENT_FIELDS)
        except FilterError as exc:
            event.input.add_class("-error")
            event.input.border_title = str(exc)
            return
        event.input.remove_class("-error")
        event.input.border_title = None
        self._fill()

    @on(Input.Submitted, "#events-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.input.remove_class("-shown")
        self.query_one(DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        try:
            name = self.shown[int(event.row_key.value or 0)].name
        except (ValueError, IndexError):
            return
        if self.app.model.get(name) is None:  # type: ignore[attr-defined]
            self.notify(f"{name} is not an instance of the fleet", severity="warning")
            return
        self.app.jump_to(name)  # type: ignore[attr-defined]
