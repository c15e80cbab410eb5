"""A screen dump to files: the screen's text, a colour SVG of it, and each instance's
picture as a PNG, in a new directory of its own (``locotui-dump-<time>/``).

Pure file writing (in a thread); the UI collects what to write. Files are private
(0600, in a 0700 directory), like saved logs: a screen can show more than the operator
means to share with other users of the machine.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from locotui.data.errors import DataError

__all__ = ["Dump", "collect_pictures", "write_dump"]


@dataclass(frozen=True)
class Dump:
    directory: Path
    files: tuple[Path, ...]
    missing: Mapping[str, str] = field(default_factory=dict)
    """Instances whose picture could not be had, with why."""


async def collect_pictures(
    fetch: Callable[[str, int], Awaitable[bytes]],
    names: Iterable[str],
    width: int = 640,
    concurrency: int = 4,
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Fetches each instance's current picture (a few at a time, so a big fleet does not
    flood the backend); returns (pictures, why each missing one is missing)."""
    limit = asyncio.Semaphore(concurrency)
    pictures: dict[str, bytes] = {}
    missing: dict[str, str] = {}

    async def one(name: str) -> None:
        async with limit:
            try:
                pictures[name] = await fetch(name, width)
            except DataError as exc:
                missing[name] = str(exc)

    await asyncio.gather(*(one(n) for n in names))
    return pictures, missing


def _safe(name: str) -> str:
    # Instance names are DNS labels; anything else must not walk out of the directory.
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".") or "_"


def _write(
    directory: Path, text: str, svg: str | None, pictures: Mapping[str, bytes]
) -> list[Path]:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=False)
    except FileExistsError:
        raise DataError(f"{directory} exists; choose another name", source="locotui") from None
    written = []

    def put(path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        written.append(path)

    put(directory / "screen.txt", text.encode("utf-8"))
    if svg is not None:
        put(directory / "screen.svg", svg.encode("utf-8"))
    for name, data in sorted(pictures.items()):
        put(directory / f"{_safe(name)}.png", data)
    return written


async def write_dump(
    directory: str | os.PathLike[str],
    text: str,
    *,
    svg: str | None = None,
    pictures: Mapping[str, bytes] | None = None,
    missing: Mapping[str, str] | None = None,
) -> Dump:
    """Writes the dump; raises :class:`DataError` (the directory exists, a write fails).

    ``missing`` pictures are listed at the end of ``screen.txt``, so the dump says why a
    PNG is not there.
    """
    missing = dict(missing or {})
    if missing:
        text += "\n\npictures not included:\n" + "".join(
            f"  {name}: {why}\n" for name, why in sorted(missing.items())
        )
    path = Path(directory).expanduser()
    try:
        files = await asyncio.to_thread(_write, path, text, svg, dict(pictures or {}))
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}", source="locotui") from None
    return Dump(path, tuple(files), missing)
