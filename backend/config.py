"""Settings of one backend process: flags, then ``LOCO_*`` environment variables, then
defaults, read the way all three programs read theirs (``emulator.layered_settings``).

``loco-backend`` feeds the model its parsed flags (``backend.cli``); a model made
directly takes only the values given. The control token never comes from a flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from backend.kube.conventions import LABEL_SELECTOR, SERVICE_ACCOUNT_NAMESPACE_FILE
from backend.models import InstanceSource
from emulator.jsonlog import parse_level
from emulator.layered_settings import (
    Env,
    LayeredSettings,
    between,
    boolean,
    real_number,
    whole_number,
)

DEFAULT_PORT = 8081
DEFAULT_LOCAL_DIR = Path(".state")


def _port(value: Any) -> int:
    try:
        port = whole_number(value)
    except ValueError:
        raise ValueError(f"={value!r} is not a port number (0-65535)") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"={value!r} is out of range (0-65535)")
    return port


def _discovery(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return InstanceSource(value.strip().lower())
        except ValueError:
            choices = ", ".join(s.value for s in InstanceSource)
            raise ValueError(f"={value!r} is not one of {choices}") from None
    return value


def _positive(value: Any) -> float:
    number = real_number(value, "seconds")
    if number <= 0:
        raise ValueError(f"must be greater than 0, got {value!r}")
    return number


def _count(value: Any) -> int:
    number = whole_number(value)
    if number < 1:
        raise ValueError(f"must be at least 1, got {value!r}")
    return number


def _level(value: Any) -> Any:
    if value is not None:
        parse_level(value, where="")
    return value


Positive = Annotated[float, BeforeValidator(_positive)]
Count = Annotated[int, BeforeValidator(_count)]
Flag = Annotated[bool, BeforeValidator(boolean)]

_THRESHOLD_KEYS = ("bad_for", "frozen_for", "watch_reset", "watch_restart", "recovered_for")


def _thresholds(value: Any) -> dict[str, dict[str, float]]:
    """``PROFILE.KEY=SECONDS`` pairs, comma-separated, e.g. ``win98.frozen_for=240``."""
    if isinstance(value, dict):
        return value
    out: dict[str, dict[str, float]] = {}
    for item in str(value or "").split(","):
        if not item.strip():
            continue
        name, sep, seconds = item.partition("=")
        profile, dot, key = name.strip().partition(".")
        if not sep or not dot or key not in _THRESHOLD_KEYS:
            raise ValueError(
                f": {item.strip()!r} is not PROFILE.KEY=SECONDS with KEY one of "
                f"{', '.join(_THRESHOLD_KEYS)} (e.g. win98.frozen_for=240)"
            )
        out.setdefault(profile, {})[key] = _positive(seconds)
    return out


class Settings(LayeredSettings):
    """What one backend runs with (``--help`` and docs/backend.md say what each does)."""

    discovery: Annotated[InstanceSource, Env("LOCO_DISCOVERY"), BeforeValidator(_discovery)] = (
        InstanceSource.KUBERNETES
    )
    host: Annotated[str, Env("LOCO_BACKEND_HOST")] = "0.0.0.0"  # noqa: S104 - in a pod the Service reaches the pod IP
    port: Annotated[int, Env("LOCO_BACKEND_PORT"), BeforeValidator(_port)] = DEFAULT_PORT
    # discovery sources
    static_config: Annotated[Path | None, Env("LOCO_STATIC_CONFIG")] = None
    static_reload_interval: Positive = 2.0
    local_dir: Annotated[Path, Env("LOCO_LOCAL_DIR")] = DEFAULT_LOCAL_DIR
    local_scan_interval: Positive = 1.0
    namespace: str | None = None
    """From ``--namespace`` only; the environment is consulted by namespace resolution."""
    kubeconfig: Path | None = None
    context: str | None = None
    label_selector: str = LABEL_SELECTOR
    service_account_namespace_file: Annotated[Path, Env("LOCO_SERVICE_ACCOUNT_NAMESPACE_FILE")] = (
        SERVICE_ACCOUNT_NAMESPACE_FILE
    )
    resync_seconds: Positive = 300.0
    kube_request_timeout: Positive = 10.0
    # probing and breakers
    probing: bool = True
    streaming: bool = True
    """Hold each supervisor's status stream open (probe only those without one)."""
    probe_interval: Positive = 1.0
    probe_timeout: Positive = 2.0
    probe_concurrency: Count = 32
    breaker_threshold: Count = 3
    breaker_reset: Positive = 5.0
    # API behaviour
    control_token: str | None = Field(default=None, repr=False)
    """From LOCO_CONTROL_TOKEN(_FILE) only (``read_control_token``), never a flag."""
    action_interval: Positive = 5.0
    thumbnail_ttl: Positive = 1.0
    sse_keepalive: Positive = 15.0
    access_log: bool = True
    # automatic recovery (docs/recovery.md)
    remediation: Annotated[Flag, Env("LOCO_REMEDIATION")] = False
    remediation_dry_run: Annotated[Flag, Env("LOCO_REMEDIATION_DRY_RUN")] = False
    remediation_max_actions: Annotated[Count, Env("LOCO_REMEDIATION_MAX_ACTIONS")] = 3
    remediation_max_fraction: Annotated[
        float,
        Env("LOCO_REMEDIATION_MAX_FRACTION"),
        BeforeValidator(between(0.01, 1, "of the fleet")),
    ] = 0.25
    remediation_cooldown: Annotated[Positive, Env("LOCO_REMEDIATION_COOLDOWN")] = 15.0
    remediation_thresholds: Annotated[
        dict[str, dict[str, float]],
        Env("LOCO_REMEDIATION_THRESHOLDS"),
        BeforeValidator(_thresholds),
    ] = Field(default_factory=dict)
    remediation_interval: Positive = 1.0
    # One acting replica among several: a Lease in the backend's namespace.
    lease_name: Annotated[str, Env("LOCO_LEASE_NAME")] = "lego-loco-remediation"
    lease_duration: Annotated[
        float, Env("LOCO_LEASE_DURATION"), BeforeValidator(between(3, 600, "seconds"))
    ] = 15.0
    identity: Annotated[str | None, Env("LOCO_POD_NAME")] = None
    """This replica's name in the election (the pod's name; the host name by default)."""
    # logging
    log_level: Annotated[str | None, Env("LOG_LEVEL"), BeforeValidator(_level)] = None
    log_file: Annotated[Path | None, Env("LOCO_LOG_FILE")] = None
