"""Errors of the stream that reach an HTTP client (no GStreamer import, so the HTTP layer
can catch them without loading GStreamer)."""


class ViewerError(Exception):
    """A WebRTC viewer could not be added or answered; the message is for the browser."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status
