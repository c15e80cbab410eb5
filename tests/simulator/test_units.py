"""Pure functions of the simulator: selector grammar and patch formats."""

from __future__ import annotations

import pytest

from tests.kubesim.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from tests.kubesim.selectors import FieldSelector, LabelSelector, SelectorError

LABELS = {"app": "loco", "tier": "7", "env": "prod"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=loco", True),
        ("app==loco", True),
        ("app=other", False),
        ("app!=loco", False),
        ("missing!=x", True),  # a missing key satisfies !=
        ("app in (loco, x)", True),
        ("app in (x,y)", False),
        ("app notin (x)", True),
        ("missing notin (x)", True),
        ("app", True),
        ("!app", False),
        ("!missing", True),
        ("tier>5,tier<8", True),
        ("tier>7", False),
        ("app=loco,env in (prod),!missing", True),
        ("app=loco,env=dev", False),
        ("app=", False),
    ],
)
def test_label_selector_semantics(selector: str, matches: bool) -> None:
    assert LabelSelector.parse(selector).matches(LABELS) is matches


@pytest.mark.parametrize("bad", ["a in (b", "a=b,", "=b", "a in b", "a>x", "a b", "!"])
def test_label_selector_rejects_malformed(bad: str) -> None:
    with pytest.raises(SelectorError, match="unable to parse requirement"):
        LabelSelector.parse(bad)


def test_field_selector_semantics_and_escaping() -> None:
    pod = {"metadata": {"name": "a,b", "namespace": "ns"}, "status": {"phase": "Running"}}
    assert FieldSelector.parse(r"metadata.name=a\,b", "pods").matches(pod)
    assert FieldSelector.parse("status.phase!=Pending,metadata.namespace==ns", "pods").matches(pod)
    assert not FieldSelector.parse("status.phase=Pending", "pods").matches(pod)
    assert FieldSelector.parse("metadata.name=x", "pods").exact_name() == "x"
    with pytest.raises(SelectorError, match=r"field label not supported: status\.phase"):
        FieldSelector.parse("status.phase=Running", "apps/statefulsets")
    with pytest.raises(SelectorError):
        FieldSelector.parse("nonsense", "pods")


def test_merge_patch_rfc7386() -> None:
    doc = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge_patch(doc, {"a": {"b": None, "d": 3}, "l": [3]}) == {
        "a": {"c": 2, "d": 3},
        "l": [3],
    }
    assert doc == {"a": {"b": 1, "c": 2}, "l": [1, 2]}  # input untouched


def test_strategic_merge_patch_merges_lists_by_key() -> None:
    spec = {
        "containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"},
        ],
        "finalizers": ["f1"],
        "tolerations": [{"key": "t1"}],
    }
    patched = strategic_merge_patch(
        spec,
        {
            "containers": [
                {"name": "a", "env": [{"name": "Y", "value": "2"}]},
                {"name": "b", "$patch": "delete"},
                {"name": "c", "image": "c:1"},
            ],
            "finalizers": ["f2"],
            "tolerations": [{"key": "t2"}],
        },
    )
    assert [c["name"] for c in patched["containers"]] == ["a", "c"]
    assert patched["containers"][0]["image"] == "a:1"
    assert patched["containers"][0]["env"] == [
        {"name": "X", "value": "1"},
        {"name": "Y", "value": "2"},
    ]
    assert patched["finalizers"] == ["f1", "f2"]
    assert patched["tolerations"] == [{"key": "t2"}]  # no merge key: replaced
    replaced = strategic_merge_patch({"m": {"a": 1, "b": 2}}, {"m": {"$patch": "replace", "c": 3}})
    assert replaced == {"m": {"c": 3}}
    ordered = strategic_merge_patch(
        {"containers": [{"name": "a"}, {"name": "b"}]},
        {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]},
    )
    assert [c["name"] for c in ordered["containers"]] == ["b", "a"]
    with pytest.raises(PatchError):
        strategic_merge_patch({"containers": []}, {"containers": [{"image": "no-name"}]})


def test_json_patch_rfc6902() -> None:
    doc = {"spec": {"replicas": 3, "list": [1, 2]}}
    out = json_patch(
        doc,
        [
            {"op": "test", "path": "/spec/replicas", "value": 3},
            {"op": "replace", "path": "/spec/replicas", "value": 1},
            {"op": "add", "path": "/spec/list/1", "value": 9},
            {"op": "add", "path": "/spec/list/-", "value": 7},
            {"op": "remove", "path": "/spec/list/0"},
            {"op": "copy", "from": "/spec/replicas", "path": "/spec/copy"},
            {"op": "move", "from": "/spec/copy", "path": "/spec/moved"},
            {"op": "add", "path": "/metadata~1x", "value": "slash"},
        ],
    )
    assert out == {"spec": {"replicas": 1, "list": [9, 2, 7], "moved": 1}, "metadata/x": "slash"}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/spec/replicas", "value": 4}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "replace", "path": "/nope/x", "value": 1}])
