"""Write the test guest's raw disk image: the shipped boot sector, patched, padded to 1 MiB."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from emulator.atomicfile import write_atomic
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


def build_image(fps: float = 30, mode_switch: bool = False, disk_write: bool = False) -> bytes:
    """The complete 1 MiB raw image as bytes."""
    sector = patch_sector(
        load_boot_sector(), fps=fps, mode_switch=mode_switch, disk_write=disk_write
    )
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


def write_test_image(
    out: Path, fps: float = 30, mode_switch: bool = False, disk_write: bool = False
) -> Path:
    """Write a bootable test image to ``out`` and return ``out``.

    The guest draws ``fps`` frames per second (1..60) with its frame counter in the picture;
    with ``mode_switch`` it alternates between VGA mode 13h and text mode about once per
    second; with ``disk_write`` it writes a sector to its disk every frame, allocating the
    whole 1 MiB in the instance's overlay within 16 frames.  The file appears atomically:
    readers see the old file or the whole new one.
    """
    out = _check_output(Path(out))
    validate_fps(fps)  # before touching the filesystem
    for flag, value in (("mode_switch", mode_switch), ("disk_write", disk_write)):
        if not isinstance(value, bool):
            raise ValueError(f"{flag} must be True or False, got {value!r}")
    image = build_image(fps=fps, mode_switch=mode_switch, disk_write=disk_write)

    # 0644: an image is not secret and QEMU may run as another user.
    return write_atomic(out, image, mode=0o644)
