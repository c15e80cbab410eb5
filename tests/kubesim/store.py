"""Object storage with etcd-like resourceVersions, a bounded change history and watch fan-out.

Everything here runs on the simulator's event loop thread, so there are no locks: the
public ``KubeSim`` API marshals calls onto that loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tests.kubesim.objects import Obj, deep, new_uid, now_rfc3339

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


class StoreError(Exception):
    """A storage failure that maps onto a Kubernetes Status (NotFound, AlreadyExists...)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class TooOld(Exception):
    """A watch/list asked for a resourceVersion that was compacted away (410 Gone)."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True)
class Change:
    rv: int
    resource: str
    type: str
    obj: Obj  # the object after the change (for DELETED: its last state)
    old: Obj | None  # the object before the change, so watchers can track selector moves

    @property
    def namespace(self) -> str:
        return str(self.obj.get("metadata", {}).get("namespace") or "")


# A drop sentinel puts watchers on notice to end their stream (fault injection).
DROP = object()


@dataclass(eq=False)
class Watcher:
    resource: str
    namespace: str | None
    queue: asyncio.Queue[Change | object] = field(default_factory=asyncio.Queue)

    def wants(self, change: Change) -> bool:
        return change.resource == self.resource and (
            self.namespace is None or change.namespace == self.namespace
        )


Listener = Callable[[Change], None]


class Store:
    """All objects of all resources, keyed by resource then (namespace, name)."""

    def __init__(self, history_limit: int = 10_000) -> None:
        # Real clusters start far above 1; starting higher makes accidental "rv == 1" logic
        # in clients visible.
        self.rv = 1000
        self.compacted_rv = self.rv
        self._history: deque[Change] = deque()
        self._history_limit = history_limit
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._watchers: set[Watcher] = set()
        self._listeners: list[Listener] = []

    # --- reads ------------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        obj = self._objects.get(resource, {}).get((namespace, name))
        return deep(obj) if obj is not None else None

    def list(self, resource: str, namespace: str | None = None) -> list[Obj]:
        items = self._objects.get(resource, {})
        keys = sorted(k for k in items if namespace is None or k[0] == namespace)
        return [deep(items[k]) for k in keys]

    def iter_keys(self, resource: str) -> Iterator[tuple[str, str]]:
        return iter(sorted(self._objects.get(resource, {})))

    # --- writes -----------------------------------------------------------------------

    def create(self, resource: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        key = (meta.get("namespace") or "", meta["name"])
        bucket = self._objects.setdefault(resource, {})
        if key in bucket:
            raise StoreError(409, "AlreadyExists")
        meta["uid"] = meta.get("uid") or new_uid()
        meta.setdefault("creationTimestamp", now_rfc3339())
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        bucket[key] = deep(obj)
        self._emit(Change(self.rv, resource, ADDED, deep(obj), None))
        return deep(obj)

    def update(self, resource: str, obj: Obj, expect_rv: str | None = None) -> Obj:
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        bucket = self._objects.get(resource, {})
        old = bucket.get(key)
        if old is None:
            raise StoreError(404, "NotFound")
        if expect_rv and expect_rv != old["metadata"]["resourceVersion"]:
            raise StoreError(409, "Conflict")
        if _same_content(old, obj):
            # etcd writes nothing for a no-op update, and so the rv does not move either.
            return deep(old)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        bucket[key] = deep(obj)
        self._emit(Change(self.rv, resource, MODIFIED, deep(obj), deep(old)))
        return deep(obj)

    def delete(self, resource: str, namespace: str, name: str) -> Obj:
        bucket = self._objects.get(resource, {})
        old = bucket.pop((namespace, name), None)
        if old is None:
            raise StoreError(404, "NotFound")
        self.rv += 1
        final = deep(old)
        final["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(Change(self.rv, resource, DELETED, deep(final), old))
        return final

    # --- watches ----------------------------------------------------------------------

    def check_rv(self, rv: int) -> None:
        if rv < self.compacted_rv:
            raise TooOld(rv, self.compacted_rv)

    def watch(
        self, resource: str, namespace: str | None, since: int | None
    ) -> tuple[Watcher, list[Change]]:
        """Subscribe, returning the watcher and the changes after ``since`` to replay first.

        Subscribing and snapshotting happen in one step on the loop thread, so no change can
        fall between the replayed backlog and the live queue.
        """
        if since is not None:
            self.check_rv(since)
        watcher = Watcher(resource, namespace)
        backlog = (
            [c for c in self._history if c.rv > since and watcher.wants(c)]
            if since is not None
            else []
        )
        self._watchers.add(watcher)
        return watcher, backlog

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def drop_watchers(self, resource: str | None = None) -> int:
        """End every open watch stream (or those of one resource), as an API server restart does."""
        dropped = 0
        for w in list(self._watchers):
            if resource is None or w.resource == resource:
                w.queue.put_nowait(DROP)
                self._watchers.discard(w)
                dropped += 1
        return dropped

    def expire(self) -> int:
        """Compact everything seen so far: any resourceVersion a client holds becomes too old.

        The revision moves on by one (as a compaction in a live cluster always follows
        some write), so even a client that saw the very latest version gets 410 Gone.
        """
        self.rv += 1
        self.compacted_rv = self.rv
        self._history.clear()
        return self.compacted_rv

    def add_listener(self, listener: Listener) -> None:
        """In-process subscribers (controllers); called synchronously for every change."""
        self._listeners.append(listener)

    def _emit(self, change: Change) -> None:
        self._history.append(change)
        while len(self._history) > self._history_limit:
            # A watch from before the oldest retained change could miss events: too old.
            self.compacted_rv = self._history.popleft().rv
        for w in list(self._watchers):
            if w.wants(change):
                w.queue.put_nowait(change)
        for listener in list(self._listeners):
            listener(change)


def _same_content(a: Obj, b: Obj) -> bool:
    def strip(o: Obj) -> Obj:
        c = dict(o)
        c["metadata"] = {k: v for k, v in o.get("metadata", {}).items() if k != "resourceVersion"}
        return c

    return strip(a) == strip(b)
