"""The boot sector's parameter block: its layout and how frame rates map onto the PIT.

The block sits at a fixed offset just before the 0x55AA signature (see boot.asm):

====== ====== ===========================================================
offset size   meaning
====== ====== ===========================================================
0x1F0  6      magic ``b"LOCOTI"``
0x1F6  u8     layout version (1)
0x1F7  u8     flags: bit 0 = mode switch, bit 1 = write to the disk
0x1F8  u16 LE PIT channel 0 divisor (1..65535)
0x1FA  u8     timer ticks per frame (1..255)
0x1FB  u8     reserved, 0
0x1FC  u16 LE frames per video mode while mode switching (about 1 s)
0x1FE  2      boot signature 55 AA
====== ====== ===========================================================

The PIT's divisor is 16 bits, so one tick per frame cannot go below 1193182/65535 ≈ 18.2
ticks/s.  Slower rates keep the timer faster and draw every n-th tick instead.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from numbers import Real

PIT_HZ = 1_193_182
MIN_FPS = 1.0
MAX_FPS = 60.0

SECTOR_SIZE = 512
MAGIC = b"LOCOTI"
PARAM_OFFSET = 0x1F0
LAYOUT_VERSION = 1
FLAG_MODE_SWITCH = 0x01
FLAG_DISK_WRITE = 0x02
SIGNATURE = b"\x55\xaa"
SIGNATURE_OFFSET = SECTOR_SIZE - len(SIGNATURE)

# magic, version, flags, divisor, ticks per frame, reserved, frames per video mode
_LAYOUT = struct.Struct("<6sBBHBBH")
assert PARAM_OFFSET + _LAYOUT.size == SIGNATURE_OFFSET  # the block fills the gap exactly

_MAX_DIVISOR = 0xFFFF


@dataclass(frozen=True)
class FrameTiming:
    """How the guest reaches a frame rate: PIT divisor and ticks drawn per frame."""

    divisor: int
    ticks_per_frame: int

    @property
    def fps(self) -> float:
        """The frame rate the guest actually runs at (rounding of the divisor included)."""
        return PIT_HZ / (self.divisor * self.ticks_per_frame)


def validate_fps(fps: float) -> float:
    """Return ``fps`` as a float, or raise ValueError saying what is wrong with it."""
    # bool is a Real too, but True frames/s is a caller bug, not a rate.
    if isinstance(fps, bool) or not isinstance(fps, Real):
        raise ValueError(f"fps must be a number of frames per second, got {fps!r}")
    value = float(fps)
    if not math.isfinite(value) or not MIN_FPS <= value <= MAX_FPS:
        raise ValueError(
            f"fps must be between {MIN_FPS:g} and {MAX_FPS:g} frames per second, got {fps!r}"
        )
    return value


def frame_timing(fps: float) -> FrameTiming:
    """PIT settings for ``fps``: divisor = round(1193182 / fps) when that fits in 16 bits."""
    value = validate_fps(fps)
    ticks = math.ceil(PIT_HZ / (value * _MAX_DIVISOR))
    divisor = round(PIT_HZ / (value * ticks))
    return FrameTiming(divisor=min(divisor, _MAX_DIVISOR), ticks_per_frame=ticks)


def frames_per_mode(fps: float) -> int:
    """Frames between video mode switches: about one second's worth."""
    return max(1, round(validate_fps(fps)))


@dataclass(frozen=True)
class BootParams:
    """The decoded contents of a sector's parameter block."""

    version: int
    flags: int
    divisor: int
    ticks_per_frame: int
    frames_per_mode: int

    @property
    def mode_switch(self) -> bool:
        return bool(self.flags & FLAG_MODE_SWITCH)

    @property
    def disk_write(self) -> bool:
        return bool(self.flags & FLAG_DISK_WRITE)

    @property
    def timing(self) -> FrameTiming:
        return FrameTiming(self.divisor, self.ticks_per_frame)


def check_sector(sector: bytes) -> None:
    """Raise ValueError unless ``sector`` is a boot sector carrying our parameter block."""
    if len(sector) != SECTOR_SIZE:
        raise ValueError(f"boot sector must be {SECTOR_SIZE} bytes, got {len(sector)}")
    if sector[SIGNATURE_OFFSET:] != SIGNATURE:
        raise ValueError("boot sector lacks the 55 AA signature")
    if sector[PARAM_OFFSET : PARAM_OFFSET + len(MAGIC)] != MAGIC:
        raise ValueError(f"boot sector lacks the {MAGIC!r} parameter block at {PARAM_OFFSET:#x}")
    version = sector[PARAM_OFFSET + len(MAGIC)]
    if version != LAYOUT_VERSION:
        raise ValueError(f"parameter block version {version}, expected {LAYOUT_VERSION}")


def read_params(sector: bytes) -> BootParams:
    """Decode the parameter block of ``sector`` (checked first)."""
    check_sector(sector)
    _magic, version, flags, divisor, ticks, _reserved, period = _LAYOUT.unpack_from(
        sector, PARAM_OFFSET
    )
    return BootParams(version, flags, divisor, ticks, period)


def patch_sector(
    sector: bytes, fps: float = 30, mode_switch: bool = False, disk_write: bool = False
) -> bytes:
    """Return a copy of ``sector`` set up for ``fps`` frames/s and, optionally, mode switching
    and disk writing."""
    check_sector(sector)
    timing = frame_timing(fps)
    flags = (FLAG_MODE_SWITCH if mode_switch else 0) | (FLAG_DISK_WRITE if disk_write else 0)
    patched = bytearray(sector)
    _LAYOUT.pack_into(
        patched,
        PARAM_OFFSET,
        MAGIC,
        LAYOUT_VERSION,
        flags,
        timing.divisor,
        timing.ticks_per_frame,
        0,
        frames_per_mode(fps),
    )
    return bytes(patched)
