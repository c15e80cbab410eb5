"""Bearer-token checks for state-changing requests."""

from __future__ import annotations

import hmac


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison, so response timing does not leak the token."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
