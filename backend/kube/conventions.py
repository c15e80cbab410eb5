"""Kubernetes names the project relies on (DESIGN.md's conventions; seed task 1.3).

Kept apart from the rest of the layer so that static and local modes, and command lines
that only print help, never import the Kubernetes client (a second of start-up and about
20 MiB of resident memory they do not need).
"""

from __future__ import annotations

from pathlib import Path

LABEL_SELECTOR = "app.kubernetes.io/component=emulator,app.kubernetes.io/part-of=lego-loco-cluster"
"""Emulator pods carry component=emulator and part-of=lego-loco-cluster."""

BACKEND_SELECTOR = "app.kubernetes.io/component=backend,app.kubernetes.io/part-of=lego-loco-cluster"
"""The backend's pods (the chart's ``loco.backend.selectorLabels``)."""
BACKEND_PORT_NAME = "http"
DEFAULT_BACKEND_PORT = 8081

ANNOTATION_HEALTH_URL = "lego-loco.io/health-url"
"""Overrides the supervisor's base URL (normally http://<pod IP>:<port named health>)."""
ANNOTATION_VNC_ADDRESS = "lego-loco.io/vnc-address"
"""Overrides the VNC address (normally <pod IP>:<port named vnc>)."""
ANNOTATION_LOG_FILE = "lego-loco.io/log-file"
"""A log file on the backend's machine (pods bound to local supervisors in tests/demos)."""

DEFAULT_HEALTH_PORT = 8080
DEFAULT_VNC_PORT = 5900

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
"""The pod-template annotation ``kubectl rollout restart`` stamps."""

SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
"""Where Kubernetes mounts the pod's namespace."""
