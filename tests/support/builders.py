"""Deterministic wire-model builders (instances, health, fleet lists, console models).

The values are fixed (a frozen :data:`NOW`, fixed pids, sizes and addresses) so snapshot
tests draw the same screen every time; tests that need a difference ask for it by keyword.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from backend.models import (
    BreakerInfo,
    BreakerState,
    DiscoveryState,
    Instance,
    InstanceList,
    InstanceSource,
    InstanceStatus,
    PodCondition,
    PodFacts,
    RemediationInfo,
)
from emulator.models import (
    DiskFacts,
    EmulatorStatus,
    OverallStatus,
    QemuFacts,
    StreamFacts,
    StreamState,
    VideoFacts,
)
from locotui.data.fleet import FleetModel, Source
from locotui.data.link import LinkState

NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


def health(
    name: str,
    status: OverallStatus = OverallStatus.HEALTHY,
    fps: float = 25.0,
    reasons: Iterable[str] = (),
    restarts: int = 0,
) -> EmulatorStatus:
    return EmulatorStatus(
        instance=name,
        overall_status=status,
        qemu_healthy=status is OverallStatus.HEALTHY,
        reasons=list(reasons),
        timestamp=NOW,
        supervisor_uptime_seconds=3725.0,
        qemu=QemuFacts(
            pid=4242,
            running=True,
            qmp_status="running",
            qmp_latency_ms=0.8,
            uptime_seconds=3600.0,
            restarts=restarts,
            booted=True,
        ),
        video=VideoFacts(
            display_active=status is not OverallStatus.UNHEALTHY,
            estimated_frame_rate=fps,
            width=640,
            height=400,
            last_frame_age_seconds=0.04,
            frames_total=90_000,
            vnc_connected=True,
        ),
        disk=DiskFacts(
            image="/images/win98.qcow2",
            format="qcow2",
            virtual_size=2 << 30,
            actual_size=700 << 20,
            overlay=f"/state/{name}/overlay.qcow2",
            overlay_size=48 << 20,
        ),
    )


def instance(
    name: str,
    status: InstanceStatus = InstanceStatus.HEALTHY,
    *,
    fps: float | None = 25.0,
    reason: str | None = None,
    stale: bool = False,
    breaker: BreakerState = BreakerState.CLOSED,
    restarts: int = 0,
    node: str | None = "node-a",
    probed: bool = True,
    started: datetime | None = None,
    source: InstanceSource = InstanceSource.KUBERNETES,
) -> Instance:
    """An instance as the backend reports it; ``source`` other than Kubernetes has no pod."""
    emu_status = {
        InstanceStatus.HEALTHY: OverallStatus.HEALTHY,
        InstanceStatus.DEGRADED: OverallStatus.DEGRADED,
        InstanceStatus.UNHEALTHY: OverallStatus.UNHEALTHY,
        InstanceStatus.STARTING: OverallStatus.STARTING,
        InstanceStatus.UNKNOWN: OverallStatus.HEALTHY,
    }[status]
    started = started or NOW - timedelta(hours=2, minutes=13)
    return Instance(
        name=name,
        source=source,
        status=status,
        status_reason=reason,
        pod=PodFacts(
            phase="Running",
            ready=status is not InstanceStatus.STARTING,
            restarts=restarts,
            node=node,
            ip="10.1.0.7",
            start_time=started,
            created_at=started,
            uid=f"uid-{name}",
            conditions=[PodCondition(type="Ready", status="True", last_transition_time=started)],
        )
        if source is InstanceSource.KUBERNETES
        else None,
        health=health(name, emu_status, fps or 0.0, [reason] if reason else []) if probed else None,
        fps=fps,
        breaker=BreakerInfo(
            state=breaker,
            failures=3 if breaker is BreakerState.OPEN else 0,
            since=NOW - timedelta(minutes=5),
            retry_at=NOW + timedelta(seconds=4) if breaker is BreakerState.OPEN else None,
        ),
        stale=stale,
        stale_since=NOW - timedelta(seconds=42) if stale else None,
        stale_reason="health probe failing" if stale else None,
        last_probe_at=NOW if probed else None,
        last_ok_at=NOW if probed else None,
        health_url=f"http://10.1.0.7:8080/{name}",
        logs_available=True,
    )


def fleet_list(items: list[Instance], revision: int = 1, ok: bool = True) -> InstanceList:
    """The fleet as ``GET /api/instances`` returns it."""
    return InstanceList(
        items=items,
        generated_at=NOW,
        revision=revision,
        discovery=DiscoveryState(source=InstanceSource.KUBERNETES, ok=ok, synced=True),
    )


def on_rung(inst: Instance, rung: str, seconds_ago: float = 40.0) -> Instance:
    """``inst`` as the automatic recovery has it: ``reset``, ``restart`` (acted, watching)
    or ``needs_person`` (gave up), since ``seconds_ago`` before :data:`NOW`."""
    info = RemediationInfo(
        rung=rung,  # type: ignore[arg-type]
        since=NOW - timedelta(seconds=seconds_ago),
        reason=inst.status_reason,
        actions_last_hour=1 if rung == "reset" else 2,
    )
    return inst.model_copy(update={"remediation": info})


def with_stream(inst: Instance, state: str = "playing", **facts: object) -> Instance:
    """``inst`` with a live video stream in its health (``state`` and any other facts)."""
    assert inst.health is not None
    stream = StreamFacts(
        state=StreamState(state),
        pipeline_state="PLAYING" if state == "playing" else "NULL",
        width=1024,
        height=768,
        max_fps=30,
        frames_per_second=24.0 if state == "playing" else None,
        bitrate_kbps=1480.0 if state == "playing" else None,
        frames_out=43200,
        last_frame_age_seconds=0.04 if state == "playing" else 12.0,
        dropped={"convert": 0, "scale": 0, "encode": 37, "rtp-out": 0},
        capped=120,
        destination="10.0.0.9:5004",
        viewers=1 if state == "playing" else 0,
    ).model_copy(update=facts)
    health = inst.health.model_copy(update={"stream": stream})
    return inst.model_copy(update={"health": health})


def demo_instances(n: int = 9) -> list[Instance]:
    """A fleet with one of everything an operator must tell apart."""
    out = []
    for i in range(n):
        name = f"loco-{i}"
        if i == 2:
            out.append(
                instance(
                    name,
                    InstanceStatus.DEGRADED,
                    fps=4.0,
                    reason="frame rate low: 4.0 fps",
                    restarts=1,
                )
            )
        elif i == 4:
            out.append(
                instance(
                    name,
                    InstanceStatus.UNHEALTHY,
                    fps=None,
                    reason="supervisor unreachable, circuit open",
                    breaker=BreakerState.OPEN,
                    stale=True,
                )
            )
        elif i == 6:
            out.append(
                instance(
                    name, InstanceStatus.STARTING, fps=None, reason="pod not Ready", probed=False
                )
            )
        else:
            out.append(instance(name, fps=24.0 + i % 3, node=f"node-{'ab'[i % 2]}"))
    # Two streams: one live, one failing and restarting.
    out[0] = with_stream(out[0])
    if n > 3:
        out[3] = with_stream(
            out[3],
            "restarting",
            restarts=3,
            last_error="capture: Error on setup VNC connection to host 127.0.0.1 on port 5900",
        )
    return out


def frozen_model(instances: list[Instance], mono: float = 1000.0) -> FleetModel:
    """A fleet model with a frozen clock, filled as if the backend had sent a snapshot,
    with a few seconds of fps history so sparklines have something to draw."""
    wall = NOW.timestamp()
    model = FleetModel(clock=lambda: mono, wall_clock=lambda: wall)
    fleet = InstanceList(
        items=instances,
        generated_at=NOW,
        revision=7,
        discovery=DiscoveryState(
            source=InstanceSource.KUBERNETES, ok=True, synced=True, last_sync=NOW, namespace="loco"
        ),
    )
    model.apply_snapshot(fleet)
    for entry in model.entries.values():
        entry.fps_history.clear()
        base = entry.fps
        for k in range(12):
            value = None if base is None else max(0.0, base - (k % 4) * 1.5)
            entry.fps_history.append((wall - (12 - k), value))
    model.set_link(Source.BACKEND, LinkState.CONNECTED, detail="http://backend:8081")
    model.set_link(Source.KUBERNETES, LinkState.IDLE, detail="standby")
    model.links[Source.BACKEND].last_data_at = mono
    return model


def png(width: int = 64, height: int = 40) -> bytes:
    """A fixed, colourful picture (deterministic) as PNG bytes."""
    import io

    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = (x * 255 // max(1, width - 1)).astype(np.uint8)
    img[..., 1] = (y * 255 // max(1, height - 1)).astype(np.uint8)
    img[..., 2] = 128
    img[height // 3 : height // 2, width // 4 : width // 2] = (255, 255, 255)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()
