"""Finding the processes a test started, to prove they are all gone afterwards."""

from __future__ import annotations

import subprocess


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the process tree, now."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True)
    children: dict[int, list[int]] = {}
    for line in out.stdout.splitlines():
        p, pp = (int(x) for x in line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
