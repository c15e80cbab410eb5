"""The Kubernetes layer's pure parts: watch lines, pod parsing, error text."""

from __future__ import annotations

import pytest

from backend.kube.errors import KubeError, KubeGone, status_message
from backend.kube.pods import parse_pod
from backend.kube.watching import Changed, _event


def test_watch_lines_bookmarks_errors_and_junk() -> None:
    """The watch cache's 410 arrives as an ERROR event: a relist, not an error."""
    gone = '{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old"}}'
    with pytest.raises(KubeGone, match="too old"):
        _event(gone, "loco", "5")
    other = '{"type":"ERROR","object":{"kind":"Status","code":500,"message":"boom"}}'
    with pytest.raises(KubeError, match="boom") as info:
        _event(other, "loco", "5")
    assert info.value.status == 500 and not isinstance(info.value, KubeGone)
    assert _event("not json", "loco", "5") == (None, "5")
    bookmark = '{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}'
    assert _event(bookmark, "loco", "5") == (None, "9")
    nameless = '{"type":"ADDED","object":{"metadata":{"resourceVersion":"10"}}}'
    assert _event(nameless, "loco", "9") == (None, "10")
    added = '{"type":"ADDED","object":{"metadata":{"name":"p","resourceVersion":"11"}}}'
    change, rv = _event(added, "loco", "10")
    assert isinstance(change, Changed) and change.pod.name == "p" and rv == "11"
    assert change.pod.namespace == "loco", "the watched namespace when the object has none"


def test_pod_addresses_follow_the_conventions() -> None:
    pod = {
        "metadata": {
            "name": "loco-emulator-0",
            "uid": "u",
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "rs"},
                {"kind": "StatefulSet", "name": "loco-emulator", "controller": True},
            ],
        },
        "spec": {
            "nodeName": "node-a",
            "containers": [
                {"name": "emulator", "ports": [{"name": "health", "containerPort": 8088}]}
            ],
        },
        "status": {"podIP": "fd00::7", "phase": "Running"},
    }
    parsed = parse_pod(pod, "loco")
    assert parsed.health_url == "http://[fd00::7]:8088"
    assert parsed.vnc == "[fd00::7]:5900", "no port named vnc: the default"
    assert (parsed.owner_kind, parsed.owner_name) == ("StatefulSet", "loco-emulator")
    assert parsed.containers == ("emulator",)
    pod["metadata"]["annotations"] = {"lego-loco.io/health-url": "http://127.0.0.1:9/"}
    assert parse_pod(pod, "loco").health_url == "http://127.0.0.1:9"


def test_status_bodies_give_the_servers_own_words() -> None:
    body = b'{"kind":"Status","message":"pods is forbidden: User \\"x\\" cannot delete"}'
    assert status_message(body, "Forbidden") == 'pods is forbidden: User "x" cannot delete'
    assert status_message(b"<html>\nbad gateway\n</html>", "x") == "<html> bad gateway </html>"
    assert status_message(b"", "Forbidden") == "Forbidden"
