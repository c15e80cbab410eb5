"""The test guest's picture inside a streamed one: the stream scales the guest's screen
into its own size keeping the aspect ratio, with borders, which the counter decoder must
not see (its positions are fractions of the guest's screen)."""

from __future__ import annotations

import numpy as np

from emulator.testimage import decode_frame_counter


def guest_area(rgb: np.ndarray, guest_width: int, guest_height: int) -> np.ndarray:
    """The part of ``rgb`` the guest's ``guest_width`` x ``guest_height`` screen fills."""
    height, width = rgb.shape[:2]
    scale = min(width / guest_width, height / guest_height)
    w, h = round(guest_width * scale), round(guest_height * scale)
    x, y = (width - w) // 2, (height - h) // 2
    return rgb[y : y + h, x : x + w]


def streamed_counter(width: int, height: int, data: bytes, guest: tuple[int, int]) -> int | None:
    """The frame counter in a decoded RGB picture of the stream, or None."""
    rgb = np.frombuffer(data, np.uint8)[: width * height * 3].reshape(height, width, 3)
    return decode_frame_counter(np.ascontiguousarray(guest_area(rgb, *guest)))
