"""The resource types the simulator serves, and the discovery documents describing them.

Both discovery flavours are served: the legacy per-group-version APIResourceLists and the
aggregated ``apidiscovery.k8s.io/v2`` documents that kubectl >= 1.30 asks for first.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from tests.kubesim.objects import Obj

RW_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str = ""
    version: str = "v1"


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = RW_VERBS
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key: 'pods', 'apps/statefulsets'."""
        return f"{self.group}/{self.plural}" if self.group else self.plural

    @property
    def qualified(self) -> str:
        """How error messages name it: 'pods', 'statefulsets.apps'."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)

    def storage_version_hash(self) -> str:
        digest = hashlib.sha256(f"{self.api_version}/{self.kind}".encode()).digest()
        return base64.b64encode(digest[:8]).decode()


NAMESPACES = ResourceType(
    "", "v1", "namespaces", "namespace", "Namespace", False,
    verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    short_names=("ns",),
    subresources=(
        Subresource("status", "Namespace", ("get", "patch", "update")),
        Subresource("finalize", "Namespace", ("update",)),
    ),
)  # fmt: skip
PODS = ResourceType(
    "", "v1", "pods", "pod", "Pod", True,
    short_names=("po",),
    categories=("all",),
    subresources=(
        Subresource("status", "Pod", ("get", "patch", "update")),
    ),
)  # fmt: skip
EVENTS = ResourceType("", "v1", "events", "event", "Event", True, short_names=("ev",))
STATEFULSETS = ResourceType(
    "apps", "v1", "statefulsets", "statefulset", "StatefulSet", True,
    short_names=("sts",),
    categories=("all",),
    subresources=(
        Subresource("scale", "Scale", ("get", "patch", "update"), group="autoscaling"),
        Subresource("status", "StatefulSet", ("get", "patch", "update"), group="apps"),
    ),
)  # fmt: skip

ALL: tuple[ResourceType, ...] = (NAMESPACES, PODS, EVENTS, STATEFULSETS)
GROUPS: dict[str, tuple[str, ...]] = {"apps": ("v1",)}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    for r in ALL:
        if r.group == group and r.version == version and r.plural == plural:
            return r
    return None


def by_key(key: str) -> ResourceType:
    return next(r for r in ALL if r.key == key)


# --- legacy discovery --------------------------------------------------------------------


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_entry(group: str) -> Obj:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in GROUPS[group]]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> Obj:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g) for g in GROUPS],
    }


def api_group(group: str) -> Obj | None:
    if group not in GROUPS:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group)}


def api_resource_list(group: str, version: str) -> Obj | None:
    if (group == "" and version != "v1") or (group and version not in GROUPS.get(group, ())):
        return None
    resources: list[Obj] = []
    for r in ALL:
        if r.group != group or r.version != version:
            continue
        entry: Obj = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
            "storageVersionHash": r.storage_version_hash(),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for s in r.subresources:
            sub: Obj = {
                "name": f"{r.plural}/{s.name}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": list(s.verbs),
            }
            if s.group != group:
                sub["group"], sub["version"] = s.group, s.version
            resources.append(sub)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


# --- aggregated discovery (apidiscovery.k8s.io/v2) ----------------------------------------

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """kubectl lists aggregated v2 (then v2beta1, then plain JSON) in Accept for /api and /apis."""
    return "as=APIGroupDiscoveryList" in accept and "v=v2;" in accept.replace(" ", "") + ";"


def _aggregated_resource(r: ResourceType) -> Obj:
    entry: Obj = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    if r.subresources:
        entry["subresources"] = [
            {
                "subresource": s.name,
                "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                "verbs": list(s.verbs),
            }
            for s in r.subresources
        ]
    return entry


def aggregated(core: bool) -> Obj:
    items: list[Obj] = []
    groups = [""] if core else list(GROUPS)
    for group in groups:
        versions = ["v1"] if group == "" else list(GROUPS[group])
        items.append(
            {
                "metadata": {"name": group, "creationTimestamp": None},
                "versions": [
                    {
                        "version": v,
                        "resources": [
                            _aggregated_resource(r)
                            for r in ALL
                            if r.group == group and r.version == v
                        ],
                        "freshness": "Current",
                    }
                    for v in versions
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def version_info() -> Obj:
    return {
        "major": "1",
        "minor": "32",
        "emulationMajor": "1",
        "emulationMinor": "32",
        "gitVersion": "v1.32.0-kubesim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
