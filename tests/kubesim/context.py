"""What every request handler needs: the store, the cluster, auth, faults, and errors."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tests.kubesim.auth import Authenticator
from tests.kubesim.controller import Cluster
from tests.kubesim.faults import Faults
from tests.kubesim.objects import Obj, status
from tests.kubesim.resources import ResourceType
from tests.kubesim.store import Store
from tests.kubesim.timing import Timing


class ApiError(Exception):
    """Raised by handlers; becomes a metav1.Status response with this code and reason."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> Obj:
        return status(self.code, self.reason, self.message, self.details)


def not_found(rt: ResourceType, name: str) -> ApiError:
    details: Obj = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', details)


def conflict(rt: ResourceType, name: str) -> ApiError:
    details: Obj = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details,
    )


def already_exists(rt: ResourceType, name: str) -> ApiError:
    details: Obj = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


@dataclass
class Context:
    store: Store
    cluster: Cluster
    auth: Authenticator
    faults: Faults
    timing: Timing
    server_address: str = "127.0.0.1:0"
    # Set by the server: take the API down for N seconds (used by the admin endpoint).
    go_down: Callable[[float], Awaitable[None]] | None = None
    open_streams: set[object] = field(default_factory=set)
    # Recent (method, path?query) requests, so tests can assert what a client asked for.
    requests: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=5000))
