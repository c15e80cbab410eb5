"""The console's settings as command-line options, and where its config file is.

This is what ``locotui --help`` needs, kept apart from the settings model
(``locotui.config``) so that printing help does not load pydantic-settings. Each flag's
``dest`` is the :class:`locotui.config.Settings` field it sets; the model validates.

``add_arguments`` uses ``argparse.SUPPRESS`` defaults, so it may be added to the main
parser *and* to each subcommand's parser without one overwriting the other.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_BACKEND_URL = "http://127.0.0.1:8081"
ENV_PREFIX = "LOCOTUI_"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the global options (all with SUPPRESS defaults: absent means "not given").

    Each ``dest`` is the :class:`locotui.config.Settings` field the flag sets; the
    validation is the model's.
    """
    g = parser.add_argument_group("console settings (flags > LOCOTUI_* env > config file)")
    sup = argparse.SUPPRESS
    g.add_argument(
        "--config",
        default=sup,
        metavar="FILE",
        help="config file (LOCOTUI_CONFIG; default $XDG_CONFIG_HOME/locotui/config.toml)",
    )

    def option(flag: str, dest: str, text: str, **kw: Any) -> None:
        env = f"{ENV_PREFIX}{'CONTEXT' if dest == 'kube_context' else dest.upper()}"
        g.add_argument(flag, dest=dest, default=sup, help=f"{text} ({env})", **kw)

    flip = {"action": argparse.BooleanOptionalAction}
    option("--backend-url", "backend_url", f"loco-backend base URL ({DEFAULT_BACKEND_URL})")
    option(
        "--kubeconfig",
        "kubeconfig",
        "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, like kubectl)",
    )
    option("--context", "kube_context", "kubeconfig context (default: the current context)")
    option(
        "--namespace",
        "namespace",
        "Kubernetes namespace (default: the context's namespace, then 'default')",
    )
    option(
        "--prometheus-url",
        "prometheus_url",
        "Prometheus base URL for fps/status history (default: none, session history)",
    )
    option("--read-only", "read_only", "disable every action (reset, restart)", **flip)
    option("--thumbnails", "thumbnails", "show live thumbnails in tiles (default: on)", **flip)
    option("--thumbnail-interval", "thumbnail_interval", "seconds between thumbnail refreshes (1)")
    option("--theme", "theme", "Textual theme (textual-dark)")
    option("--view", "default_view", "start in 'tiles' or 'table'")
    option("--tail-lines", "log_tail_lines", "log lines fetched when a log view opens (200)")


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME", "").strip()
    # XDG says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "locotui" / "config.toml"
