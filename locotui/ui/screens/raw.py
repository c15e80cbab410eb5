"""``y``: the focused instance as YAML (the backend's record with the emulator's status,
and the pod's manifest when it is a pod), to read whole or paste into a ticket.

``c`` copies the YAML to the clipboard of the operator's own terminal (OSC 52), ``F5``
fetches it again. Nothing here changes anything, so it works in read-only mode.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from locotui.data.rawview import to_yaml

__all__ = ["RawScreen"]

Loader = Callable[[], Awaitable[dict[str, Any]]]


class RawScreen(Screen[None]):
    DEFAULT_CSS = """
    RawScreen #raw-title { height: 1; background: $panel; text-style: bold; }
    RawScreen #raw-scroll { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("c", "copy", "Copy YAML"),
        Binding("f5", "reload", "Reload"),
        Binding("g", "top", "Top", show=False),
        Binding("G", "bottom", "Bottom", show=False),
        Binding("j", "down", "Down", show=False),
        Binding("k", "up", "Up", show=False),
    ]

    def __init__(self, name: str, load: Loader) -> None:
        super().__init__()
        self.instance_name = name
        self.load = load
        self.text: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(f" {self.instance_name} — raw (YAML)", id="raw-title")
        with VerticalScroll(id="raw-scroll"):
            yield Static(Text("loading…", style="dim italic"), id="raw-body")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#raw-scroll").focus()
        self.action_reload()

    @work(exclusive=True, group="raw")
    async def action_reload(self) -> None:
        doc = await self.load()
        self.text = to_yaml(doc)
        # The ANSI theme keeps to the terminal's own 16 colours: readable in 256-colour
        # terminals and tmux without truecolor.
        body = Syntax(
            self.text, "yaml", theme="ansi_dark", word_wrap=False, background_color="default"
        )
        self.query_one("#raw-body", Static).update(body)
        pod = isinstance(doc.get("pod"), dict) and "note" not in doc["pod"]
        what = "instance and pod" if pod else "instance"
        self.query_one("#raw-title", Static).update(
            f" {self.instance_name} — raw YAML of the {what} · c copy · F5 reload"
        )

    def action_copy(self) -> None:
        if self.text is None:
            self.notify("still loading", severity="warning")
            return
        self.app.copy_text(self.text, f"{self.instance_name} as YAML")  # type: ignore[attr-defined]

    def action_top(self) -> None:
        self.query_one("#raw-scroll", VerticalScroll).scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.query_one("#raw-scroll", VerticalScroll).scroll_end(animate=False)

    def action_down(self) -> None:
        self.query_one("#raw-scroll", VerticalScroll).scroll_down(animate=False)

    def action_up(self) -> None:
        self.query_one("#raw-scroll", VerticalScroll).scroll_up(animate=False)
