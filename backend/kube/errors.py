"""Kubernetes API failures as one line: what was asked, and the API server's own words.

Callers decide what a failure means to them (the backend's discovery marks data stale,
the console shows "RBAC denied"), so the classes only sort failures by what can be done
about them: the server answered no (:class:`KubeError` with a status), the server could
not be reached (:class:`KubeUnreachable`), or a watch's version expired (:class:`KubeGone`).
"""

from __future__ import annotations

import json

import aiohttp

# A Status body is a few hundred bytes; an error page from a proxy can be anything.
_ERROR_BODY_LIMIT = 64 * 1024


class KubeConfigError(ValueError):
    """No usable kubeconfig or in-cluster account; ``str()`` says which and what to do."""


class KubeError(Exception):
    """The API server answered with an error status (or could not be asked)."""

    def __init__(
        self,
        what: str,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        said = f"API error {status} {reason or ''}".rstrip() + f": {message}" if status else message
        super().__init__(f"{what}: {said}" if what else said)
        self.what = what
        self.message = message
        self.status = status
        self.reason = reason
        self.retry_after = retry_after

    @property
    def client_error(self) -> bool:
        """A 4xx answer: the API works, it said no (not an outage for a breaker)."""
        return self.status is not None and 400 <= self.status < 500


class KubeUnreachable(KubeError):
    """No answer: refused, timed out, broken connection, TLS failure."""


class KubeGone(KubeError):
    """HTTP 410: the resourceVersion a watch resumes from is too old; list again."""


def status_message(body: bytes, fallback: str) -> str:
    """The ``message`` of a Kubernetes ``Status`` body, else the start of the body."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
    except (ValueError, UnicodeDecodeError):
        pass
    text = body.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text[:200] or fallback


async def raise_for_status(resp: aiohttp.ClientResponse, what: str) -> None:
    """Raises the right :class:`KubeError` for a non-2xx answer (reading a bounded body)."""
    if resp.status < 400:
        return
    try:
        body = await resp.content.read(_ERROR_BODY_LIMIT)
    except (TimeoutError, aiohttp.ClientError):
        body = b""
    finally:
        resp.release()
    message = status_message(body, resp.reason or f"HTTP {resp.status}")
    retry_after = None
    if resp.status == 429:
        try:
            retry_after = float(resp.headers.get("Retry-After", ""))
        except ValueError:
            retry_after = None
    kind = KubeGone if resp.status == 410 else KubeError
    raise kind(what, message, status=resp.status, reason=resp.reason, retry_after=retry_after)


def unreachable(what: str, server: str, exc: BaseException) -> KubeUnreachable:
    """A transport failure as one line naming the server and the cause."""
    if isinstance(exc, TimeoutError):
        cause = "timed out"
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = f"TLS certificate not trusted ({exc.certificate_error})"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, ConnectionRefusedError):
            cause = "connection refused"
        else:
            cause = (os_error.strerror or str(os_error)) if os_error else str(exc)
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        cause = "connection broken"
    else:
        cause = str(exc).split("\n")[0][:200] or type(exc).__name__
    return KubeUnreachable(what, f"Kubernetes API {server} unreachable: {cause}")


def describe(exc: BaseException) -> str:
    """One line for any failure met talking to the API."""
    if isinstance(exc, KubeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
