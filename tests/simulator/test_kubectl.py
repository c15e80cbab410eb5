"""The real kubectl (1.32) against the simulator: what operators will type."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.kubesim import KubeSim
from tests.kubesim.fixtures import KubectlRunner
from tests.simulator.helpers import LineReader, stop

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")

SELECTOR = "app.kubernetes.io/component=emulator"


def _uids(sim: KubeSim) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in sim.pods()}


def test_get_pods_by_label_shows_the_emulators(kubesim: KubeSim, kubectl: KubectlRunner) -> None:
    out = kubectl("get", "pods", "-l", SELECTOR)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows] == [f"loco-emulator-{i}" for i in range(3)]
    assert all(r[1:4] == ["1/1", "Running", "0"] for r in rows)

    none = kubectl("get", "pods", "-l", "app.kubernetes.io/component=backend")
    assert none.returncode == 0
    assert "No resources found in loco namespace." in none.stderr


def test_get_pods_wide_and_json(kubesim: KubeSim, kubectl: KubectlRunner) -> None:
    wide = kubectl("get", "pods", "-o", "wide")
    assert wide.returncode == 0, wide.stderr
    header = wide.stdout.splitlines()[0].split()
    assert header[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    pod0 = kubesim.pod("loco-emulator-0")
    assert pod0 is not None
    assert pod0["status"]["podIP"] in wide.stdout
    jsonpath = kubectl("get", "pod", "loco-emulator-0", "-o", "jsonpath={.metadata.labels}")
    assert '"app.kubernetes.io/part-of":"lego-loco-cluster"' in jsonpath.stdout


def test_get_pods_watch_streams_changes(kubesim: KubeSim, kubectl: KubectlRunner, tmp_path) -> None:
    env = kubesim.env(cache_dir=tmp_path / "kubectl-cache")
    proc = subprocess.Popen(
        ["kubectl", "get", "pods", "--watch", "-l", SELECTOR],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        reader = LineReader(proc)
        reader.wait_for(lambda line: line.startswith("loco-emulator-2"))
        kubesim.delete_pod("loco-emulator-1")
        reader.wait_for(lambda line: line.startswith("loco-emulator-1") and "Terminating" in line)
        # The StatefulSet controller brings it back; the watch shows it become ready.
        reader.wait_for(
            lambda line: (
                line.startswith("loco-emulator-1") and line.split()[1:3] == ["1/1", "Running"]
            )
        )
    finally:
        stop(proc)


def test_logs_tail(kubesim: KubeSim, kubectl: KubectlRunner) -> None:
    kubesim.append_log("loco-emulator-0", *[f"line {i}" for i in range(5)])
    out = kubectl("logs", "loco-emulator-0", "--tail=2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["line 3", "line 4"]
    stamped = kubectl("logs", "loco-emulator-0", "--tail=1", "--timestamps")
    stamp, text = stamped.stdout.rstrip("\n").split(" ", 1)
    assert text == "line 4" and stamp.endswith("Z") and "T" in stamp


def test_logs_previous_error_then_previous_container(
    kubesim: KubeSim, kubectl: KubectlRunner
) -> None:
    out = kubectl("logs", "loco-emulator-0", "--previous")
    assert out.returncode != 0
    assert (
        'Error from server (BadRequest): previous terminated container "emulator" in pod '
        '"loco-emulator-0" not found'
    ) in out.stderr

    kubesim.append_log("loco-emulator-0", "before the crash")
    kubesim.restart_container("loco-emulator-0", exit_code=137, reason="OOMKilled")
    kubesim.append_log("loco-emulator-0", "after the restart")
    prev = kubectl("logs", "loco-emulator-0", "--previous")
    assert prev.returncode == 0, prev.stderr
    assert prev.stdout.splitlines() == ["before the crash"]
    assert kubectl("logs", "loco-emulator-0").stdout.splitlines() == ["after the restart"]
    restarts = kubectl("get", "pod", "loco-emulator-0", "--no-headers").stdout.split()[3]
    assert restarts == "1"


def test_logs_follow_streams_appended_lines_until_the_pod_dies(kubesim: KubeSim, tmp_path) -> None:
    env = kubesim.env(cache_dir=tmp_path / "kubectl-cache")
    kubesim.append_log("loco-emulator-0", "old")
    proc = subprocess.Popen(
        ["kubectl", "logs", "-f", "loco-emulator-0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        reader = LineReader(proc)
        reader.wait_for(lambda line: line == "old")
        kubesim.append_log("loco-emulator-0", "fresh 1", "fresh 2")
        reader.wait_for(lambda line: line == "fresh 2")
        kubesim.delete_pod("loco-emulator-0")
        reader.wait_eof()  # the container terminated: kubectl logs -f ends by itself
        assert proc.wait(timeout=10) == 0
    finally:
        stop(proc)


def test_delete_pod_comes_back_with_new_uid(kubesim: KubeSim, kubectl: KubectlRunner) -> None:
    before = _uids(kubesim)
    out = kubectl("delete", "pod", "loco-emulator-2")
    assert out.returncode == 0, out.stderr
    assert 'pod "loco-emulator-2" deleted' in out.stdout
    kubesim.wait_for(
        lambda: (
            (p := kubesim.pod("loco-emulator-2")) is not None
            and p["metadata"]["uid"] != before["loco-emulator-2"]
        ),
        what="recreated pod",
    )
    pods = kubesim.wait_pods_ready(3)
    after = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}
    assert after["loco-emulator-2"] != before["loco-emulator-2"]
    assert after["loco-emulator-0"] == before["loco-emulator-0"]
    reasons = [e["reason"] for e in kubesim.events("loco-emulator-2")]
    assert "Killing" in reasons
    assert reasons.count("Started") == 2  # the old instance and the new one


def test_rollout_restart_recreates_pods_in_reverse_order(
    kubesim: KubeSim, kubectl: KubectlRunner
) -> None:
    before = _uids(kubesim)
    out = kubectl("rollout", "restart", "statefulset", "loco-emulator")
    assert out.returncode == 0, out.stderr
    assert "statefulset.apps/loco-emulator restarted" in out.stdout
    sts = kubesim.statefulset()
    assert sts is not None
    assert "kubectl.kubernetes.io/restartedAt" in sts["spec"]["template"]["metadata"]["annotations"]
    assert sts["metadata"]["generation"] == 2

    status = kubectl("rollout", "status", "statefulset", "loco-emulator", "--timeout=20s")
    assert status.returncode == 0, status.stderr
    assert "roll out complete" in status.stdout
    after = _uids(kubesim)
    assert set(after) == set(before)
    assert all(after[name] != before[name] for name in before)
    deletes = [
        e["message"] for e in kubesim.events("loco-emulator") if e["reason"] == "SuccessfulDelete"
    ]
    assert deletes == [
        f"delete Pod loco-emulator-{i} in StatefulSet loco-emulator successful" for i in (2, 1, 0)
    ]


def test_read_only_token_is_forbidden_to_delete_and_restart(
    kubesim: KubeSim, kubectl: KubectlRunner
) -> None:
    ro = kubesim.readonly
    assert kubectl("get", "pods", token=ro).returncode == 0
    denied = kubectl("delete", "pod", "loco-emulator-0", token=ro)
    assert denied.returncode != 0
    assert (
        'Error from server (Forbidden): pods "loco-emulator-0" is forbidden: User '
        '"kubesim-readonly" cannot delete resource "pods" in API group "" in the namespace "loco"'
    ) in denied.stderr
    restart = kubectl("rollout", "restart", "statefulset", "loco-emulator", token=ro)
    assert restart.returncode != 0
    assert (
        'statefulsets.apps "loco-emulator" is forbidden: User "kubesim-readonly" cannot patch '
        'resource "statefulsets" in API group "apps" in the namespace "loco"'
    ) in restart.stderr
    assert kubesim.pod("loco-emulator-0") is not None


def test_wrong_token_is_unauthorized(kubesim: KubeSim, kubectl: KubectlRunner) -> None:
    out = kubectl("get", "pods", "--token", "not-a-token")
    assert out.returncode != 0
    assert "You must be logged in to the server" in out.stderr


def test_describe_and_events(kubesim: KubeSim, kubectl: KubectlRunner) -> None:
    out = kubectl("describe", "pod", "loco-emulator-0")
    assert out.returncode == 0, out.stderr
    assert "Successfully assigned loco/loco-emulator-0 to kubesim-node-" in out.stdout
    assert "Started container emulator" in out.stdout
    events = kubectl("get", "events", "--field-selector", "involvedObject.name=loco-emulator-0")
    assert events.returncode == 0, events.stderr
    reasons = [line.split()[2] for line in events.stdout.splitlines()[1:]]
    assert reasons == ["Scheduled", "Pulled", "Created", "Started"]


def test_scale_statefulset(kubesim: KubeSim, kubectl: KubectlRunner) -> None:
    out = kubectl("scale", "statefulset", "loco-emulator", "--replicas=2")
    assert out.returncode == 0, out.stderr
    kubesim.wait_for(lambda: len(kubesim.pods()) == 2, what="scale down to 2")
    assert [p["metadata"]["name"] for p in kubesim.pods()] == ["loco-emulator-0", "loco-emulator-1"]
