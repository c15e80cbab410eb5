"""Server-sent events as the project writes them: one framing and one keep-alive, used by
the supervisor's status stream and the backend's fleet stream alike.

An event is ``event:``, ``id:`` and one ``data:`` line (compact JSON has no line breaks),
ended by a blank line; a keep-alive is a comment line, which every SSE client skips but
which proves the link is alive to a reader that watches for silence.
"""

from __future__ import annotations

KEEPALIVE = b": keep-alive\n\n"


def event(name: str, ident: int, data: bytes) -> bytes:
    """One event; ``data`` must be a single line (compact JSON is)."""
    return b"event: %s\nid: %d\ndata: %s\n\n" % (name.encode(), ident, data)


def retry(milliseconds: int) -> bytes:
    """Tells a reconnecting client how long to wait first."""
    return b"retry: %d\n\n" % milliseconds
