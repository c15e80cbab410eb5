"""Render the test guest's picture in Python, as QEMU shows it, without running QEMU.

For tests and simulators that need screenshots carrying a frame counter.  The counter band
(guard band and blocks, y 0.40-0.60) is pixel-exact against QEMU 7.2's screendump of the
real guest; the colour band and the moving bar above and below it are only stand-ins (the
real band uses the VGA palette).  Geometry mirrors the descriptors at the end of boot.asm.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Mode = Literal["13h", "text"]

BLACK = (0, 0, 0)
BLUE = (0, 0, 168)
WHITE = (255, 255, 255)
YELLOW = (255, 255, 87)

# Size of the picture over VNC / QMP screendump for each mode.
SCREEN_SIZE: dict[Mode, tuple[int, int]] = {"13h": (640, 400), "text": (720, 400)}


def _paint(img: np.ndarray, x0: int, x1: int, y0: int, y1: int, colour: tuple[int, ...]) -> None:
    img[y0:y1, x0:x1, :3] = colour


def render_frame(counter: int, mode: Mode = "13h") -> npt.NDArray[np.uint8]:
    """An (H, W, 4) RGBA picture of the guest showing ``counter`` in video ``mode``."""
    if not 0 <= counter <= 0xFFFF:
        raise ValueError(f"counter must be 0..65535, got {counter}")
    if mode not in SCREEN_SIZE:
        raise ValueError(f"mode must be one of {sorted(SCREEN_SIZE)}, got {mode!r}")
    width, height = SCREEN_SIZE[mode]
    img = np.zeros((height, width, 4), np.uint8)
    img[:, :, 3] = 255

    if mode == "13h":
        # 320x200 pixels, each shown as 2x2.
        sx, sy = 2, 2
        band = (0, 320, 80, 120)
        block_x, block_w, block_pitch, block_y = 4, 12, 20, (88, 112)
        colour_rows, bar = (0, 64), (((counter & 63) * 5), 4, (136, 200))
    else:
        # 80x25 character cells of 9x16 pixels.
        sx, sy = 9, 16
        band = (0, 80, 10, 15)
        block_x, block_w, block_pitch, block_y = 1, 3, 5, (11, 14)
        colour_rows, bar = (0, 8), ((counter & 63), 1, (17, 25))

    hue = counter & 0xFF
    _paint(img, 0, width, colour_rows[0] * sy, colour_rows[1] * sy, (hue, 255 - hue, 128))
    bx, bw, (by0, by1) = bar
    _paint(img, bx * sx, (bx + bw) * sx, by0 * sy, by1 * sy, YELLOW)
    _paint(img, band[0] * sx, band[1] * sx, band[2] * sy, band[3] * sy, BLUE)
    for bit in range(16):
        x0 = (block_x + bit * block_pitch) * sx
        colour = WHITE if counter >> bit & 1 else BLACK
        _paint(img, x0, x0 + block_w * sx, block_y[0] * sy, block_y[1] * sy, colour)
    return img
