"""Bearer-token check for mutations.

Never open by default: with no control token configured, every mutation is refused (403
``control_disabled``). A missing or malformed ``Authorization`` header is 401 (with
``WWW-Authenticate: Bearer``), a wrong token 403. The comparison is constant-time
(``hmac.compare_digest``) so response timing does not reveal how much of a guess matched.
"""

from __future__ import annotations

from backend.api.errors import ApiError
from emulator.auth import bearer_token, token_matches


def authorize(expected: str | None, header: str | None) -> None:
    """Raises :class:`ApiError` unless ``header`` carries the expected bearer token."""
    if not expected:
        raise ApiError(
            403,
            "control_disabled",
            "mutations are disabled: the backend has no control token "
            "(set LOCO_CONTROL_TOKEN or LOCO_CONTROL_TOKEN_FILE)",
        )
    token = bearer_token(header)
    if token is None:
        raise ApiError(
            401,
            "unauthorized",
            "missing bearer token: send 'Authorization: Bearer <control token>'",
            headers={"WWW-Authenticate": 'Bearer realm="loco-backend"'},
        )
    if not token_matches(token, expected):
        raise ApiError(403, "forbidden", "the control token is wrong")
