"""Where things are: the repository, and the programs of the environment running the tests."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The console scripts (loco-backend, locotui) installed next to this interpreter.
BIN = Path(sys.executable).parent
