"""``python -m locotui``: the same as the ``locotui`` command."""

import sys

from locotui.cli import main

sys.exit(main())
