"""Kubernetes names the backend relies on (DESIGN.md's conventions; seed task 1.3).

Kept apart from ``discovery/kubernetes.py`` so static and local modes never import the
Kubernetes client (about 20 MiB of resident memory they do not need).
"""

from __future__ import annotations

LABEL_SELECTOR = "app.kubernetes.io/component=emulator,app.kubernetes.io/part-of=lego-loco-cluster"
"""Emulator pods carry component=emulator and part-of=lego-loco-cluster."""

ANNOTATION_HEALTH_URL = "lego-loco.io/health-url"
"""Overrides the supervisor's base URL (normally http://<pod IP>:<port named health>)."""
ANNOTATION_VNC_ADDRESS = "lego-loco.io/vnc-address"
"""Overrides the VNC address (normally <pod IP>:<port named vnc>)."""
ANNOTATION_LOG_FILE = "lego-loco.io/log-file"
"""A log file on the backend's machine (pods bound to local supervisors in tests/demos)."""

DEFAULT_HEALTH_PORT = 8080
DEFAULT_VNC_PORT = 5900
