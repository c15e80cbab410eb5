"""OSC 52 sequences, the raw YAML document, and screen dumps: the data side."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from locotui.data.clipboard import MAX_BYTES, ClipboardError, osc52, osc52_sequences
from locotui.data.dump import collect_pictures, write_dump
from locotui.data.errors import DataError, NotFound, Unreachable
from locotui.data.rawview import REDACTED, fetch_raw, raw_document, to_yaml
from tests.support.builders import demo_instances


def test_osc52_is_base64_of_the_text_and_wrapped_for_tmux() -> None:
    seq = osc52("loco-1 ✓")
    assert seq.startswith("\x1b]52;c;") and seq.endswith("\a")
    assert base64.b64decode(seq[7:-1]).decode() == "loco-1 ✓"
    assert osc52_sequences("x", tmux=False) == [osc52("x")]
    plain, wrapped = osc52_sequences("x", tmux=True)
    assert plain == osc52("x")
    # tmux passthrough: DCS "tmux;", every ESC inside doubled, ST at the end.
    assert wrapped == "\x1bPtmux;\x1b\x1b]52;c;eA==\a\x1b\\"


def test_osc52_refuses_nothing_and_too_much() -> None:
    with pytest.raises(ClipboardError, match="nothing to copy"):
        osc52("")
    with pytest.raises(ClipboardError, match="too much"):
        osc52("x" * (MAX_BYTES + 1))


def test_raw_document_redacts_secret_env_and_renders_yaml() -> None:
    inst = demo_instances(3)[2]
    pod = {
        "metadata": {"name": "loco-2"},
        "spec": {
            "containers": [
                {
                    "name": "emulator",
                    "env": [
                        {"name": "LOCO_CONTROL_TOKEN", "value": "s3cret"},
                        {"name": "VNC_PASSWORD", "value": "hunter2"},
                        {"name": "LOCO_INSTANCE", "value": "loco-2"},
                        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "k"}}},
                    ],
                }
            ]
        },
    }
    text = to_yaml(raw_document("loco-2", inst, pod))
    assert "s3cret" not in text and "hunter2" not in text
    doc = yaml.safe_load(text)
    env = doc["pod"]["spec"]["containers"][0]["env"]
    assert [e.get("value") for e in env] == [REDACTED, REDACTED, "loco-2", None]
    assert doc["instance"]["status"] == "degraded"
    assert doc["instance"]["health"]["overall_status"] == "degraded"
    assert list(doc) == ["name", "instance", "pod"]


class FakeBackend:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def get_instance(self, name: str) -> Any:
        if self.error:
            raise self.error
        return demo_instances(3)[int(name[-1])]


class FakeKube:
    async def pod_manifest(self, name: str) -> dict[str, Any]:
        raise NotFound(f"pod {name} not found", source="kubernetes")


async def test_fetch_raw_says_why_a_part_is_missing() -> None:
    doc = await fetch_raw("loco-1", backend=FakeBackend(), kube=None, is_pod=True)
    assert doc["instance"]["name"] == "loco-1"
    assert "no Kubernetes access" in doc["pod"]["note"]
    doc = await fetch_raw("loco-1", backend=FakeBackend(), kube=FakeKube(), is_pod=True)
    assert "pod loco-1 not found" in doc["pod"]["note"]
    known = demo_instances(3)[1]
    down = FakeBackend(Unreachable("backend unreachable: refused", source="backend"))
    doc = await fetch_raw("loco-1", backend=down, kube=None, is_pod=False, known=known)
    assert doc["instance"]["name"] == "loco-1" and "pod" not in doc
    assert "showing what this console last saw" in doc["instance_error"]
    doc = await fetch_raw("loco-1", backend=down, kube=None, is_pod=False)
    assert doc["instance"] == {"error": "backend unreachable: refused"}


async def test_dump_writes_private_files_and_lists_missing_pictures(tmp_path: Path) -> None:
    async def fetch(name: str, width: int) -> bytes:
        if name == "loco-2":
            raise NotFound("thumbnail of loco-2: no frame yet", source="backend")
        return f"PNG {name} {width}".encode()

    pictures, missing = await collect_pictures(fetch, ["loco-0", "loco-1", "loco-2"])
    assert set(pictures) == {"loco-0", "loco-1"} and list(missing) == ["loco-2"]
    target = tmp_path / "dump"
    dump = await write_dump(target, "screen\n", svg="<svg/>", pictures=pictures, missing=missing)
    assert sorted(p.name for p in dump.files) == [
        "loco-0.png",
        "loco-1.png",
        "screen.svg",
        "screen.txt",
    ]
    assert (target / "loco-0.png").read_bytes() == b"PNG loco-0 640"
    text = (target / "screen.txt").read_text()
    assert text.startswith("screen\n") and "loco-2: thumbnail of loco-2: no frame yet" in text
    assert stat.S_IMODE((target / "screen.txt").stat().st_mode) == 0o600
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    with pytest.raises(DataError, match="exists; choose another name"):
        await write_dump(target, "again")
    # A name cannot walk out of the directory.
    dump = await write_dump(tmp_path / "d2", "x", pictures={"../evil": b"x"})
    assert all(p.parent == tmp_path / "d2" for p in dump.files)
