"""What every fault scenario needs: a small real fleet, a watch on it, and the invariants.

A scenario starts real supervisors (real QEMU booting the test guest) and a real backend
with local discovery, injects one fault, and checks what must hold:

* no crash: the processes that were not the target of the fault are still running;
* the right status within a bounded time, and recovery once the fault ends;
* no instance lost from the view: :class:`FleetWatch` samples the backend's list all
  along and remembers any moment an instance was missing;
* no orphan process: every QEMU and supervisor started is gone afterwards;
* bounded memory: the backend's resident size after the fault;
* the base image never written: its digest before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import pytest

from tests.support.backend import BackendProcess
from tests.support.supervisor import (
    SupervisorProcess,
    make_image,
    qemu_processes_for,
    start_supervisor,
    wait_gone,
)
from tests.support.waiting import GiveUp, eventually

TOKEN = "chaos-token"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a small filesystem for the state directory")


@contextlib.contextmanager
def small_fs(path: Path, size_kib: int) -> Iterator[Path]:
    """A tmpfs of ``size_kib`` KiB at ``path``, unmounted afterwards whatever happens."""
    needs_root()
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(path)],
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


class Background:
    """A coroutine (``_run``) running beside a scenario, from :meth:`start` to :meth:`stop`."""

    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class FleetWatch(Background):
    """Samples the backend's list every ``interval`` seconds while a scenario runs."""

    backend: BackendProcess
    names: set[str]
    interval: float = 0.2
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: list[tuple[float, set[str]]] = field(default_factory=list)
    statuses: dict[str, list[str]] = field(default_factory=dict)
    errors: int = 0
    samples: int = 0

    async def _run(self) -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
            while True:
                try:
                    resp = await client.get(f"{self.backend.url}/api/instances")
                    items = {i["name"]: i for i in resp.json()["items"]}
                except (httpx.HTTPError, ValueError, KeyError):
                    self.errors += 1
                else:
                    self.samples += 1
                    self.latest = items
                    gone = self.names - set(items)
                    if gone:
                        self.missing.append((time.monotonic(), gone))
                    for name, inst in items.items():
                        seen = self.statuses.setdefault(name, [])
                        if not seen or seen[-1] != inst["status"]:
                            seen.append(inst["status"])
                await asyncio.sleep(self.interval)

    async def until(
        self,
        name: str,
        accept: Callable[[dict[str, Any]], bool],
        deadline: float,
        what: str,
    ) -> tuple[dict[str, Any], float]:
        """The instance once ``accept`` holds, and how long that took."""
        started = time.monotonic()
        inst = await eventually(
            lambda: self.latest.get(name),
            deadline,
            f"{name}: {what}",
            interval=self.interval / 2,
            accept=lambda i: i is not None and accept(i),
            describe=lambda: (
                f"last: {_brief(self.latest.get(name))}; statuses {self.statuses.get(name)}"
            ),
        )
        return inst, time.monotonic() - started

    async def samples_pass(self, count: int, deadline: float = 30.0) -> None:
        """Returns after ``count`` more answers of the backend (each one checked for missing
        instances): "still so a while later", without a fixed sleep."""
        target = self.samples + count
        await eventually(
            lambda: self.samples >= target,
            deadline,
            f"{count} answers of the backend (did it stop answering?)",
            interval=self.interval / 2,
        )

    def assert_none_lost(self) -> None:
        assert not self.missing, f"instances missing from the list at times: {self.missing[:5]}"


def _brief(inst: dict[str, Any] | None) -> str:
    if inst is None:
        return "absent"
    return f"{inst['status']} ({inst.get('status_reason')}), breaker {inst['breaker']['state']}"


def status_is(status: str, reason: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def accept(inst: dict[str, Any]) -> bool:
        return inst["status"] == status and (
            reason is None or reason in (inst.get("status_reason") or "")
        )

    return accept


@dataclass
class Fleet:
    """Real supervisors and a real backend (local discovery) under ``root``."""

    root: Path
    supervisors: dict[str, SupervisorProcess]
    backend: BackendProcess
    image: Path
    image_digest: str
    watch: FleetWatch

    def sup(self, name: str) -> SupervisorProcess:
        return self.supervisors[name]


@contextlib.asynccontextmanager
async def local_fleet(
    tmp: Path,
    names: list[str],
    *,
    image: Path | None = None,
    state_dirs: dict[str, Path] | None = None,
    args: list[str] | None = None,
    backend_args: list[str] | None = None,
    healthy_first: bool = True,
) -> AsyncIterator[Fleet]:
    """Starts the supervisors and the backend, waits until all are healthy (only listed,
    without ``healthy_first``: for a fault that may strike before the first probe), and on
    the way out stops everything and proves no QEMU and no supervisor is left."""
    root = tmp / "fleet"
    root.mkdir(exist_ok=True)
    image = image or make_image(tmp)
    before = digest(image)
    sups: dict[str, SupervisorProcess] = {}
    backend = BackendProcess(
        ["--discovery", "local", "--local-dir", str(root)],
        tmp / "backend.log",
        token=TOKEN,
        extra=backend_args,
    )
    watch: FleetWatch | None = None
    try:
        for name in names:
            state = (state_dirs or {}).get(name) or root / name
            sups[name] = start_supervisor(
                tmp, name, image=image, token=TOKEN, args=args, state_dir=state
            )
        await asyncio.gather(*(s.wait_ready(60) for s in sups.values()))
        backend.start()
        watch = FleetWatch(backend, set(names)).start()
        fleet = Fleet(root, sups, backend, image, before, watch)
        for name in names:
            if healthy_first:
                await watch.until(name, status_is("healthy"), 30, "healthy at the start")
            else:
                await watch.until(name, lambda _: True, 30, "listed at the start")
        yield fleet
    finally:
        if watch is not None:
            await watch.stop()
        backend.stop()
        for sup in sups.values():
            sup.stop()
        for sup in sups.values():
            assert sup.proc.poll() is not None, f"supervisor {sup.name} still running"
            assert not wait_gone(qemu_processes_for(sup.state_dir)), f"QEMU of {sup.name} left"
    assert digest(image) == before, "the base image was written"


@dataclass
class EventLog(Background):
    """Follows the backend's ``/api/events`` and keeps every ``remediation`` event."""

    backend: BackendProcess
    remediation: list[dict[str, Any]] = field(default_factory=list)

    async def _run(self) -> None:
        async with (
            httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(5, read=None)) as client,
            client.stream("GET", f"{self.backend.url}/api/events") as resp,
        ):
            kind = None
            async for line in resp.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "remediation":
                    self.remediation.append(json.loads(line[6:]))

    def of(self, name: str) -> list[tuple[str, str]]:
        """(action, outcome) of the decisions about ``name``, in order."""
        return [(e["action"], e["outcome"]) for e in self.remediation if e["instance"] == name]

    async def until(self, name: str, action: str, outcome: str, deadline: float) -> dict[str, Any]:
        """The first such decision about ``name`` (waiting up to ``deadline`` s)."""

        def decision() -> dict[str, Any] | None:
            for e in self.remediation:
                if (e["instance"], e["action"], e["outcome"]) == (name, action, outcome):
                    return e
            if self._task is not None and self._task.done():
                error = self._task.exception()  # the stream ended: say why
                raise GiveUp(f"the event stream ended ({error!r})") from error
            return None

        found: dict[str, Any] = await eventually(
            decision,
            deadline,
            f"{name}: {action} ({outcome})",
            interval=0.1,
            describe=lambda: f"decisions: {self.of(name)}",
        )
        return found
