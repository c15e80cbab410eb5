"""A bigger live picture of one instance (detail screen, zoom), refreshed faster.

It fetches for its own size through its own :class:`ThumbnailCache` (sharing the
renderer's style cache with the tiles), in one worker loop, so a slow backend delays the
picture instead of queueing requests.
"""

from __future__ import annotations

import asyncio

from rich.style import Style
from textual import events, work
from textual.strip import Strip
from textual.widget import Widget

from locotui.ui.halfblock import placeholder_strips
from locotui.ui.thumbs import ThumbnailCache
from locotui.ui.tile import THUMB_LOADING, Thumb

__all__ = ["Picture"]


class Picture(Widget):
    DEFAULT_CSS = """
    Picture { height: 1fr; width: 1fr; }
    """

    def __init__(
        self,
        name: str,
        thumbs: ThumbnailCache | None,
        interval: float = 0.5,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.instance_name = name
        self.thumbs = thumbs
        self.interval = interval
        self.thumb: Thumb = THUMB_LOADING
        self._strips: list[Strip] = []
        self._cache: ThumbnailCache | None = None
        self.frames = 0

    def on_mount(self) -> None:
        if self.thumbs is None:
            self.thumb = Thumb(message="no thumbnails (no backend)")
        else:
            # Its own cache: a bigger picture than the tiles', fetched on its own schedule.
            self._cache = ThumbnailCache(self.thumbs.fetch, self.thumbs.renderer)
            self._loop()
        self._layout()

    @work(exclusive=True, group="picture", exit_on_error=False)
    async def _loop(self) -> None:
        assert self._cache is not None
        while True:
            w, h = self.size
            if w > 0 and h > 0:
                thumb = await self._cache.refresh(self.instance_name, w, h)
                if thumb != self.thumb:
                    self.thumb = thumb
                    self.frames += 1
                    self._layout()
                    self.refresh()
            await asyncio.sleep(self.interval)

    def _layout(self) -> None:
        width, height = self.size
        base = self.rich_style
        if self.thumb.strips:
            pic = list(self.thumb.strips)
            pic_w = pic[0].cell_length
            left = max(0, (width - pic_w) // 2)
            top = max(0, (height - len(pic)) // 2)
            blank = Strip.blank(width, base)
            out = [blank] * height
            for i, strip in enumerate(pic[: max(0, height - top)]):
                line = Strip.join([Strip.blank(left, base), strip, Strip.blank(width, base)])
                out[top + i] = line.crop(0, width)
            self._strips = out
        else:
            style = base + Style(color="red" if self.thumb.error else "grey50", italic=True)
            self._strips = placeholder_strips(width, height, self.thumb.message or "", style, base)

    def on_resize(self, event: events.Resize) -> None:
        self._layout()

    def render_line(self, y: int) -> Strip:
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)
