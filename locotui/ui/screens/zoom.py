"""``z``: one instance's picture, as big as the terminal allows, refreshed twice a second."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from locotui.ui.picture import Picture
from locotui.ui.thumbs import ThumbnailCache

__all__ = ["ZoomScreen"]


class ZoomScreen(Screen[None]):
    DEFAULT_CSS = """
    ZoomScreen #zoom-title { height: 1; background: $panel; text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,z", "app.pop_screen", "Back"),
    ]

    def __init__(self, name: str, thumbs: ThumbnailCache | None) -> None:
        super().__init__()
        self.instance_name = name
        self.thumbs = thumbs

    def compose(self) -> ComposeResult:
        yield Static(f" {self.instance_name} — live picture (Esc to go back)", id="zoom-title")
        yield Picture(self.instance_name, self.thumbs, interval=0.5, id="zoom-picture")
        yield Footer()
