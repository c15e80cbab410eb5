"""Static discovery files: good ones load, bad ones say where and why; edits are picked up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.discovery.static import StaticConfigError, StaticDiscovery, load_static_file
from backend.fleet import Fleet
from backend.models import InstanceSource
from tests.support.waiting import eventually


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_yaml_and_json(tmp_path: Path) -> None:
    y = write(
        tmp_path,
        "fleet.yaml",
        "instances:\n"
        "  - name: loco-0\n    health_url: http://10.0.0.5:8080/\n    vnc: 10.0.0.5:5900\n"
        "  - name: loco-1\n    health_url: https://emu.example:8443\n    log_file: /tmp/l.log\n",
    )
    items = load_static_file(y)
    assert [i.name for i in items] == ["loco-0", "loco-1"]
    assert items[0].health_url == "http://10.0.0.5:8080"  # trailing slash dropped
    assert items[1].log_file == "/tmp/l.log"
    j = write(tmp_path, "fleet.json", json.dumps([{"name": "a", "health_url": "http://h:1"}]))
    assert [i.name for i in load_static_file(j)] == ["a"]
    assert load_static_file(write(tmp_path, "empty.yaml", "")) == []


@pytest.mark.parametrize(
    ("name", "text", "position", "reason"),
    [
        (
            "syntax.yaml",
            "instances:\n  - name: a\n    health_url: [http://x:1\n",
            "4:1",
            "expected ',' or ']'",
        ),
        (
            "tab.yaml",
            "instances:\n\t- name: a\n",
            "2:1",
            "tab",
        ),
        (
            "syntax.json",
            '{"instances": [\n  {"name": "a", "health_url": "http://x:1",}\n]}',
            "2:44",
            "Expecting property name",
        ),
        (
            "scheme.yaml",
            "instances:\n  - name: a\n    health_url: http://x:1\n"
            "  - name: b\n    health_url: ftp://x\n",
            "5:17: instances[1].health_url",
            "http:// or https://",
        ),
        (
            "missing.json",
            '[{"name": "a"}]',
            "1:2: [0].health_url",
            "required field is missing",
        ),
        (
            "unknown.yaml",
            "- name: a\n  health_url: http://x:1\n  colour: red\n",
            "3:11: [0].colour",
            "unknown field",
        ),
        (
            "dup.yaml",
            "- name: a\n  health_url: http://x:1\n- name: a\n  health_url: http://x:2\n",
            "3:9: [1].name",
            "duplicate name 'a' (also item 0)",
        ),
        (
            "badname.yaml",
            "- name: 'has space'\n  health_url: http://x:1\n",
            "1:9: [0].name",
            "letters, digits",
        ),
        (
            "badvnc.yaml",
            "- name: a\n  health_url: http://x:1\n  vnc: nohostport\n",
            "3:8: [0].vnc",
            "host:port",
        ),
        (
            "badport.yaml",
            "- name: a\n  health_url: http://x:99999\n",
            "2:15: [0].health_url",
            "port",
        ),
        ("scalar-item.yaml", "- just a string\n", "1:3: [0]", "must be a mapping"),
        ("notalist.yaml", "instances: 3\n", None, "expected a list"),
        ("topkey.yaml", "instance: []\n", None, "unknown top-level key(s): instance"),
    ],
)
def test_errors_have_file_position_and_reason(
    tmp_path: Path, name: str, text: str, position: str | None, reason: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(StaticConfigError) as info:
        load_static_file(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert reason in message
    if position is None:
        assert info.value.position is None
    else:
        assert info.value.position is not None
        assert info.value.position.startswith(position), message


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(StaticConfigError, match="file not found"):
        load_static_file(tmp_path / "nope.yaml")
    with pytest.raises(StaticConfigError, match="is a directory"):
        load_static_file(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(StaticConfigError, match="cannot read"):
        load_static_file(binary)


async def test_reload_keeps_last_good_list_marked_stale(tmp_path: Path) -> None:
    path = write(tmp_path, "f.yaml", "- name: a\n  health_url: http://127.0.0.1:9/\n")
    discovery = StaticDiscovery(path, reload_interval=0.05)
    fleet = Fleet(InstanceSource.STATIC, discovery.initial_state())
    import asyncio

    task = asyncio.get_running_loop().create_task(discovery.run(fleet))
    try:
        await eventually(lambda: fleet.discovery.synced, fleet=fleet, what="first sync")
        assert list(fleet.names()) == ["a"]
        # A broken edit: the list stays, marked stale, and the error names the position.
        path.write_text("- name: a\n  health_url: [\n")
        await eventually(lambda: not fleet.discovery.ok, fleet=fleet, what="error state")
        assert "f.yaml:3:1" in (fleet.discovery.error or "")
        inst = fleet.get("a")
        assert inst is not None and inst.stale and "discovery" in (inst.stale_reason or "")
        # A good edit: new list, no longer stale.
        path.write_text(
            "- name: b\n  health_url: http://127.0.0.1:9\n"
            "- name: c\n  health_url: http://127.0.0.1:9\n"
        )
        await eventually(
            lambda: fleet.discovery.ok and sorted(fleet.names()) == ["b", "c"],
            fleet=fleet,
            what="reloaded list",
        )
        b = fleet.get("b")
        assert b is not None and not b.stale
    finally:
        task.cancel()
