"""Writing a file so that readers see the old content or the whole new one, never half.

A temporary file in the same directory (so the final rename stays on one filesystem) is
written, flushed to disk and renamed over the target. On any failure, a full disk
included, the temporary file is removed: a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644, replace: bool = True) -> Path:
    """Writes ``data`` to ``path`` atomically; raises ``OSError`` (nothing left behind).

    With ``replace=False`` an existing ``path`` is never overwritten, not even one that
    appears while writing: ``FileExistsError`` is raised instead.
    """
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; most of what is written here is read by other processes.
        tmp.chmod(mode)
        if replace:
            os.replace(tmp, path)
        else:
            # link() fails if the name exists, even one created a moment ago by another writer.
            os.link(tmp, path)
            tmp.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path
