"""``L``: the logs of the focused instance, or of every selected one merged.

Where each instance's lines come from is the console's one routing decision
(:class:`~locotui.data.routes.Routes`): the Kubernetes API for pods (follow, tail N,
previous container, with timestamps), the backend for static/local instances (the
supervisor's log file). They go through the data layer's
:class:`~locotui.data.logs.LogTail` into one bounded :class:`~locotui.data.logs.LogBuffer`.
JSON lines are shown as ``time LEVEL logger: message key=value`` with level colours; with
several instances every line carries its instance's name in a colour of its own.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.validation import Integer
from textual.widgets import Footer, Input, Static

from locotui.data.clipboard import MAX_BYTES
from locotui.data.errors import DataError
from locotui.data.logs import LogBuffer, LogFilter, LogTail, SaveRefused, format_line, save_lines
from locotui.data.routes import Routes
from locotui.keymap import ACTIONS
from locotui.ui.fmt import span
from locotui.ui.logview import LogView
from locotui.ui.screens.prompt import AskScreen, PromptScreen

__all__ = ["LogScreen"]


def _keys(name: str) -> str:
    return ",".join(ACTIONS[name].default_keys)


class LogFilterBar(Input):
    DEFAULT_CSS = """
    LogFilterBar { dock: bottom; display: none; height: 3; border: tall $accent; }
    LogFilterBar.-shown { display: block; }
    LogFilterBar.-error { border: tall $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Clear", show=False)]

    def action_cancel(self) -> None:
        self.value = ""
        self.remove_class("-shown")
        self.screen.query_one(LogView).focus()


class LogScreen(Screen[None]):
    DEFAULT_CSS = """
    LogScreen #log-status { height: 1; background: $panel; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back"),
        Binding(_keys("follow_logs"), "follow", "Follow", id="follow_logs"),
        Binding("w", "toggle('wrap')", "Wrap"),
        Binding("t", "toggle('show_time')", "Time"),
        Binding("J", "toggle('pretty')", "JSON"),
        Binding("p", "previous", "Previous"),
        Binding("n", "tail", "Tail N"),
        Binding(_keys("filter"), "log_filter", "Filter", id="filter"),
        Binding(_keys("save_logs"), "save", "Save", id="save_logs"),
        Binding("c", "copy", "Copy"),
        Binding("g", "top", "Top", show=False),
        Binding("G", "bottom", "Bottom", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("j", "scroll_down", "Down", show=False),
    ]

    def __init__(
        self, names: list[str], routes: Routes, *, tail_lines: int, buffer_lines: int
    ) -> None:
        super().__init__()
        self.names = names
        self.routes = routes
        self.previous = False
        self.tail_lines = tail_lines
        self.buffer = LogBuffer(max_lines=buffer_lines)
        self.tail = LogTail(self.buffer)
        self.notes: list[str] = []

    def action_targets(self) -> list[str]:
        return list(self.names)

    def compose(self) -> ComposeResult:
        yield Static("", id="log-status")
        yield LogView(self.buffer, self.names, id="log-view")
        yield LogFilterBar(placeholder="filter log: text (smart case) or /regex/", id="log-filter")
        yield Footer()

    @property
    def view(self) -> LogView:
        return self.query_one("#log-view", LogView)

    async def on_mount(self) -> None:
        self.view.focus()
        self._start()
        self._status()

    async def on_unmount(self) -> None:
        if self.tail is not None:
            await self.tail.stop()

    # ------------------------------------------------------------------ sources
    def _start(self) -> None:
        self.notes.clear()
        for name in self.names:
            route = self.routes.logs(name, tail=self.tail_lines, previous=self.previous)
            if route.source is not None:
                self.tail.add(name, route.source)
            if route.note:
                self.notes.append(f"{name}: {route.note}")
        if self.notes:
            self.notify("; ".join(self.notes), severity="warning", timeout=6)

    async def _restart(self) -> None:
        await self.tail.stop()
        self.tail.sources.clear()
        self.tail.errors.clear()
        self.buffer.clear()
        self.view.rebuild()
        self._start()
        self._status()

    # ------------------------------------------------------------------ status line
    def _status(self) -> None:
        view = self.view
        text = span(" logs ", "bold reverse")
        text.append(" ")
        for name in self.names:
            text.append(f"{name} ", style=f"bold {view.colours.get(name, '')}")
        text.append("│ ", style="dim")
        # The filter searched every line held; lines dropped at the cap are said in
        # yellow, so an empty search is not taken for "it never happened".
        text.append(view.model.summary(), style="bold yellow" if view.model.dropped else "bold")
        flags = [
            ("follow", view.follow),
            ("wrap", view.wrap),
            ("time", view.show_time),
            ("json", view.pretty),
            ("previous", self.previous),
        ]
        text.append(" │ ", style="dim")
        for label, on in flags:
            text.append(f"{label}{'+' if on else '-'} ", style="green" if on else "dim")
        text.append(f"tail {self.tail_lines}", style="dim")
        if view.filter.pattern:
            text.append(" │ filter ", style="dim")
            text.append(view.filter.pattern, style="bold black on yellow")
        if self.tail.errors:
            text.append(" │ ", style="dim")
            text.append(
                "; ".join(f"{k}: {v}" for k, v in self.tail.errors.items()), style="bold red"
            )
        self.query_one("#log-status", Static).update(text)

    def on_log_view_changed(self, _message: LogView.Changed) -> None:
        self._status()

    # ------------------------------------------------------------------ keys
    async def action_back(self) -> None:
        self.app.pop_screen()

    def action_follow(self) -> None:
        view = self.view
        view.follow = not view.follow
        if view.follow:
            view.scroll_end(animate=False)
        self._status()

    def action_toggle(self, option: str) -> None:
        view = self.view
        view.set_option(**{option: not getattr(view, option)})
        self._status()

    async def action_previous(self) -> None:
        if self.routes.kube is None:
            self.notify("previous container logs need Kubernetes access", severity="warning")
            return
        self.previous = not self.previous
        await self._restart()

    def action_tail(self) -> None:
        async def done(value: str | None) -> None:
            if value is None:
                return
            self.tail_lines = int(value)
            await self._restart()

        self.app.push_screen(
            PromptScreen(
                "lines to fetch from the end of each log",
                str(self.tail_lines or 0),
                validators=[Integer(minimum=0, maximum=100_000)],
            ),
            done,
        )

    def action_log_filter(self) -> None:
        bar = self.query_one("#log-filter", LogFilterBar)
        bar.add_class("-shown")
        bar.value = (
            self.view.filter.pattern
            if not self.view.filter.regex
            else f"/{self.view.filter.pattern}/"
        )
        bar.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "log-filter":
            return
        value = event.value
        regex = len(value) >= 2 and value.startswith("/") and value.endswith("/")
        try:
            flt = LogFilter(value[1:-1] if regex else value, regex=regex)
        except ValueError as exc:
            event.input.add_class("-error")
            event.input.border_title = str(exc)
            return
        event.input.remove_class("-error")
        event.input.border_title = None
        self.view.set_filter(flt)
        self._status()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "log-filter":
            event.input.remove_class("-shown")
            self.view.focus()

    def action_top(self) -> None:
        self.view.follow = False
        self.view.scroll_home(animate=False)
        self._status()

    def action_bottom(self) -> None:
        self.view.scroll_end(animate=False)

    def action_scroll_up(self) -> None:
        self.view.follow = False
        self.view.scroll_up(animate=False)
        self._status()

    def action_scroll_down(self) -> None:
        self.view.scroll_down(animate=False)

    def action_copy(self) -> None:
        """Copies the shown lines (the filter's matches) as displayed; when they are more
        than a terminal's clipboard takes, the newest that fit."""
        view = self.view
        picked: list[str] = []
        size = 0
        for line in reversed(view.shown):
            text = format_line(
                line,
                show_instance=view.show_instance,
                show_time=view.show_time,
                pretty=view.pretty,
            )
            size += len(text.encode("utf-8")) + 1
            if size > MAX_BYTES:
                break
            picked.append(text)
        if not picked:
            self.notify("no lines to copy", severity="warning")
            return
        picked.reverse()
        what = f"{len(picked)} lines"
        if len(picked) < len(view.shown):
            what = f"the newest {len(picked)} of {len(view.shown)} lines (clipboard limit)"
        self.app.copy_text("\n".join(picked) + "\n", what)  # type: ignore[attr-defined]

    def action_save(self) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        who = self.names[0] if len(self.names) == 1 else f"{len(self.names)}-instances"
        default = str(Path.cwd() / f"locotui-{who}-{stamp}.log")

        async def chosen(path: str | None) -> None:
            if path:
                await self._save(path, overwrite=False)

        self.app.push_screen(
            PromptScreen(f"save {len(self.view.shown)} shown lines to", default), chosen
        )

    async def _save(self, path: str, overwrite: bool) -> None:
        try:
            written = await save_lines(self.view.lines_for_save(), path, overwrite=overwrite)
        except SaveRefused:

            async def answer(yes: bool | None) -> None:
                if yes:
                    await self._save(path, overwrite=True)

            self.app.push_screen(AskScreen(f"{path} exists. Overwrite it?"), answer)
            return
        except DataError as exc:
            self.notify(str(exc), title="Save failed", severity="error")
            return
        self.notify(f"saved {len(self.view.shown)} lines to {written}", title="Saved")

    def tick(self, at: datetime) -> None:
        self._status()
