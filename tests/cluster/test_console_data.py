"""The console's Kubernetes side against the real API server, with the operator's (or the
viewer's) own credentials: KubeClient, the actions, the subcommands and the views that
fall back to Kubernetes when the backend is gone. (Faults a real API server cannot be
made to produce on demand stay on the simulator: tests/locotui/test_data_kube.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backend.models import InstanceStatus
from locotui.commands import restart as restart_cmd
from locotui.config import load_settings
from locotui.data.actions import ActionKind, ActionRunner, AuditLog, Phase, Progress
from locotui.data.backend_client import BackendClient
from locotui.data.errors import Forbidden, NotFound, Unreachable
from locotui.data.feeds import FleetFeeds
from locotui.data.fleet import FleetModel, Origin, Source
from locotui.data.kube_client import (
    RESTARTED_AT,
    KubeClient,
    KubeConfigError,
    PodChange,
    PodSnapshot,
)
from locotui.data.link import Backoff, LinkChange, LinkState
from locotui.data.logs import LogBuffer, LogTail, kube_source
from locotui.ui.app import LocoApp
from locotui.ui.screens.confirm import ActionScreen
from locotui.ui.screens.logs import LogScreen
from tests.cluster.fleet import CLUSTER, OPERATOR, STATEFULSET, VIEWER, Fleet, api_server_down
from tests.support.backend import CONSOLE_DATA_ARGS, BackendProcess
from tests.support.console import clean_env, locotui, screen_text, ui_settings
from tests.support.fake_emulator import FakeEmulators, write_static
from tests.support.ports import free_port
from tests.support.waiting import Collector, eventually, poll_until, wait_for

pytestmark = CLUSTER

PODS = [f"{STATEFULSET}-{i}" for i in range(3)]


@pytest.fixture
async def kube(fleet: Fleet) -> AsyncIterator[KubeClient]:
    client = await KubeClient.aconnect(fleet.kubeconfig_for(OPERATOR))
    yield client
    await client.aclose()


def dead_backend() -> str:
    return f"http://127.0.0.1:{free_port()}"


# ------------------------------------------------------------------------------ KubeClient


async def test_connect_like_kubectl(fleet: Fleet, tmp_path: Path) -> None:
    path = fleet.kubeconfig_for(OPERATOR)
    server = fleet.cluster.info().server  # type: ignore[union-attr]
    kube = await KubeClient.aconnect(path)
    assert (kube.namespace, kube.namespace_source) == (fleet.namespace, "kubeconfig")
    assert kube.server == server
    other = await KubeClient.aconnect(path, namespace="elsewhere")
    assert (other.namespace, other.namespace_source) == ("elsewhere", "flag")
    # $KUBECONFIG is honoured like kubectl does.
    env_kube = await asyncio.to_thread(KubeClient.connect, env={"KUBECONFIG": str(path)})
    assert env_kube.server == server
    with pytest.raises(KubeConfigError, match=r"no context named 'prod'.*lego-loco-cluster"):
        await KubeClient.aconnect(path, context="prod")
    with pytest.raises(KubeConfigError, match="not found"):
        await KubeClient.aconnect(tmp_path / "nope")
    for k in (kube, other, env_kube):
        await k.aclose()


async def test_list_and_watch_pods(fleet: Fleet, kube: KubeClient) -> None:
    snap = await kube.list_pods()
    assert [p.name for p in snap.pods] == PODS
    assert all(p.owner_kind == "StatefulSet" and p.owner_name == STATEFULSET for p in snap.pods)
    assert all(p.facts.ready and p.facts.node for p in snap.pods)

    watch = Collector(kube.watch_pods(backoff=Backoff(0.05, 0.5)))
    try:
        first = await watch.wait(lambda i: isinstance(i, PodSnapshot), "snapshot")
        assert len(first.pods) == 3
        fleet.scale(4)
        added = await watch.wait(
            lambda i: isinstance(i, PodChange) and i.kind == "ADDED", "ADDED pod 3", 60
        )
        assert added.pod.name == f"{STATEFULSET}-3"
        fleet.scale(3)
        await watch.wait(
            lambda i: (
                isinstance(i, PodChange)
                and i.kind == "DELETED"
                and i.pod.name == f"{STATEFULSET}-3"
            ),
            "DELETED",
            60,
        )
        # An outage: RECONNECTING with the reason, then back.
        with api_server_down(fleet):
            lost = await watch.wait(
                lambda i: isinstance(i, LinkChange) and i.state is LinkState.RECONNECTING,
                "reconnecting",
                60,
            )
            assert "unreachable" in (lost.error or "")
            n = len(watch.items)
        await eventually(
            lambda: any(
                isinstance(i, LinkChange) and i.state is LinkState.CONNECTED
                for i in watch.items[n:]
            ),
            90,
            "reconnected",
        )
    finally:
        await watch.close()
        fleet.scale(3)


async def test_pod_logs_tail_timestamps_follow_previous_since(
    fleet: Fleet, kube: KubeClient
) -> None:
    name = PODS[0]
    lines = [ln async for ln in kube.pod_logs(name, tail=2)]
    assert len(lines) == 2 and all(json.loads(ln)["level"] for ln in lines)
    stamped = [ln async for ln in kube.pod_logs(name, tail=1, timestamps=True)]
    assert stamped[0][:4].isdigit() and stamped[0].endswith(lines[-1])

    # Follow: a line the supervisor writes later (a soft reset, through the backend) arrives.
    follow = kube.pod_logs(name, tail=1, follow=True)
    async with asyncio.timeout(60):
        assert await anext(follow) == lines[-1]
        async with BackendClient(fleet.service_url(), token=fleet.control_token()) as backend:
            await backend.reset(name)
        while json.loads(line := await anext(follow)).get("message") != "reset":
            pass
    assert json.loads(line)["context"]["result"] == "ok"
    await follow.aclose()

    # --previous: the container crashed and was restarted in place.
    before = [ln async for ln in kube.pod_logs(name)]
    await asyncio.to_thread(fleet.crash, name)
    previous = [ln async for ln in kube.pod_logs(name, previous=True)]
    assert previous[: len(before)] == before, "the crashed container's log"
    current = [ln async for ln in kube.pod_logs(name)]
    assert not set(current) & set(before), "a new container starts a new log"

    # sinceSeconds: only lines of the last few seconds.
    cutoff = datetime.now(UTC) - timedelta(seconds=3)
    recent = [ln async for ln in kube.pod_logs(name, since_seconds=3, timestamps=True)]
    for ln in recent:
        when = datetime.fromisoformat(ln.split(" ", 1)[0].replace("Z", "+00:00"))
        assert when >= cutoff - timedelta(seconds=1), ln

    with pytest.raises(NotFound, match="ghost"):
        _ = [ln async for ln in kube.pod_logs("ghost")]


async def test_delete_pod_is_recreated_by_the_statefulset(fleet: Fleet, kube: KubeClient) -> None:
    before = await kube.get_pod(PODS[1])
    uid = await kube.delete_pod(PODS[1])
    assert uid == before.uid
    async with asyncio.timeout(120):
        new = await kube.wait_pod_replaced(PODS[1], uid, poll=0.5)
    assert new.uid != uid and new.facts.ready
    events = await kube.pod_events(PODS[1])
    assert {"Scheduled", "Started"} <= {e.reason for e in events}
    assert all(e.last_seen is not None for e in events)
    with pytest.raises(NotFound, match='pods "ghost" not found'):
        await kube.delete_pod("ghost")


async def test_read_only_credentials_get_typed_rbac_denials(fleet: Fleet) -> None:
    viewer = await KubeClient.aconnect(fleet.kubeconfig_for(VIEWER))
    try:
        assert len((await viewer.list_pods()).pods) == 3  # reading is allowed
        with pytest.raises(Forbidden) as err:
            await viewer.delete_pod(PODS[0])
        assert err.value.source == "kubernetes" and err.value.status == 403
        assert str(err.value) == (
            f'delete pod {PODS[0]}: RBAC denied: pods "{PODS[0]}" is forbidden: '
            f'User "{VIEWER}" cannot delete resource "pods" in API group "" in the '
            f'namespace "{fleet.namespace}"'
        )
        with pytest.raises(Forbidden, match='cannot patch resource "statefulsets"'):
            await viewer.rollout_restart(STATEFULSET)
    finally:
        await viewer.aclose()
    assert fleet.pod(PODS[0]) is not None


async def test_unreachable_while_the_api_server_is_down(fleet: Fleet, kube: KubeClient) -> None:
    unreachable = f"Kubernetes API {kube.server} unreachable"
    with api_server_down(fleet), pytest.raises(Unreachable, match=unreachable):
        await kube.list_pods()
    async with asyncio.timeout(60):
        while True:
            try:
                assert len((await kube.list_pods()).pods) == 3
                break
            except Unreachable:
                await asyncio.sleep(0.5)


async def test_feeds_fall_back_to_kubernetes_and_back(fleet: Fleet, tmp_path: Path) -> None:
    """The backend is down: pods appear from Kubernetes (no health) as soon as its first
    connection is refused, not after ``fallback_after`` (which is for a backend lost after
    it was connected); once a backend answers its summary snapshot replaces the fallback
    view."""
    port = free_port()
    model = FleetModel(max_rate=50)
    kubeconfig = fleet.kubeconfig_for(OPERATOR)
    async with (
        FakeEmulators(PODS) as fake,
        BackendClient(f"http://127.0.0.1:{port}") as client,
    ):
        feeds = FleetFeeds(
            model,
            backend=client,
            kube=lambda: KubeClient.aconnect(kubeconfig),
            fallback_after=600,
            backoff=lambda: Backoff(0.05, 0.5),
            summary=True,
        )
        await feeds.start()
        backend = BackendProcess.static(
            write_static(tmp_path / "s.yaml", fake), port=port, timing=CONSOLE_DATA_ARGS
        )
        try:
            await eventually(lambda: len(model) == 3, 60, "fallback pods")
            assert feeds.fallback_active
            e = model.get(PODS[0])
            assert e is not None and e.origin is Origin.KUBERNETES and e.summary.qemu is None
            assert model.links[Source.KUBERNETES].state is LinkState.CONNECTED
            assert model.links[Source.BACKEND].error and not model.live
            # Pod changes show up in the fallback view.
            uid = fleet.pod(PODS[2])["metadata"]["uid"]  # type: ignore[index]
            fleet.ok("delete", "pod", PODS[2], "--wait=false")
            await eventually(
                lambda: (
                    (x := model.get(PODS[2])) is None
                    or x.full is None
                    or x.full.pod is None
                    or x.full.pod.uid != uid
                    or x.full.pod.deleting
                ),
                60,
                "the deletion in the fallback view",
            )
            await backend.astart()
            await eventually(
                lambda: (
                    model.live
                    and all(e.origin is Origin.BACKEND for e in model.entries.values())
                    and len(model) == 3
                ),
                60,
                "backend view back",
            )
            assert not feeds.fallback_active
            assert model.links[Source.KUBERNETES].state is LinkState.IDLE
            await eventually(
                lambda: (x := model.get(PODS[0])) is not None and x.summary.qemu,
                60,
                "health in the summary",
            )
            back = model.get(PODS[0])
            assert back is not None and back.full is None, "the summary stream, no health body"
        finally:
            await feeds.stop()
            await backend.astop()
            if feeds.kube is not None:
                await feeds.kube.aclose()


def test_stream_threads_end_with_the_iteration(fleet: Fleet) -> None:
    """Closing a follow stream from the loop unblocks its reader thread promptly."""
    kubeconfig = fleet.kubeconfig_for(OPERATOR)

    async def run() -> None:
        kube = await KubeClient.aconnect(kubeconfig)
        follow = kube.pod_logs(PODS[0], follow=True, tail=1)
        async with asyncio.timeout(30):
            assert await anext(follow)
        # The reader thread is now blocked in a read on a quiet stream.
        task = asyncio.create_task(anext(follow))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await follow.aclose()
        await kube.aclose()

    asyncio.run(run())
    poll_until(
        lambda: not any(t.name == "kube-logs" for t in threading.enumerate()),
        5,
        "the log reader thread to end",
        interval=0.01,
    )


async def test_pod_logs_feed_a_merged_tail(fleet: Fleet, kube: KubeClient) -> None:
    tail = LogTail(LogBuffer())
    for name in PODS[:2]:
        tail.add(name, kube_source(kube, name, tail=10, follow=True))
    try:
        await eventually(
            lambda: {ln.instance for ln in tail.buffer.lines()} == set(PODS[:2]), 60, "both pods"
        )
        async with BackendClient(fleet.service_url(), token=fleet.control_token()) as backend:
            await backend.reset(PODS[1])
        reset = await eventually(
            lambda: next((ln for ln in tail.buffer.lines() if ln.message == "reset"), None),
            60,
            "the followed line",
        )
        assert reset.instance == PODS[1] and reset.level == "info" and reset.timestamp
    finally:
        await tail.stop()


# ------------------------------------------------------------------------------ actions


async def test_restart_pods_with_progress_and_audit(
    fleet: Fleet, kube: KubeClient, tmp_path: Path
) -> None:
    audit = AuditLog(path=tmp_path / "audit.jsonl")
    seen: list[Progress] = []
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in fleet.pods()}
    runner = ActionRunner(kube=kube, audit=audit, poll=0.5, ready_timeout=120)
    assert runner.describe(ActionKind.RESTART_POD, [PODS[0]]).startswith(
        f"Delete pod {PODS[0]} in namespace {fleet.namespace};"
    )
    results = await runner.run(ActionKind.RESTART_POD, PODS[:2], seen.append)
    assert {r.target: r.phase for r in results} == {PODS[0]: Phase.OK, PODS[1]: Phase.OK}
    assert all("recreated and Ready" in r.message for r in results)
    phases = [p.phase for p in seen if p.target == PODS[0]]
    assert phases[0] is Phase.PENDING and phases[-1] is Phase.OK and Phase.RUNNING in phases
    after = {p["metadata"]["name"]: p["metadata"]["uid"] for p in fleet.pods()}
    assert after[PODS[0]] != uids[PODS[0]] and after[PODS[1]] != uids[PODS[1]]
    assert after[PODS[2]] == uids[PODS[2]]
    (entry,) = audit.entries
    assert entry.result == "ok" and entry.error is None and len(entry.details) == 2
    saved = json.loads((tmp_path / "audit.jsonl").read_text())
    assert saved["action"] == "restart_pod" and saved["result"] == "ok"


async def test_rbac_denial_and_partial_failure_are_reported_per_target(
    fleet: Fleet, kube: KubeClient
) -> None:
    viewer = await KubeClient.aconnect(fleet.kubeconfig_for(VIEWER))
    audit = AuditLog()
    try:
        (r,) = await ActionRunner(kube=viewer, audit=audit).run(ActionKind.RESTART_POD, [PODS[0]])
    finally:
        await viewer.aclose()
    assert r.phase is Phase.FAILED and isinstance(r.error, Forbidden)
    assert f'User "{VIEWER}" cannot delete resource "pods"' in r.message
    assert audit.entries[-1].result == "failed" and "RBAC denied" in (audit.entries[-1].error or "")

    runner = ActionRunner(kube=kube, audit=audit, wait_ready=False)
    by = {r.target: r for r in await runner.run(ActionKind.RESTART_POD, [PODS[1], "ghost"])}
    assert by[PODS[1]].phase is Phase.OK and "deleted" in by[PODS[1]].message
    assert by["ghost"].phase is Phase.FAILED and 'pods "ghost" not found' in by["ghost"].message
    assert audit.entries[-1].result == "partial"


async def test_rolling_restart_follows_the_rollout(fleet: Fleet, kube: KubeClient) -> None:
    uids = {p["metadata"]["uid"] for p in fleet.pods()}
    assert await kube.statefulsets_of([PODS[0]]) == [STATEFULSET]
    runner = ActionRunner(kube=kube, poll=0.5, ready_timeout=300)
    started = datetime.now(UTC).replace(microsecond=0)
    seen = [p async for p in runner.stream(ActionKind.ROLLING_RESTART, [PODS[0]])]
    assert seen[-1].target == STATEFULSET and seen[-1].phase is Phase.OK, seen[-1]
    assert "all 3 pods replaced" in seen[-1].message
    assert any("pods updated" in p.message for p in seen), "progress while it rolls"
    assert not uids & {p["metadata"]["uid"] for p in fleet.pods()}
    stamp = fleet.get("statefulset", STATEFULSET)["spec"]["template"]["metadata"]["annotations"]
    assert datetime.fromisoformat(stamp[RESTARTED_AT].replace("Z", "+00:00")) >= started
    status = await kube.rollout_status(STATEFULSET)
    assert status.done and status.replicas == status.updated == status.ready == 3
    assert runner.audit.entries[-1].targets == (PODS[0],)


# ------------------------------------------------------------------------------ subcommands


async def test_restart_and_status_commands_with_kubernetes_credentials(
    fleet: Fleet, tmp_path: Path
) -> None:
    env = clean_env(
        tmp_path,
        LOCOTUI_BACKEND_URL=dead_backend(),
        KUBECONFIG=str(fleet.kubeconfig_for(OPERATOR)),
    )
    status = await locotui("status", env=env)
    assert status.code == 2 and "unreachable" in status.err, status
    assert status.out.splitlines()[0] == "Kubernetes-only view (no emulator health):"
    assert all(name in status.out for name in PODS) and "unknown*" in status.out

    uid = fleet.pod(PODS[1])["metadata"]["uid"]  # type: ignore[index]
    r = await locotui("restart", PODS[1], "--yes", "--wait", env=env, timeout=180)
    assert r.code == 0 and "recreated and Ready" in r.out, r
    assert fleet.pod(PODS[1])["metadata"]["uid"] != uid  # type: ignore[index]
    r = await locotui("restart", "ghost", "--yes", env=env)
    assert r.code == 4 and 'pods "ghost" not found' in r.err
    viewer_env = {**env, "KUBECONFIG": str(fleet.kubeconfig_for(VIEWER))}
    denied = await locotui("restart", PODS[0], "--yes", env=viewer_env)
    assert denied.code == 3, denied
    assert f'RBAC denied: pods "{PODS[0]}" is forbidden' in denied.err


def test_restart_asks_on_a_terminal(fleet: Fleet, tmp_path: Path) -> None:
    """On a TTY the exact action is shown and only 'y' proceeds (the Kubernetes path: the
    backend is unreachable)."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    settings = load_settings(
        {"backend_url": dead_backend(), "kubeconfig": str(fleet.kubeconfig_for(OPERATOR))},
        env={"XDG_CONFIG_HOME": str(tmp_path / "none")},
    )
    opts = argparse.Namespace(name=PODS[0], soft=False, yes=False, wait=False, timeout=120.0)
    uid = fleet.pod(PODS[0])["metadata"]["uid"]  # type: ignore[index]
    assert restart_cmd.run(settings, opts, stdin=Tty("n\n")) == 1
    assert fleet.pod(PODS[0])["metadata"]["uid"] == uid  # type: ignore[index]
    opts.wait = True
    assert restart_cmd.run(settings, opts, stdin=Tty("y\n")) == 0
    assert fleet.pod(PODS[0])["metadata"]["uid"] != uid  # type: ignore[index]


async def test_logs_command_from_kubernetes(fleet: Fleet, tmp_path: Path) -> None:
    env = clean_env(
        tmp_path,
        LOCOTUI_BACKEND_URL=dead_backend(),
        KUBECONFIG=str(fleet.kubeconfig_for(OPERATOR)),
    )
    await asyncio.to_thread(fleet.crash, PODS[2])
    r = await locotui("logs", PODS[2], "--tail", "1", env=env)
    assert r.code == 0 and json.loads(r.out)["level"], r
    r = await locotui("logs", PODS[2], "--previous", "--timestamps", env=env)
    assert r.code == 0 and r.out[:2] == "20" and "QEMU is running" in r.out, r


# ------------------------------------------------------------------------------ views


async def test_kubernetes_only_view_when_the_backend_is_down(fleet: Fleet) -> None:
    url = dead_backend()
    app = LocoApp(
        ui_settings(url, thumbnails=False),
        backend=BackendClient(url),
        kube=await KubeClient.aconnect(fleet.kubeconfig_for(OPERATOR)),
        fallback_after=0.2,
    )
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: (
                len(app.model) == 3
                and all(e.origin is Origin.KUBERNETES for e in app.model.entries.values())
            ),
            timeout=60,
            what="pods from Kubernetes",
            describe=lambda: screen_text(app),
        )
        text = await wait_for(
            pilot,
            lambda: "showing 3 pods" in (t := screen_text(app)) and t.count("pod only") == 3 and t,
            timeout=30,
            what="banner and tiles of the fallback",
            describe=lambda: screen_text(app),
        )
        assert "without emulator health" in text and "kube ● live" in text
        assert sorted(e.name for e in app.model.entries.values()) == fleet.names()
        assert all(e.status is InstanceStatus.UNKNOWN for e in app.model.entries.values())


@pytest.mark.parametrize("user", [OPERATOR, VIEWER])
async def test_restart_from_the_console_with_each_role(fleet: Fleet, user: str) -> None:
    """The same key: with the operator Role the pod is deleted and comes back Ready; with
    the viewer Role the API server refuses and the console says so."""
    url = dead_backend()
    app = LocoApp(
        ui_settings(url, thumbnails=False),
        backend=BackendClient(url),
        kube=await KubeClient.aconnect(fleet.kubeconfig_for(user)),
        fallback_after=0.2,
    )
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: len(app.grid.tiles) == 3, timeout=60, what="pods")
        target = app.cursor_name
        assert target is not None
        old_uid = fleet.pod(target)["metadata"]["uid"]  # type: ignore[index]
        await pilot.press("R")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, what="confirmation"
        )
        assert f"Delete pod {target} in namespace {fleet.namespace}" in screen_text(app)
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: screen.state == "done",
            timeout=180,
            what="the result",
            describe=lambda: screen_text(app),
        )
        text = screen_text(app)
        if user == OPERATOR:
            assert "done: 1 ok, 0 failed" in text
            assert fleet.pod(target)["metadata"]["uid"] != old_uid  # type: ignore[index]
        else:
            assert "DENIED" in text and "RBAC denied" in text and "denied by RBAC" in text
            assert app.audit.entries[-1].result == "failed"
            assert fleet.pod(target)["metadata"]["uid"] == old_uid  # type: ignore[index]


async def test_real_emulators_through_backend_and_kubernetes(fleet: Fleet) -> None:
    """The whole path in the console (Pilot): real health and pictures from the pods
    through the backend, a soft reset down to QMP, a pod restart through Kubernetes with
    the operator's credentials, and a pod's log through the API."""
    url = fleet.service_url()
    app = LocoApp(
        ui_settings(url, thumbnails=True, thumbnail_interval=1.0),
        backend=BackendClient(url, token=fleet.control_token()),
        kube=await KubeClient.aconnect(fleet.kubeconfig_for(OPERATOR)),
    )
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(
            pilot,
            lambda: screen_text(app).count("● healthy") == 3,
            timeout=90,
            what="three healthy emulators",
            describe=lambda: screen_text(app),
        )
        text = screen_text(app)
        assert "Running ready" in text and "qemu running" in text
        # A real picture from each guest, as half blocks.
        await wait_for(
            pilot,
            lambda: all(t._thumb.strips for t in app.grid.tiles),
            timeout=30,
            what="thumbnails from the guests",
        )

        # Soft reset of the first one: backend -> supervisor in the pod -> QMP.
        await pilot.press("r")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, what="confirmation"
        )
        assert f"Soft reset {PODS[0]}" in screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.state == "done", timeout=30, what="reset done")
        assert "done: 1 ok, 0 failed" in screen_text(app), screen_text(app)
        await pilot.press("escape")

        # Pod restart: deleted through Kubernetes, the Ready replacement awaited.
        old_uid = fleet.pod(PODS[0])["metadata"]["uid"]  # type: ignore[index]
        await pilot.press("R")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, what="confirmation"
        )
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: screen.state == "done",
            timeout=180,
            what="restart done",
            describe=lambda: screen_text(app),
        )
        assert "done: 1 ok, 0 failed" in screen_text(app), screen_text(app)
        assert fleet.pod(PODS[0])["metadata"]["uid"] != old_uid  # type: ignore[index]
        await pilot.press("escape")
        assert [e.action.value for e in app.audit.entries] == ["soft_reset", "restart_pod"]

        # The log of the next pod through the Kubernetes API: the supervisor's JSON lines.
        # (While the restarted pod was gone the cursor may have moved on: go there by keys.)
        for _ in range(len(PODS)):
            if app.cursor_name == PODS[1]:
                break
            await pilot.press("left" if (app.cursor_name or "") > PODS[1] else "right")
        assert app.cursor_name == PODS[1]
        await pilot.press("L")
        logs = await wait_for(
            pilot, lambda: isinstance(app.screen, LogScreen) and app.screen, what="log view"
        )
        await wait_for(
            pilot,
            lambda: len(logs.view.shown) > 3,
            timeout=30,
            what="log lines",
            describe=lambda: screen_text(app),
        )
        assert any(line.is_json for line in logs.view.shown)
        await pilot.press("escape")
