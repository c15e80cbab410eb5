"""fps and status history: from Prometheus when configured, else from this session.

:class:`PrometheusHistory` queries through prometheus-api-client (synchronous, so every
query runs in a worker thread). Metrics, in order of preference:

* fps: ``loco_emulator_fps`` (each supervisor's own gauge), else
  ``loco_backend_instance_fps`` (the backend's per-instance gauge);
* status: ``loco_emulator_health_state`` (a StateSet: one series per state, 1 when
  current).

The instance name is taken from the label ``exported_instance`` (what Prometheus renames
the metric's own ``instance`` label to unless ``honor_labels`` is set), else ``pod``,
else ``instance``.

:class:`SessionHistory` answers the same questions from the fleet model's ring buffers
(what this console has seen since it started). :func:`make_history` picks one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from backend.models import InstanceStatus
from locotui.data.errors import BadResponse, DataError, ServerError, Unreachable
from locotui.data.fleetstats import burn_rate

__all__ = [
    "FpsHistory",
    "HistoryProvider",
    "PreferPrometheus",
    "PrometheusHistory",
    "SessionHistory",
    "StatusHistory",
    "make_history",
]

FpsHistory = dict[str, list[tuple[float, float]]]
"""instance → [(unix time, fps)], oldest first."""
StatusHistory = dict[str, list[tuple[float, InstanceStatus]]]
"""instance → [(unix time, status)] at each change, oldest first."""

FPS_METRICS = ("loco_emulator_fps", "loco_backend_instance_fps")
STATE_METRIC = "loco_emulator_health_state"
NAME_LABELS = ("exported_instance", "pod", "instance")
SOURCE = "prometheus"
SLO_WINDOWS: tuple[tuple[str, float], ...] = (("1h", 3600.0), ("6h", 21600.0))


def slo_query(target_fps: float, window: float, step: float) -> str:
    """PromQL: the mean over ``window`` of the share of instances at or above the target
    frame rate (``or vector(0)``: none at target is 0, not "no data"). Vector division,
    not ``scalar()``: a step before the backend was scraped has no sample (and the mean
    skips it) rather than NaN (which would poison the mean)."""
    good = f"(count(loco_backend_instance_fps >= {target_fps:g}) or vector(0))"
    share = f"{good} / sum(loco_backend_instances)"
    return f"avg_over_time(({share})[{int(window)}s:{max(1, int(step))}s])"


class HistoryProvider(Protocol):
    name: str

    async def fps(
        self, instances: Sequence[str] | None = None, window: float = 3600, step: float = 15
    ) -> FpsHistory: ...

    async def status(
        self, instances: Sequence[str] | None = None, window: float = 3600, step: float = 15
    ) -> StatusHistory: ...


def _name(labels: dict[str, str]) -> str | None:
    for key in NAME_LABELS:
        if labels.get(key):
            return labels[key]
    return None


class PrometheusHistory:
    name = "prometheus"

    def __init__(
        self, url: str, *, timeout: float = 10.0, fps_metrics: Sequence[str] = FPS_METRICS
    ):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.fps_metrics = tuple(fps_metrics)
        self._prom: Any = None

    def _client(self) -> Any:
        if self._prom is None:
            from prometheus_api_client import PrometheusConnect

            # No retries: a dead Prometheus should be reported at once, not after
            # urllib3's retry schedule; the history view simply asks again later.
            from urllib3.util.retry import Retry

            self._prom = PrometheusConnect(
                url=self.url, disable_ssl=False, timeout=self.timeout, retry=Retry(total=0)
            )
        return self._prom

    def _call(self, query: Callable[[Any], Any]) -> Any:
        """Runs ``query(client)`` (in a worker thread) with every failure as a DataError."""
        from prometheus_api_client.exceptions import PrometheusApiClientException
        from requests.exceptions import ConnectionError as RequestsConnectionError
        from requests.exceptions import RequestException

        try:
            return query(self._client())
        except RequestsConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else str(exc)[:200]
            raise Unreachable(
                f"Prometheus {self.url} unreachable: {reason}", source=SOURCE
            ) from None
        except PrometheusApiClientException as exc:
            raise ServerError(f"Prometheus query failed: {str(exc)[:300]}", source=SOURCE) from None
        except RequestException as exc:
            raise Unreachable(f"Prometheus {self.url}: {str(exc)[:200]}", source=SOURCE) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise BadResponse(
                f"Prometheus sent an unexpected answer: {exc}", source=SOURCE
            ) from None

    def _query_range(self, query: str, window: float, step: float) -> list[dict[str, Any]]:
        from datetime import UTC, datetime, timedelta

        end = datetime.now(UTC)
        start = end - timedelta(seconds=window)
        result: list[dict[str, Any]] = self._call(
            lambda client: client.custom_query_range(
                query,
                start_time=start,
                end_time=end,
                step=f"{max(1, int(step))}s",
                params={"timeout": f"{max(1, int(self.timeout))}s"},
            )
        )
        return result

    def _query(self, query: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            lambda client: client.custom_query(
                query, params={"timeout": f"{max(1, int(self.timeout))}s"}
            )
        )
        return result

    async def _range(self, query: str, window: float, step: float) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._query_range, query, window, step)

    async def fps(
        self, instances: Sequence[str] | None = None, window: float = 3600, step: float = 15
    ) -> FpsHistory:
        """fps per instance over the last ``window`` seconds, one point per ``step``."""
        wanted = set(instances) if instances else None
        for metric in self.fps_metrics:
            series = await self._range(metric, window, step)
            out: FpsHistory = {}
            for s in series:
                name = _name(s.get("metric") or {})
                if name is None or (wanted is not None and name not in wanted):
                    continue
                points = out.setdefault(name, [])
                for ts, value in s.get("values") or []:
                    try:
                        points.append((float(ts), float(value)))
                    except (TypeError, ValueError):
                        continue
            if out:
                for pts in out.values():
                    pts.sort()
                return out
        return {}

    async def status(
        self, instances: Sequence[str] | None = None, window: float = 3600, step: float = 15
    ) -> StatusHistory:
        """Status changes per instance (from the supervisors' health StateSet)."""
        wanted = set(instances) if instances else None
        series = await self._range(f"{STATE_METRIC} == 1", window, step)
        samples: dict[str, list[tuple[float, InstanceStatus]]] = {}
        for s in series:
            labels = s.get("metric") or {}
            name = _name(labels)
            try:
                state = InstanceStatus(labels.get(STATE_METRIC, ""))
            except ValueError:
                continue
            if name is None or (wanted is not None and name not in wanted):
                continue
            for ts, _ in s.get("values") or []:
                samples.setdefault(name, []).append((float(ts), state))
        out: StatusHistory = {}
        for name, pts in samples.items():
            pts.sort(key=lambda p: p[0])
            changes: list[tuple[float, InstanceStatus]] = []
            for ts, st in pts:
                if not changes or changes[-1][1] is not st:
                    changes.append((ts, st))
            out[name] = changes
        return out

    async def slo_burn(
        self,
        target_fps: float,
        objective: float,
        windows: Sequence[tuple[str, float]] = SLO_WINDOWS,
        step: float = 30,
    ) -> dict[str, float | None]:
        """The SLO's burn rate over each window (label → burn; None without data).

        The SLI at each ``step`` is the share of the backend's instances whose frame rate
        gauge is at or above ``target_fps`` (the gauge is absent while an instance's
        health is stale, so an unreachable instance counts as bad), averaged over the
        window.
        """
        out: dict[str, float | None] = {}
        for label, seconds in windows:
            series = await asyncio.to_thread(self._query, slo_query(target_fps, seconds, step))
            try:
                sli = float(series[0]["value"][1]) if series else None
            except (KeyError, IndexError, TypeError, ValueError):
                sli = None
            out[label] = None if sli is None or sli != sli else burn_rate(sli, objective)
        return out

    async def check(self) -> None:
        """Raises a DataError unless Prometheus answers a trivial query."""
        await self._range("vector(1)", 60, 60)


class SessionHistory:
    """History from what this session has seen (the fleet model's ring buffers)."""

    name = "session"

    def __init__(self, fleet: Any) -> None:
        self.fleet = fleet

    def _entries(self, instances: Sequence[str] | None) -> list[Any]:
        names = instances if instances else list(self.fleet.entries)
        return [e for n in names if (e := self.fleet.get(n)) is not None]

    async def fps(
        self, instances: Sequence[str] | None = None, window: float = 3600, step: float = 15
    ) -> FpsHistory:
        since = time.time() - window
        return {
            e.name: [(t, v) for t, v in e.fps_history if v is not None and t >= since]
            for e in self._entries(instances)
        }

    async def status(
        self, instances: Sequence[str] | None = None, window: float = 3600, step: float = 15
    ) -> StatusHistory:
        since = time.time() - window
        out: StatusHistory = {}
        for e in self._entries(instances):
            pts = list(e.status_history)
            # Keep the state that was current at the window's start.
            before = [p for p in pts if p[0] < since]
            inside = [p for p in pts if p[0] >= since]
            out[e.name] = ([(since, before[-1][1])] if before else []) + inside
        return out


class PreferPrometheus:
    """Prometheus first; when it fails, the session's own history (never an empty view
    because Prometheus is down). ``name`` says which one answered last, ``last_error``
    why Prometheus did not, and the fleet's PROMETHEUS link shows the state."""

    def __init__(self, prometheus: PrometheusHistory, session: SessionHistory) -> None:
        self.prometheus = prometheus
        self.session = session
        self.name = "prometheus"
        self.last_error: str | None = None

    def _link(self, error: DataError | None) -> None:
        from locotui.data.fleet import Source
        from locotui.data.link import LinkState

        fleet = self.session.fleet
        if error is None:
            self.name, self.last_error = "prometheus", None
            fleet.set_link(Source.PROMETHEUS, LinkState.CONNECTED, detail=self.prometheus.url)
        else:
            self.name, self.last_error = "session", str(error)
            fleet.set_link(
                Source.PROMETHEUS, LinkState.FAILED, error=str(error), detail=self.prometheus.url
            )

    async def check(self) -> None:
        """Raises a DataError unless Prometheus answers (for a link-state loop)."""
        await self.prometheus.check()

    async def fps(
        self, instances: Sequence[str] | None = None, window: float = 3600, step: float = 15
    ) -> FpsHistory:
        try:
            out = await self.prometheus.fps(instances, window, step)
        except DataError as exc:
            self._link(exc)
            return await self.session.fps(instances, window, step)
        self._link(None)
        return out

    async def status(
        self, instances: Sequence[str] | None = None, window: float = 3600, step: float = 15
    ) -> StatusHistory:
        try:
            out = await self.prometheus.status(instances, window, step)
        except DataError as exc:
            self._link(exc)
            return await self.session.status(instances, window, step)
        self._link(None)
        return out


def make_history(prometheus_url: str | None, fleet: Any) -> HistoryProvider:
    """Prometheus (falling back to the session's history while it fails) when a URL is
    configured, else the session's own history."""
    if prometheus_url:
        return PreferPrometheus(PrometheusHistory(prometheus_url), SessionHistory(fleet))
    return SessionHistory(fleet)
