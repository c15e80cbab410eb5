"""Which backend replica acts: leader election through a ``coordination.k8s.io`` Lease.

The election itself is the Kubernetes client's (``kubernetes.aio.leaderelection``: the
algorithm client-go's controllers use — acquire, renew every ``retry_period``, give up
after ``renew_deadline`` without a renewal, others take over ``lease_duration`` after the
last renewal they saw). Its lock is ours (:class:`KubeLeaseLock`) so every call goes
through :class:`~backend.kube.api.KubeApi` — bounded answers, the API breaker, and the
RBAC the chart grants, derived from the calls — and so the Lease also carries what the
leader must hand on: the remediation ladder's open cases, in the annotation
:data:`STATE_ANNOTATION`, written with every renewal and right after every action. A new
leader adopts them before it first acts, so no action is taken twice.

:meth:`LeaseElection.leading` is false from the moment a renewal shows another holder, or
when the last successful renewal is older than ``renew_deadline`` — before any other
replica can take over (that needs ``lease_duration``, which is longer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes.aio.client.exceptions import ApiException
from kubernetes.aio.leaderelection.electionconfig import Config
from kubernetes.aio.leaderelection.leaderelection import LeaderElection
from kubernetes.aio.leaderelection.leaderelectionrecord import LeaderElectionRecord
from kubernetes.aio.leaderelection.resourcelock.baselock import BaseLock

from backend.kube.api import KubeApi
from backend.kube.errors import KubeError
from emulator.jsonlog import log

logger = logging.getLogger("backend.lease")

STATE_ANNOTATION = "lego-loco.io/remediation"
# A Lease is an object like any other: its annotations share the 256 KiB limit. The
# open cases of a thousand instances fit in a few tens of KiB.
STATE_LIMIT = 200 * 1024


def timings(lease_duration: float) -> tuple[float, float, float]:
    """(lease_duration, renew_deadline, retry_period) in client-go's proportions
    (15 s / 10 s / 2 s by default)."""
    if lease_duration < 3:
        raise ValueError("the lease duration must be at least 3 s")
    return lease_duration, lease_duration * 2 / 3, max(1.0, lease_duration / 7.5)


def _micro_time(at: float) -> str:
    """Kubernetes' MicroTime (RFC 3339 with microseconds, UTC)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _not_found() -> ApiException:
    # The election tells "absent, create it" from "broken, retry" by the body's code.
    return ApiException(status=404, reason="Not Found", body='{"code": 404}')


def _failed(exc: KubeError) -> ApiException:
    return ApiException(
        status=exc.status or 503,
        reason=str(exc),
        body=json.dumps({"code": exc.status or 503, "message": str(exc)}),
    )


class KubeLeaseLock(BaseLock):
    """A Lease lock whose object also carries the leader's hand-over state."""

    def __init__(
        self,
        api: KubeApi,
        name: str,
        namespace: str,
        identity: str,
        *,
        lease_duration: float,
        state: Callable[[], dict[str, Any]],
        adopt: Callable[[dict[str, Any]], None],
    ) -> None:
        super().__init__(name, namespace, identity)
        self.api = api
        self.lease_duration = lease_duration
        self.state = state
        self.adopt = adopt
        self.holder: str | None = None
        """The holder the last read showed."""
        self.holding = False
        """This process holds the lease (it wrote it as holder and nobody since)."""
        self.renewed_at: float | None = None
        """Monotonic time of this replica's last successful write as holder."""
        self.seen: Callable[[dict[str, Any]], None] | None = None
        """Called with the annotations of every read (shared settings such as a pause)."""
        self._lease: dict[str, Any] | None = None
        self._writing = asyncio.Lock()

    # ------------------------------------------------------------------ BaseLock
    async def get(
        self, name: str, namespace: str
    ) -> tuple[bool, LeaderElectionRecord] | tuple[bool, Exception] | tuple[bool, None]:
        try:
            lease = await self.api.read_lease(namespace, name)
        except KubeError as exc:
            return False, _not_found() if exc.status == 404 else _failed(exc)
        self._lease = lease
        if self.seen is not None:
            self.seen((lease.get("metadata") or {}).get("annotations") or {})
        spec = lease.get("spec") or {}
        self.holder = spec.get("holderIdentity")
        if self.holder != self.identity:
            self.holding = False
        return True, LeaderElectionRecord(
            self.holder,
            str(spec["leaseDurationSeconds"]) if spec.get("leaseDurationSeconds") else None,
            spec.get("acquireTime"),
            spec.get("renewTime"),
        )

    async def create(
        self, name: str, namespace: str, election_record: LeaderElectionRecord
    ) -> bool:
        now = _micro_time(time.time())
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        self._with_state(lease)
        async with self._writing:
            try:
                self._lease = await self.api.create_lease(namespace, lease)
            except KubeError as exc:
                log(logger, logging.WARNING, "could not create the lease", error=str(exc))
                return False
        self._renewed()
        return True

    async def update(self, name: str, namespace: str, updated_record: LeaderElectionRecord) -> bool:
        async with self._writing:
            if self._lease is None:
                return False
            lease = json.loads(json.dumps(self._lease))
            spec = lease.setdefault("spec", {})
            # Also when the lease names this identity but this process has not held it
            # (a restarted container keeps its pod's name): adopt what was recorded.
            taking_over = not self.holding or spec.get("holderIdentity") != self.identity
            now = _micro_time(time.time())
            if taking_over:
                # Before the state is written over: the previous leader's open cases.
                self._adopt_from(lease)
                spec["acquireTime"] = now
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec["holderIdentity"] = self.identity
            spec["leaseDurationSeconds"] = int(self.lease_duration)
            spec["renewTime"] = now
            self._with_state(lease)
            try:
                self._lease = await self.api.replace_lease(namespace, name, lease)
            except KubeError as exc:
                # A 409 is another replica's write in between: the election retries.
                if exc.status != 409:
                    log(logger, logging.WARNING, "could not renew the lease", error=str(exc))
                return False
        self.holder = self.identity
        self._renewed()
        return True

    # ------------------------------------------------------------------ hand-over
    async def record_now(self) -> bool:
        """Writes the current state at once (after an action), when still the holder."""
        async with self._writing:
            lease = self._lease
            if lease is None or not self.holding:
                return False
            lease = json.loads(json.dumps(lease))
            self._with_state(lease)
            try:
                self._lease = await self.api.replace_lease(self.namespace, self.name, lease)
            except KubeError as exc:
                log(
                    logger,
                    logging.WARNING,
                    "could not record the remediation state",
                    error=str(exc),
                )
                return False
            return True

    async def annotate(self, key: str, value: str | None, attempts: int = 5) -> None:
        """Sets (or with None removes) one annotation of the Lease, whoever holds it:
        read, change, compare-and-swap, again on a conflict. Raises :class:`KubeError`."""
        for attempt in range(attempts):
            try:
                lease = await self.api.read_lease(self.namespace, self.name)
            except KubeError as exc:
                if exc.status == 404:
                    raise KubeError(
                        f"lease {self.name}",
                        "no backend replica has created it yet (the election starts with "
                        "the backend); try again in a few seconds",
                        status=404,
                    ) from None
                raise
            annotations = (lease.setdefault("metadata", {}).get("annotations")) or {}
            if value is None:
                annotations.pop(key, None)
            else:
                annotations[key] = value
            lease["metadata"]["annotations"] = annotations
            async with self._writing:
                try:
                    self._lease = await self.api.replace_lease(self.namespace, self.name, lease)
                    return
                except KubeError as exc:
                    if exc.status != 409 or attempt == attempts - 1:
                        raise

    async def release(self) -> None:
        """Hands the lease back on shutdown (with the state), so a successor need not
        wait out the lease duration."""
        async with self._writing:
            lease = self._lease
            if lease is None or not self.holding:
                return
            lease = json.loads(json.dumps(lease))
            spec = lease.setdefault("spec", {})
            spec["holderIdentity"] = None
            spec["leaseDurationSeconds"] = 1
            spec["renewTime"] = _micro_time(time.time())
            self._with_state(lease)
            try:
                self._lease = await self.api.replace_lease(self.namespace, self.name, lease)
                log(logger, logging.INFO, "lease released", lease=self.name)
            except KubeError as exc:
                log(logger, logging.WARNING, "could not release the lease", error=str(exc))
            self.holder, self.holding = None, False

    def _with_state(self, lease: dict[str, Any]) -> None:
        text = json.dumps(self.state(), separators=(",", ":"), sort_keys=True)
        if len(text) > STATE_LIMIT:
            log(
                logger,
                logging.WARNING,
                "remediation state too large for the lease; not handed on",
                size=len(text),
            )
            text = "{}"
        annotations = lease.setdefault("metadata", {}).setdefault("annotations", None) or {}
        annotations[STATE_ANNOTATION] = text
        lease["metadata"]["annotations"] = annotations

    def _adopt_from(self, lease: dict[str, Any]) -> None:
        text = ((lease.get("metadata") or {}).get("annotations") or {}).get(STATE_ANNOTATION)
        if not text:
            return
        try:
            state = json.loads(text)
            if not isinstance(state, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            log(
                logger, logging.WARNING, "the previous leader's state is unreadable", error=str(exc)
            )
            return
        self.adopt(state)

    def _renewed(self) -> None:
        self.holding = True
        self.renewed_at = time.monotonic()


class LeaseElection:
    """Runs the election for as long as the backend runs; :meth:`leading` says whether
    this replica may act now."""

    def __init__(
        self, lock: KubeLeaseLock, on_change: Callable[[bool], None] | None = None
    ) -> None:
        self.lease_duration, self.renew_deadline, self.retry_period = timings(lock.lease_duration)
        self.identity = lock.identity
        self.lock = lock
        self.on_change = on_change
        self._elected = False
        self._task: asyncio.Task[None] | None = None

    def leading(self) -> bool:
        lock = self.lock
        if not self._elected or not lock.holding or lock.renewed_at is None:
            return False
        return time.monotonic() - lock.renewed_at < self.renew_deadline

    @property
    def holder(self) -> str | None:
        return self.lock.holder

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lease")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._elected:
            self._set(False)
            await self.lock.release()

    async def record_now(self) -> None:
        if self.leading():
            await self.lock.record_now()

    async def _run(self) -> None:
        while True:
            config = Config(
                self.lock,
                lease_duration=self.lease_duration,
                renew_deadline=self.renew_deadline,
                retry_period=self.retry_period,
                onstarted_leading=self._started,
                onstopped_leading=self._stopped,
            )
            try:
                await LeaderElection(config).run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The election's own loop has no guard; one bad answer must not end it.
                log(logger, logging.ERROR, "leader election failed; retrying", error=repr(exc))
                self._set(False)
                await asyncio.sleep(self.retry_period)

    async def _started(self) -> None:
        self._set(True)
        # The election cancels this coroutine when the lease is lost.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()

    async def _stopped(self) -> None:
        self.lock.holding = False
        self._set(False)

    def _set(self, elected: bool) -> None:
        if elected == self._elected:
            return
        self._elected = elected
        log(
            logger,
            logging.INFO if elected else logging.WARNING,
            "leading: this replica acts" if elected else "not leading: this replica only serves",
            identity=self.identity,
            lease=self.lock.name,
        )
        if self.on_change is not None:
            self.on_change(elected)
