"""The HTTP API of the backend (FastAPI): app factory, routes, auth, limits, streams."""

from backend.api.app import create_app

__all__ = ["create_app"]
