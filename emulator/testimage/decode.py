"""Read the test guest's frame counter back out of a screenshot.

The guest (boot.asm) draws, in both of its video modes and at the same place relative to
the picture: a blue guard band over y 0.40-0.60, and in it 16 blocks, block i centred on
x = (i + 0.5) / 16, y = 0.5, white when bit i of the counter is set and black when clear.
Between and around the blocks the band stays blue.

Decoding samples small patches at those normalised positions, so it works at any
resolution the screen arrives in (640x400 for mode 13h, 720x400 for text mode, or a scaled
copy).  The blue guard samples are what tell a counter picture from anything else: a blank
screen, one caught mid mode switch, or another guest, decode to None instead of a number.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BITS = 16
BLOCK_Y = 0.5
GUARD_YS = (0.42, 0.58)  # centres of the guard strips above and below the blocks

# Patch half-size as a fraction of width/height.  Small enough to stay inside the narrowest
# feature (guard gaps of 0.025 x 0.04), large enough to average out scaling blur.
_PATCH = 0.004

# Thresholds on 0..255 channels.  The guest's colours arrive as white (255,255,255),
# black (0,0,0) and blue (0,0,168); the margins absorb scaling and compression.
_HIGH = 192
_LOW = 64
_BLUE_MIN = 128

# Below this the 16 blocks and their gaps cannot be told apart.
_MIN_WIDTH = 64
_MIN_HEIGHT = 40


def _sample(rgb: npt.NDArray[np.uint8], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Mean colour of a small patch around each normalised (x, y); returns (n, 3) floats."""
    height, width = rgb.shape[:2]
    rx = int(width * _PATCH)
    ry = int(height * _PATCH)
    # floor(u * size) maps u in [0, 1) onto pixel cells at any scale; u = 1.0 clamps.
    cx = np.clip(np.floor(xs * width).astype(np.intp), 0, width - 1)
    cy = np.clip(np.floor(ys * height).astype(np.intp), 0, height - 1)
    px = np.clip(cx[:, None] + np.arange(-rx, rx + 1), 0, width - 1)
    py = np.clip(cy[:, None] + np.arange(-ry, ry + 1), 0, height - 1)
    patches = rgb[py[:, :, None], px[:, None, :]]  # (n, 2ry+1, 2rx+1, 3)
    return patches.reshape(len(xs), -1, 3).astype(np.float32).mean(axis=1)


def _is_white(c: np.ndarray) -> np.ndarray:
    return c.min(axis=-1) >= _HIGH


def _is_black(c: np.ndarray) -> np.ndarray:
    return c.max(axis=-1) <= _LOW


def _is_guard(c: np.ndarray) -> np.ndarray:
    return (c[..., 2] >= _BLUE_MIN) & (c[..., 0] <= _LOW) & (c[..., 1] <= _LOW)


def decode_frame_counter(rgba: npt.NDArray[np.uint8]) -> int | None:
    """The 16-bit frame counter drawn by the test guest, or None if the picture has none.

    ``rgba`` is an (H, W, 4) uint8 array (an (H, W, 3) RGB array works too).  Returns None
    when the guard band is missing or any block is neither clearly white nor clearly black.
    """
    if not isinstance(rgba, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(rgba).__name__}")
    if rgba.ndim != 3 or rgba.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 4) RGBA array, got shape {rgba.shape}")
    if rgba.dtype != np.uint8:
        raise ValueError(f"expected dtype uint8, got {rgba.dtype}")
    height, width = rgba.shape[:2]
    if width < _MIN_WIDTH or height < _MIN_HEIGHT:
        return None
    rgb = rgba[:, :, :3]

    centres = (np.arange(BITS) + 0.5) / BITS
    edges = np.arange(BITS + 1) / BITS  # the gaps between blocks and both band ends
    guard_xs = np.concatenate([edges, centres, centres])
    guard_ys = np.concatenate(
        [np.full(BITS + 1, BLOCK_Y), np.full(BITS, GUARD_YS[0]), np.full(BITS, GUARD_YS[1])]
    )
    if not _is_guard(_sample(rgb, guard_xs, guard_ys)).all():
        return None

    blocks = _sample(rgb, centres, np.full(BITS, BLOCK_Y))
    white = _is_white(blocks)
    if not (white | _is_black(blocks)).all():
        return None
    return int(np.dot(white.astype(np.int64), 1 << np.arange(BITS)))
