"""Settings of one backend process (built by ``backend.cli`` from flags and environment)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backend.kube.conventions import LABEL_SELECTOR, SERVICE_ACCOUNT_NAMESPACE_FILE
from backend.models import InstanceSource

DEFAULT_PORT = 8081
DEFAULT_LOCAL_DIR = Path(".state")


@dataclass(frozen=True)
class Settings:
    discovery: InstanceSource = InstanceSource.STATIC
    host: str = "0.0.0.0"  # noqa: S104 - in a pod the Service reaches the pod IP
    port: int = DEFAULT_PORT
    # discovery sources
    static_config: Path | None = None
    static_reload_interval: float = 2.0
    local_dir: Path = DEFAULT_LOCAL_DIR
    local_scan_interval: float = 1.0
    namespace: str | None = None
    """From ``--namespace`` only; the environment is consulted by namespace resolution."""
    kubeconfig: Path | None = None
    context: str | None = None
    label_selector: str = LABEL_SELECTOR
    service_account_namespace_file: Path = SERVICE_ACCOUNT_NAMESPACE_FILE
    resync_seconds: float = 300.0
    kube_request_timeout: float = 10.0
    # probing and breakers
    probing: bool = True
    probe_interval: float = 1.0
    probe_timeout: float = 2.0
    probe_concurrency: int = 32
    breaker_threshold: int = 3
    breaker_reset: float = 5.0
    # API behaviour
    control_token: str | None = None
    action_interval: float = 5.0
    thumbnail_ttl: float = 1.0
    sse_keepalive: float = 15.0
    access_log: bool = True
