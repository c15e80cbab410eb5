"""An instance as raw YAML, to paste into a ticket: what the backend knows of it (the
emulator's status included) and, when known, its pod as the Kubernetes API has it.

Pure: the caller fetches (``BackendClient.instance``, ``KubeClient.pod_manifest``) and
passes what it got, or the error it got instead; this module only shapes and renders.
Values of environment variables whose names say they are secret (``*TOKEN*``,
``*PASSWORD*``, ``*SECRET*``, ``*KEY*``) are replaced by ``<redacted>``: the text is
meant to leave the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel

__all__ = ["REDACTED", "raw_document", "redact", "to_yaml"]

REDACTED = "<redacted>"
_SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|(^|_)KEY($|_)", re.IGNORECASE)


def redact(value: Any) -> Any:
    """A copy of ``value`` with the values of secret-looking env entries (``{name, value}``
    items, as in a pod's ``env``) replaced."""
    if isinstance(value, Mapping):
        out = {k: redact(v) for k, v in value.items()}
        name = out.get("name")
        if isinstance(name, str) and "value" in out and _SECRET_NAME.search(name):
            out["value"] = REDACTED
        return out
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def raw_document(
    name: str,
    instance: BaseModel | Mapping[str, Any] | None,
    pod: Mapping[str, Any] | None = None,
    *,
    instance_error: str | None = None,
    pod_note: str | None = None,
) -> dict[str, Any]:
    """``{"instance": ..., "pod": ...}`` for ``name``; a part that could not be had says
    why in its place (``{"error": ...}``) instead of vanishing."""
    if isinstance(instance, BaseModel):
        inst: Any = instance.model_dump(mode="json", exclude_none=True)
    elif instance is not None:
        inst = dict(instance)
    else:
        inst = {"error": instance_error or "not known to the backend"}
    doc: dict[str, Any] = {"name": name, "instance": inst}
    if pod is not None:
        doc["pod"] = redact(pod)
    elif pod_note:
        doc["pod"] = {"note": pod_note}
    return doc


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as literal blocks (a log tail stays readable)."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(doc: Mapping[str, Any]) -> str:
    return yaml.dump(
        dict(doc), Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


async def fetch_raw(
    name: str,
    *,
    backend: Any | None,
    kube: Any | None,
    is_pod: bool,
    known: BaseModel | None = None,
) -> dict[str, Any]:
    """The raw document of ``name``: the backend's current record (``known``, what the
    console last saw, when there is no backend or it fails) and the pod's manifest when
    ``name`` is a pod and Kubernetes is configured. Never raises for a fetch that fails:
    the failure is written where the part would be."""
    from locotui.data.errors import DataError

    instance: BaseModel | None = None
    error: str | None = None
    if backend is not None:
        try:
            instance = await backend.get_instance(name)
        except DataError as exc:
            error = f"{exc} (showing what this console last saw)" if known else str(exc)
            instance = known
    else:
        instance = known
    pod: dict[str, Any] | None = None
    note: str | None = None
    if is_pod and kube is not None:
        try:
            pod = await kube.pod_manifest(name)
        except DataError as exc:
            note = str(exc)
    elif is_pod:
        note = "no Kubernetes access (no kubeconfig): the pod is not shown"
    doc = raw_document(name, instance, pod, instance_error=error, pod_note=note)
    if error and instance is not None:
        doc["instance_error"] = error
    return doc
