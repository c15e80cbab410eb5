"""Opening the console: the checks before it, then the Textual app until it quits.

What stops the console from opening, with one line on stderr and exit status 2:

* a backend URL whose host does not resolve (a typo, not an outage);
* a kubeconfig or context that was asked for explicitly (``--context``, ``--kubeconfig``,
  ``KUBECONFIG``, the config file) but cannot be loaded;
* nothing to show at all: the backend does not answer *and* the cluster that was asked
  for does not answer either (both reasons are on the line);
* given a context or namespace and no backend URL (the backend is then reached through
  a port-forward to its pod), no Ready backend pod in the namespace, or a port-forward
  to it refused (a Role without ``pods/portforward``).

What does not: a backend that is merely down (refused, timing out) opens the console
with the banner and keeps reconnecting, showing pods from Kubernetes while it can; a
cluster that does not answer while the backend does opens the console with the
Kubernetes connection marked in the header (logs and restarts through it will fail with
the reason). Without any kubeconfig the console runs on the backend alone.

Both ``locotui`` and ``locotui demo`` open it through :func:`run_console`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from locotui import config

EXIT_USAGE = 2


def usage_error(message: str) -> int:
    """Says why in one line on stderr; the exit status for it."""
    print(f"locotui: error: {message}", file=sys.stderr, flush=True)
    return EXIT_USAGE


class _Usage(Exception):
    """Stops the console from opening; ``str()`` is the one line."""


def _check_backend_host(url: str) -> None:
    """A host that does not resolve is a wrong URL, not an outage worth waiting for."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise _Usage(
            f"backend URL {url}: host {host!r} does not resolve ({exc.strerror}); "
            "check --backend / LOCOTUI_BACKEND_URL"
        ) from None


def _kube_requested(settings: config.Settings, env: Mapping[str, str]) -> bool:
    explicit = any(k in settings.sources for k in ("kubeconfig", "kube_context", "namespace"))
    return explicit or bool(env.get("KUBECONFIG", "").strip())


def backend_through_cluster(settings: config.Settings) -> bool:
    """Given a context or namespace and no backend URL: the backend is reached through a
    port-forward to its pod, so ``locotui --context C -n NS`` is the whole command."""
    return "backend_url" not in settings.sources and any(
        k in settings.sources for k in ("kube_context", "namespace")
    )


def _listener() -> socket.socket:
    """A listening socket on a free loopback port, bound before the console's loop runs
    (the backend URL must be known when the client is made)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


def _connect_kube(settings: config.Settings, env: Mapping[str, str]) -> tuple[Any, str | None]:
    """(KubeClient or None, note for the operator)."""
    from locotui.commands._common import kube_configured

    if not kube_configured(settings, env):
        # Nothing to connect to: do not pay for importing the Kubernetes client (most of a
        # second, a third of the console's start) only to be told so.
        home = Path.home() / ".kube" / "config"
        return None, (
            f"Kubernetes not used: kubeconfig {home} not found; give --kubeconfig FILE or "
            "set KUBECONFIG (or run inside a pod with a service account)"
        )
    from locotui.data.kube_client import KubeClient, KubeConfigError

    requested = _kube_requested(settings, env)
    try:
        return KubeClient.connect(
            settings.kubeconfig, settings.kube_context, settings.namespace, env
        ), None
    except KubeConfigError as exc:
        if requested:
            raise _Usage(str(exc)) from None
        return None, f"Kubernetes not used: {exc}"


async def _preflight(
    settings: config.Settings, kube: Any, *, through_cluster: bool = False
) -> tuple[str | None, str | None]:
    """(backend error, kube error) from one quick look at each, at most ~3 s; None where
    nothing was found wrong or the look was not needed (below). Through the cluster, the
    backend is looked for as a Ready pod instead."""
    from locotui.data.backend_client import BackendClient
    from locotui.data.errors import DataError

    async def backend() -> str | None:
        if through_cluster:
            if kube is None:
                return "no backend URL and no Kubernetes access to find the backend"
            try:
                async with asyncio.timeout(3.0):
                    await kube.backend_endpoint(try_forward=True)
            except TimeoutError:
                return f"Kubernetes API {kube.server} did not answer within 3 s"
            except DataError as exc:
                return str(exc)
            return None
        async with BackendClient(settings.backend_url, timeout=2.5) as client:
            try:
                await client.health()
            except DataError as exc:
                return str(exc)
        return None

    async def cluster() -> str | None:
        try:
            async with asyncio.timeout(3.0):
                await kube.list_pods()
        except TimeoutError:
            return f"Kubernetes API {kube.server} did not answer within 3 s"
        except DataError as exc:
            return str(exc)
        return None

    if kube is None:
        if through_cluster:
            return await backend(), None
        # The backend's verdict alone stops nothing (the console opens and retries it):
        # no reason to wait for a backend that does not answer.
        return None, None
    # The cluster answering is enough to open: the console shows its pods at once and keeps
    # trying the backend, so a backend that does not answer does not hold them back. The
    # backend's verdict is needed only when the cluster fails too, or when the backend is
    # reached through the cluster.
    checks = {asyncio.ensure_future(backend()): "b", asyncio.ensure_future(cluster()): "k"}
    errors: dict[str, str | None] = {}
    try:
        pending = set(checks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                errors[checks[task]] = task.result()
            if "k" in errors and errors["k"] is None and not through_cluster:
                # Through the cluster the backend's look is the cluster's own (a Ready
                # pod, a port-forward): what it finds stops the console, so wait for it.
                break
    finally:
        for task in checks:
            task.cancel()
        await asyncio.gather(*checks, return_exceptions=True)
        await kube.aclose()  # this loop ends here; the console's own makes a new client
    return errors.get("b"), errors.get("k")


def run_console(
    settings: config.Settings,
    env: Mapping[str, str],
    *,
    kubernetes: bool = True,
    notices: AsyncIterator[str] | None = None,
) -> int:
    """Opens the console (after the checks in the module docstring); returns the exit code.

    ``kubernetes=False`` leaves the cluster out entirely, whatever kubeconfig is around
    (``locotui demo``: its fleet runs on this machine). ``notices`` are lines the console
    shows as alerts as they come (the demo's processes ending).
    """
    sock: socket.socket | None = None
    try:
        through_cluster = kubernetes and backend_through_cluster(settings)
        if through_cluster:
            sock = _listener()
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            settings = settings.model_copy(update={"backend_url": url})
        _check_backend_host(settings.backend_url)
        kube, kube_note = _connect_kube(settings, env) if kubernetes else (None, None)
        backend_error, kube_error = asyncio.run(
            _preflight(settings, kube, through_cluster=through_cluster)
        )
        if through_cluster and backend_error:
            # Nothing else would say where the backend is: stop with the reason.
            raise _Usage(
                f"{backend_error}" + (f"; and Kubernetes: {kube_error}" if kube_error else "")
            )
        if backend_error and kube_error and _kube_requested(settings, env):
            raise _Usage(f"{backend_error}; and Kubernetes: {kube_error}")
        if kube_error:
            kube_note = kube_error
    except _Usage as exc:
        if sock is not None:
            sock.close()
        return usage_error(str(exc))

    from locotui.data.backend_client import BackendClient
    from locotui.ui.app import LocoApp

    state_home = env.get("XDG_STATE_HOME", "").strip()
    state = (
        Path(state_home)
        if state_home and os.path.isabs(state_home)
        else (Path.home() / ".local" / "state")
    )
    app = LocoApp(
        settings,
        backend=BackendClient(settings.backend_url, token=settings.control_token),
        kube=kube,
        kube_note=kube_note,
        context=kube.context if kube is not None else None,
        audit_path=state / "locotui" / "audit.jsonl",
        notices=notices,
        backend_forward=sock,
    )
    app.run()  # the app closes its Kubernetes client itself, on its own loop
    return app.return_code or 0
