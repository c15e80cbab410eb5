"""One list-then-watch loop over pods, for the backend's discovery and the console alike.

In the style of kopf's watching: a list gives the complete set and a resourceVersion; a
watch from that version (with bookmarks, which keep the version fresh on a quiet
namespace) delivers the changes. A watch that ends (the server's timeout, a broken
connection) is resumed from the last version seen, which is cheap; ``410 Gone`` (the
version is too old, as an HTTP status or an ERROR event) and every ``resync`` period make
a new list, so a missed event cannot persist. Each list is yielded whole (:class:`Listed`:
"replace what you have"), each change as it comes (:class:`Changed`).

It is an async generator: nothing is read from the connection until the consumer asks
for the next item (back-pressure by construction), and closing or cancelling the
consumer closes the connection at once. Failures to list or to open a watch (the API
unreachable, RBAC) are raised to the consumer, which decides about backoff and what to
show; the next iteration starts with a fresh list.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from backend.kube.api import KubeApi
from backend.kube.errors import KubeError, KubeGone
from backend.kube.pods import Pod, parse_pod
from emulator.jsonlog import log

logger = logging.getLogger("backend.kube.watching")


@dataclass(frozen=True)
class Listed:
    """Every pod, after a (re)list: replace what you have."""

    pods: list[Pod]
    resource_version: str
    reason: str
    """start, resync or gone (410)."""
    took: float
    """Seconds the list call took."""


@dataclass(frozen=True)
class Changed:
    kind: str  # ADDED | MODIFIED | DELETED
    pod: Pod


async def list_and_watch(
    api: KubeApi,
    namespace: str,
    selector: str,
    *,
    resync: float = 300.0,
    listed: tuple[list[Pod], str] | None = None,
) -> AsyncIterator[Listed | Changed]:
    """Lists, then watches, until the consumer stops (see the module docstring).

    ``listed`` is a list the caller made a moment ago (pods and its resourceVersion): the
    loop starts from it instead of listing the same pods again. Should its version be too
    old to watch from, the watch's 410 makes a fresh list as always."""
    reason = "start"
    while True:
        started = time.perf_counter()
        if listed is not None:
            (pods, rv), listed = listed, None
        else:
            pods, rv = await api.list_pods(namespace, selector)
        yield Listed(pods, rv, reason, time.perf_counter() - started)
        listed_at = time.monotonic()
        reason = "resync"
        try:
            while (left := resync - (time.monotonic() - listed_at)) > 0.5:
                opened = time.monotonic()
                stream = await api.watch_pods(namespace, selector, rv, left)
                async for line in stream.lines():
                    change, rv = _event(line, namespace, rv)
                    if change is not None:
                        yield change
                if stream.broken is not None:
                    # Routine (an API server restart, an idle proxy): watch again; if the
                    # API is really gone, opening the next watch fails.
                    log(
                        logger,
                        logging.INFO,
                        "watch stream broke; watching again",
                        namespace=namespace,
                        error=str(stream.broken),
                    )
                if time.monotonic() - opened < 1.0:
                    # Do not spin when watches keep ending at once.
                    await asyncio.sleep(random.uniform(0.1, 0.3))  # noqa: S311
        except KubeGone:
            reason = "gone"
            log(logger, logging.INFO, "watch expired (410 Gone); relisting", namespace=namespace)


def _event(line: str, namespace: str, rv: str) -> tuple[Changed | None, str]:
    """One watch line: the change it carries (if any) and the newest version."""
    try:
        event = json.loads(line)
        kind = event["type"]
        obj = event["object"]
    except (ValueError, KeyError, TypeError):
        log(logger, logging.WARNING, "unparseable watch line", line=line[:200])
        return None, rv
    if kind == "ERROR":
        code, message = obj.get("code"), obj.get("message") or "watch error"
        if code == 410:
            raise KubeGone(f"watch pods in {namespace}", message, status=410)
        raise KubeError(f"watch pods in {namespace}", message, status=code)
    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
    if kind == "BOOKMARK" or kind not in ("ADDED", "MODIFIED", "DELETED"):
        return None, rv
    try:
        pod = parse_pod(obj, namespace)
    except (KeyError, TypeError, ValueError):
        return None, rv
    return Changed(kind, pod), rv
