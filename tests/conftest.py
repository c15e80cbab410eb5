"""Fixtures shared by several test directories (the rest live in tests/support/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tmux import Tmux


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Tmux]:
    """A private tmux server with one session, gone after the test."""
    tmux = Tmux(tmp_path)
    try:
        yield tmux
    finally:
        tmux.kill_server()
