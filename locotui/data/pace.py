"""How often the console repaints and fetches pictures, changed at run time (``+``/``-``).

A ladder of steps, each a (repaint interval, picture interval) pair: ``+`` goes one step
faster, ``-`` one slower. Slower steps are for a slow link or a busy terminal (fewer
bytes written), faster ones for watching a guest closely. The repaint interval is a
floor: the console still paces itself by fleet size on top of it
(:func:`locotui.ui.loops.render_interval`). The configured ``thumbnail_interval`` is
where it starts, even between two steps.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STEPS", "Pace"]

STEPS: tuple[tuple[float, float], ...] = (
    (0.1, 0.2),
    (0.1, 0.5),
    (0.1, 1.0),
    (0.25, 2.0),
    (0.5, 5.0),
    (1.0, 10.0),
    (2.0, 30.0),
    (5.0, 60.0),
)
"""(seconds between repaints at most, seconds between pictures), fastest first."""


@dataclass
class Pace:
    refresh: float
    """Seconds between two repaints, at least."""
    pictures: float
    """Seconds between two pictures of one tile."""

    @classmethod
    def starting_at(cls, thumbnail_interval: float) -> Pace:
        """The step whose picture interval is the configured one, or the configured one
        with the repaint interval of the nearest step below it."""
        refresh = next((r for r, p in reversed(STEPS) if p <= thumbnail_interval), STEPS[0][0])
        return cls(refresh, thumbnail_interval)

    def faster(self) -> bool:
        """To the next step with more pictures; False when none is faster."""
        quicker = [i for i, (_, pictures) in enumerate(STEPS) if pictures < self.pictures]
        return bool(quicker) and self._set(quicker[-1])

    def slower(self) -> bool:
        """To the next step with fewer pictures; False when none is slower."""
        calmer = [i for i, (_, pictures) in enumerate(STEPS) if pictures > self.pictures]
        return bool(calmer) and self._set(calmer[0])

    def _set(self, i: int) -> bool:
        refresh, pictures = STEPS[i]
        changed = (refresh, pictures) != (self.refresh, self.pictures)
        self.refresh, self.pictures = refresh, pictures
        return changed

    def text(self) -> str:
        """``⟳10/s ▣1s``: repaints a second, seconds between pictures."""
        rate = 1 / self.refresh
        rate_text = f"{rate:g}/s" if rate >= 1 else f"1/{self.refresh:g}s"
        return f"⟳{rate_text} ▣{self.pictures:g}s"
