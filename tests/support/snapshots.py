"""Where the console's SVG snapshots live, and the sizes every view is drawn at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_textual_snapshot

# Every view at the smallest terminal it must work in and at a roomy one.
SIZES = [(80, 24), (160, 50)]


class SnapshotsHere(pytest_textual_snapshot.SVGImageExtension):
    """Keeps the SVGs in tests/locotui/snapshots/<module>/ (not syrupy's __snapshots__)."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        return str(Path(test_location.filepath).parent / "snapshots" / test_location.basename)
