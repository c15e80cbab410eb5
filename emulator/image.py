"""Disk image checks and the per-instance copy-on-write overlay.

Everything here runs before QEMU does, so a bad image is one clear line instead of a QEMU
error three layers down. The base image is only ever opened read-only (``-U`` so a shared
base in use by other instances is not locked against us); all writes go to the overlay.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from emulator.atomicfile import write_atomic
from emulator.errors import ExitCode, SupervisorError
from emulator.statedir import state_dir_error

SUPPORTED_FORMATS = ("raw", "qcow2")
FINGERPRINT_NAME = "base.json"
_FINGERPRINT_SPAN = 1024 * 1024
SECTOR = 512
OVERLAY_NAME = "overlay.qcow2"


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    format: str
    virtual_size: int
    actual_size: int | None


async def _qemu_img(*args: str, time_limit: float = 30.0) -> tuple[int, str, str]:
    if shutil.which("qemu-img") is None:
        raise SupervisorError(
            "qemu-img is not installed; run 'make setup' (Debian package qemu-utils)",
            ExitCode.QEMU_MISSING,
        )
    proc = await asyncio.create_subprocess_exec(
        "qemu-img",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), time_limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise SupervisorError(
            f"qemu-img {args[0]} did not finish within {time_limit:.0f} s", ExitCode.IMAGE_CORRUPT
        ) from None
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("qemu-img: ")
    return "no details"


def _check_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SupervisorError(
            f"disk image {path} does not exist; point --disk/LOCO_DISK_IMAGE at your image "
            "(or create a test image with 'loco-emulator make-test-image')",
            ExitCode.IMAGE_MISSING,
        ) from None
    except PermissionError:
        raise SupervisorError(
            f"disk image {path} cannot be reached: permission denied on a parent directory",
            ExitCode.IMAGE_UNREADABLE,
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise SupervisorError(
            f"disk image {path} is not a regular file; give the path of the image file itself",
            ExitCode.IMAGE_UNREADABLE,
        )
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except PermissionError:
        raise SupervisorError(
            f"disk image {path} is not readable by this user (uid {os.getuid()}); "
            "fix its permissions or mount it readable",
            ExitCode.IMAGE_UNREADABLE,
        ) from None
    except OSError as exc:
        raise SupervisorError(
            f"disk image {path} cannot be read: {exc.strerror}", ExitCode.IMAGE_UNREADABLE
        ) from None
    if st.st_size == 0:
        raise SupervisorError(
            f"disk image {path} is empty (0 bytes); the copy or download was incomplete",
            ExitCode.IMAGE_CORRUPT,
        )


async def inspect_image(path: Path) -> ImageInfo:
    """Verifies that ``path`` is a readable, consistent, bootable raw or qcow2 image."""
    path = path.expanduser().absolute()
    _check_file(path)
    rc, out, err = await _qemu_img("info", "-U", "--output=json", str(path))
    if rc != 0:
        raise SupervisorError(
            f"disk image {path} is not a disk image QEMU can open: {_first_error_line(err)}",
            ExitCode.IMAGE_CORRUPT,
        )
    info = json.loads(out)
    fmt = str(info.get("format"))
    if fmt not in SUPPORTED_FORMATS:
        raise SupervisorError(
            f"disk image {path} is in {fmt} format, which is not supported; convert it with "
            f"'qemu-img convert -O qcow2 {path} {path.with_suffix('.qcow2')}'",
            ExitCode.IMAGE_UNSUPPORTED,
        )
    if info.get("backing-filename"):
        raise SupervisorError(
            f"disk image {path} is itself an overlay of {info['backing-filename']}; give the "
            "base image (or flatten it with 'qemu-img convert -O qcow2')",
            ExitCode.IMAGE_UNSUPPORTED,
        )
    size = path.stat().st_size
    if fmt == "raw" and size % SECTOR:
        raise SupervisorError(
            f"disk image {path} is truncated: {size} bytes is not a whole number of "
            f"{SECTOR}-byte sectors; copy the image again",
            ExitCode.IMAGE_CORRUPT,
        )
    if fmt == "qcow2":
        rc, out, err = await _qemu_img("check", "-U", "--output=json", str(path))
        if rc in (2, 3) or "ERROR" in err:
            raise SupervisorError(
                f"disk image {path} is damaged (qemu-img check: {_first_error_line(err)}); "
                "it is probably truncated; copy it again or try 'qemu-img check -r all' on a copy",
                ExitCode.IMAGE_CORRUPT,
            )
        if rc not in (0,):
            raise SupervisorError(
                f"disk image {path} could not be checked: {_first_error_line(err)}",
                ExitCode.IMAGE_CORRUPT,
            )
        # A cut-short copy can still pass the check when the cut only took data clusters;
        # the image's own tables still say where it should end.
        end = json.loads(out).get("image-end-offset") if out.strip() else None
        if isinstance(end, int) and size < end:
            raise SupervisorError(
                f"disk image {path} is truncated: the file has {size} bytes but its own "
                f"tables say it ends at {end}; copy the image again",
                ExitCode.IMAGE_CORRUPT,
            )
    await _check_boot_sector(path, fmt)
    return ImageInfo(path, fmt, int(info["virtual-size"]), info.get("actual-size"))


async def _check_boot_sector(path: Path, fmt: str) -> None:
    """A disk a PC can boot ends its first sector with 0x55 0xAA; anything else is not one."""
    with tempfile.TemporaryDirectory(prefix="loco-img-") as tmp:
        sector_file = Path(tmp) / "sector.bin"
        rc, _, err = await _qemu_img(
            "dd",
            "-U",
            "-f",
            fmt,
            "-O",
            "raw",
            f"if={path}",
            f"of={sector_file}",
            f"bs={SECTOR}",
            "count=1",
        )
        if rc != 0 or not sector_file.exists():
            raise SupervisorError(
                f"disk image {path}: cannot read its first sector: {_first_error_line(err)}",
                ExitCode.IMAGE_CORRUPT,
            )
        sector = sector_file.read_bytes()
    if len(sector) < SECTOR or sector[510:512] != b"\x55\xaa":
        raise SupervisorError(
            f"disk image {path} has no boot signature in its first sector: it is not a "
            "bootable PC disk (wrong file, or wrong format?)",
            ExitCode.IMAGE_CORRUPT,
        )


def fingerprint(path: Path) -> dict[str, object]:
    """Size plus a hash of the first and last MiB: cheap even for a multi-GiB image, and a
    replaced image (same path, other content) almost always differs in one of them."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        digest.update(fh.read(_FINGERPRINT_SPAN))
        fh.seek(max(0, size - _FINGERPRINT_SPAN))
        digest.update(fh.read(_FINGERPRINT_SPAN))
    return {"path": str(path), "size": size, "sha256_head_tail": digest.hexdigest()}


async def prepare_overlay(state_dir: Path, base: ImageInfo, fresh: bool = False) -> Path:
    """Returns this instance's overlay on ``base``, creating it when missing or ``fresh``.

    An existing overlay is kept across restarts (it holds the guest's disk state) as long as
    it still sits on the same base; one on another base would show the guest a disk that
    mixes two images, so that is refused rather than silently replaced. A full or read-only
    state directory is one clear line (``emulator.statedir``) and leaves no temporary file.
    """
    try:
        return await _prepare_overlay(state_dir, base, fresh)
    except OSError as exc:
        raise state_dir_error(state_dir, exc, "cannot write the overlay's files") from None


async def _prepare_overlay(state_dir: Path, base: ImageInfo, fresh: bool) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    overlay = state_dir / OVERLAY_NAME
    if overlay.exists() and not fresh:
        rc, out, err = await _qemu_img("info", "-U", "--output=json", str(overlay))
        if rc != 0:
            raise SupervisorError(
                f"overlay {overlay} is unreadable ({_first_error_line(err)}); "
                "start with --fresh-overlay to discard it",
                ExitCode.OVERLAY,
            )
        info = json.loads(out)
        backing = info.get("full-backing-filename") or info.get("backing-filename")
        if not backing or Path(backing).absolute() != base.path:
            raise SupervisorError(
                f"overlay {overlay} belongs to base image {backing}, not {base.path}; start "
                "with --fresh-overlay to discard it, or give the original base image",
                ExitCode.OVERLAY,
            )
        rc, _, err = await _qemu_img("check", "-U", str(overlay))
        if rc in (2, 3):
            raise SupervisorError(
                f"overlay {overlay} is damaged ({_first_error_line(err)}); "
                "start with --fresh-overlay to discard it",
                ExitCode.OVERLAY,
            )
        guard = BaseImageGuard(base.path, state_dir / FINGERPRINT_NAME)
        if not guard.recorded():
            guard.record()
        elif (changed := await guard.changed()) is not None:
            raise SupervisorError(changed, ExitCode.OVERLAY)
        return overlay
    tmp = state_dir / f".{OVERLAY_NAME}.new"
    tmp.unlink(missing_ok=True)
    rc, _, err = await _qemu_img(
        "create", "-q", "-f", "qcow2", "-b", str(base.path), "-F", base.format, str(tmp)
    )
    if rc != 0:
        tmp.unlink(missing_ok=True)
        if "No space left" in err:
            raise OSError(errno.ENOSPC, "No space left on device")
        raise SupervisorError(
            f"cannot create overlay in {state_dir}: {_first_error_line(err)}", ExitCode.OVERLAY
        )
    try:
        BaseImageGuard(base.path, state_dir / FINGERPRINT_NAME).record()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, overlay)
    return overlay


class BaseImageGuard:
    """Tells whether the base image still is the one an overlay was made on.

    The overlay stores only the guest's changes; on top of another base the guest would see
    a mix of two disks. The fingerprint recorded beside the overlay is compared before every
    start of QEMU, and cheaply while it runs (a ``stat`` each time; the fingerprint is read
    again only when the file's identity or size or time changed).
    """

    def __init__(self, base: Path, recorded_file: Path) -> None:
        self.base = base
        self.recorded_file = recorded_file
        self._stat_key: tuple[int, int, int, int] | None = None
        self._verdict: str | None = None

    def recorded(self) -> bool:
        return self.recorded_file.exists()

    def record(self) -> None:
        """Remembers the base as it is now (``OSError`` on a full state directory)."""
        write_atomic(self.recorded_file, json.dumps(fingerprint(self.base)).encode())

    def _key(self) -> tuple[int, int, int, int] | None:
        try:
            st = self.base.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    async def changed(self) -> str | None:
        """None while the base is the recorded one, else what is wrong and what to do."""
        key = self._key()
        if key is not None and key == self._stat_key:
            return self._verdict
        self._stat_key = key
        self._verdict = await asyncio.to_thread(self._compare)
        return self._verdict

    def _compare(self) -> str | None:
        try:
            current = fingerprint(self.base)
        except OSError as exc:
            return f"base image {self.base} cannot be read: {exc.strerror or exc}"
        try:
            before = json.loads(self.recorded_file.read_text())
        except (OSError, ValueError):
            before = None
        if before == current:
            return None
        return (
            f"base image {self.base} has changed since overlay "
            f"{self.recorded_file.with_name(OVERLAY_NAME)} was made on it; the guest would "
            "see a mix of both disks. Start with --fresh-overlay to discard the overlay (the "
            "guest's changes are lost), or put the original image back"
        )
