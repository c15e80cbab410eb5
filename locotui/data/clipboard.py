"""Copying over ssh and tmux: the OSC 52 escape sequence, which asks the terminal the
operator sits at (not the machine the console runs on) to set its clipboard.

tmux handles OSC 52 itself when its ``set-clipboard`` option is ``on`` (it keeps a paste
buffer and passes the sequence on to the outer terminal); with the default ``external``
it ignores an application's sequence, so inside tmux a second copy goes out wrapped in
tmux's passthrough (``ESC Ptmux; ... ESC \\``, which needs ``allow-passthrough on``)
and reaches the outer terminal directly. Setting the same clipboard twice is harmless.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

__all__ = ["MAX_BYTES", "ClipboardError", "in_tmux", "osc52", "osc52_sequences"]

MAX_BYTES = 100_000
"""Larger copies are refused: terminals cut (xterm) or drop (others) long sequences, and
a silently truncated paste is worse than a clear refusal."""


class ClipboardError(ValueError):
    """Nothing to copy, or too much; ``str()`` says which."""


def osc52(text: str) -> str:
    """``ESC ] 52 ; c ; <base64> BEL``: set the clipboard selection to ``text``."""
    if not text:
        raise ClipboardError("nothing to copy")
    data = text.encode("utf-8")
    if len(data) > MAX_BYTES:
        raise ClipboardError(
            f"{len(data)} bytes is too much for the terminal's clipboard (at most {MAX_BYTES}); "
            "save to a file instead"
        )
    return f"\x1b]52;c;{base64.b64encode(data).decode('ascii')}\a"


def tmux_passthrough(sequence: str) -> str:
    """``sequence`` wrapped for tmux's passthrough (every ESC inside doubled)."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def in_tmux(env: Mapping[str, str]) -> bool:
    return bool(env.get("TMUX"))


def osc52_sequences(text: str, *, tmux: bool) -> list[str]:
    """What to write to the terminal to copy ``text``: the plain sequence, and inside
    tmux also the wrapped one. Raises :class:`ClipboardError`."""
    plain = osc52(text)
    return [plain, tmux_passthrough(plain)] if tmux else [plain]
