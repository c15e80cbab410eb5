"""Pod facts from a pod object as the API server sends it (no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.kube.pods import pod_facts


def _status(name: str, restarts: int, last: dict | None) -> dict:
    status: dict = {"name": name, "restartCount": restarts, "state": {"running": {}}}
    if last is not None:
        status["lastState"] = {"terminated": last}
    return status


def test_last_restart_reason_and_time_from_the_latest_termination() -> None:
    pod = {
        "metadata": {"name": "loco-emulator-0", "uid": "u1"},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                _status(
                    "emulator",
                    2,
                    {"reason": "Error", "exitCode": 137, "finishedAt": "2026-01-02T03:04:05Z"},
                ),
                _status(
                    "sidecar",
                    1,
                    {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2026-01-01T00:00:00Z"},
                ),
            ],
        },
    }
    facts = pod_facts(pod)
    assert facts.restarts == 3
    assert facts.last_restart_reason == "Error (exit 137)"
    assert facts.last_restart_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_no_restart_no_reason() -> None:
    pod = {"metadata": {"name": "p"}, "status": {"containerStatuses": [_status("c", 0, None)]}}
    facts = pod_facts(pod)
    assert facts.last_restart_reason is None and facts.last_restart_at is None
