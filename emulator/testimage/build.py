"""Write the test guest's raw disk image: the shipped boot sector, patched, padded to 1 MiB."""

from __future__ import annotations

import contextlib
import os
import tempfile
from importlib import resources
from pathlib import Path

from emulator.testimage.params import check_sector, patch_sector, validate_fps

IMAGE_SIZE = 1024 * 1024
BOOT_BIN = "boot.bin"
_PACKAGE = "emulator.testimage"


def load_boot_sector() -> bytes:
    """The assembled boot sector shipped in this package (so nasm is not needed at run time)."""
    sector = resources.files(_PACKAGE).joinpath(BOOT_BIN).read_bytes()
    try:
        check_sector(sector)
    except ValueError as exc:
        # A damaged package, not a caller error: say which file is at fault.
        raise RuntimeError(f"packaged {BOOT_BIN} is not a usable boot sector: {exc}") from exc
    return sector


def build_image(fps: float = 30, mode_switch: bool = False) -> bytes:
    """The complete 1 MiB raw image as bytes."""
    sector = patch_sector(load_boot_sector(), fps=fps, mode_switch=mode_switch)
    return sector + bytes(IMAGE_SIZE - len(sector))


def _check_output(out: Path) -> Path:
    if out.name in ("", ".", ".."):
        raise ValueError(f"output path {str(out)!r} does not name a file")
    if out.is_dir():
        raise ValueError(f"output path {str(out)!r} is a directory, expected a file name")
    parent = out.parent
    if not parent.exists():
        raise ValueError(f"output directory {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise ValueError(f"output directory {str(parent)!r} is not a directory")
    return out


def write_test_image(out: Path, fps: float = 30, mode_switch: bool = False) -> Path:
    """Write a bootable test image to ``out`` and return ``out``.

    The guest draws ``fps`` frames per second (1..60) with its frame counter in the picture;
    with ``mode_switch`` it alternates between VGA mode 13h and text mode about once per
    second.  The file appears atomically: readers see the old file or the whole new one.
    """
    out = _check_output(Path(out))
    validate_fps(fps)  # before touching the filesystem
    if not isinstance(mode_switch, bool):
        raise ValueError(f"mode_switch must be True or False, got {mode_switch!r}")
    image = build_image(fps=fps, mode_switch=mode_switch)

    # Temp file in the same directory so the rename stays on one filesystem (atomic).
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(image)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; an image is not secret and QEMU may run as another user.
        tmp.chmod(0o644)
        tmp.replace(out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return out
