"""Fixtures of the console's tests."""

from __future__ import annotations

import pytest
import pytest_textual_snapshot

from tests.support.snapshots import SnapshotsHere


@pytest.fixture(autouse=True)
def _snapshot_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", SnapshotsHere)
