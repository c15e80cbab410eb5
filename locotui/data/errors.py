"""Typed errors of the data layer, each with a one-line message for the operator.

Every client (backend HTTP, Kubernetes API, Prometheus) maps its failures onto these, so
the UI and the scriptable commands handle one hierarchy: show ``str(exc)`` (already a
complete sentence, no traceback) and, for commands, turn the class into an exit code
(see :func:`exit_code_for`).
"""

from __future__ import annotations

__all__ = [
    "BadResponse",
    "DataError",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ReadOnly",
    "ServerError",
    "Unauthorized",
    "Unreachable",
    "exit_code_for",
]


class DataError(Exception):
    """Base class: ``str(exc)`` is the one line to show; ``source`` says who failed."""

    def __init__(self, message: str, *, source: str = "backend", status: int | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.status = status

    def __str__(self) -> str:
        return self.message


class Unreachable(DataError):
    """Could not talk to the service at all (refused, DNS, timeout, connection reset)."""


class Unauthorized(DataError):
    """HTTP 401: no or malformed credentials."""


class Forbidden(DataError):
    """HTTP 403: credentials are valid but not allowed (wrong control token, RBAC denial).

    ``message`` carries the server's own explanation (for Kubernetes the RBAC text, e.g.
    ``pods "x" is forbidden: User "u" cannot delete resource "pods" ...``).
    """


class NotFound(DataError):
    """HTTP 404: the instance, pod or StatefulSet does not exist."""


class RateLimited(DataError):
    """HTTP 429: try again after ``retry_after`` seconds (from the Retry-After header)."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, source: str = "backend"
    ) -> None:
        super().__init__(message, source=source, status=429)
        self.retry_after = retry_after


class ServerError(DataError):
    """HTTP 5xx or another unexpected status: the service failed to do it."""


class BadResponse(DataError):
    """The service answered something we cannot parse (wrong shape, not JSON)."""


class ReadOnly(DataError):
    """A mutation was attempted while the console runs read-only."""

    def __init__(self, message: str = "read-only mode: actions are disabled") -> None:
        super().__init__(message, source="locotui")


# Exit codes of the scriptable commands (documented in docs/locotui-config.md).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNREACHABLE = 2
EXIT_FORBIDDEN = 3
EXIT_NOT_FOUND = 4
EXIT_NEEDS_PERSON = 5
"""``status`` only: some instance needs a person (the automatic recovery gave up on it);
a code of its own, since 3 already means forbidden for every command."""


def exit_code_for(exc: BaseException) -> int:
    """The command exit code for an error: 2 unreachable, 3 forbidden/read-only, 4 not found."""
    if isinstance(exc, Unreachable):
        return EXIT_UNREACHABLE
    if isinstance(exc, Unauthorized | Forbidden | ReadOnly):
        return EXIT_FORBIDDEN
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    return EXIT_FAILED
