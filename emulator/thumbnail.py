"""Scaled PNG of the latest frame, encoded off the event loop and cached per frame."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from emulator.vnc import Frame

MIN_WIDTH, MAX_WIDTH = 16, 1920


def encode_png(frame: Frame, width: int) -> bytes:
    height, src_width = frame.rgb.shape[:2]
    width = min(width, src_width)
    image = Image.fromarray(frame.rgb, "RGB")
    if width != src_width:
        new_height = max(1, round(height * width / src_width))
        image = image.resize((width, new_height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    # Speed over size: a thumbnail is fetched about once a second per viewer.
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


class ThumbnailCache:
    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._png = b""

    async def png(self, frame: Frame, width: int) -> bytes:
        key = (frame.seq, width)
        if key != self._key:
            self._png = await asyncio.to_thread(encode_png, frame, width)
            self._key = key
        return self._png
