"""What counts as bad, and how long to wait, for each machine profile.

The two profiles draw very differently, so one set of thresholds cannot serve both:

* ``testimage`` draws its frame counter 30 times a second for ever. A picture that stops
  changing for 10 s is certainly stuck, a soft reset reboots it in well under a second,
  and it is drawing again within 2 s.
* ``win98`` is Windows 98 running Lego Loco. Loco animates constantly once it runs, but a
  Windows desktop, a dialog box or a boot screen can legitimately hold still: the taskbar
  clock redraws only once a minute. A still picture is therefore only suspicious after
  three minutes (two missed clock ticks and a margin), and "bad" (degraded, unhealthy)
  must last a minute before anything is done, because Windows 98 shows a blank or
  unchanging screen while it boots. A reset reboots Windows, which takes 60-90 s under
  TCG, so the policy watches it for four minutes before it escalates.

An incident closes only after the instance has been good for ``recovered_for``, and that
is longer than a relapse takes to be seen: a guest that freezes again right after a reset
reads 0 frames/s a few seconds later (3 s median, measured: docs/performance.md) and
counts as frozen ``frozen_for`` after that. Were the incident closed sooner, a guest that
keeps relapsing would be reset again and again as new incidents instead of climbing to a
restart (the hourly budget would stop it, but only after three resets that did not help).

The numbers are defaults: every one can be set per profile (``--remediation-*`` flags,
Helm ``backend.remediation``), and docs/recovery.md explains how to tune them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    bad_for: float
    """Seconds an instance must stay bad before the first action (a soft reset)."""
    frozen_for: float
    """Seconds of a measured 0 frames/s (a still picture) that make a running guest bad."""
    watch_reset: float
    """Seconds to watch after a soft reset before escalating to a restart."""
    watch_restart: float
    """Seconds to watch after a restart before giving up (needs a person)."""
    recovered_for: float
    """Seconds of good health that close an incident."""


PROFILES: dict[str, Thresholds] = {
    "testimage": Thresholds(
        bad_for=10.0, frozen_for=10.0, watch_reset=20.0, watch_restart=30.0, recovered_for=30.0
    ),
    "win98": Thresholds(
        bad_for=60.0, frozen_for=180.0, watch_reset=240.0, watch_restart=300.0, recovered_for=300.0
    ),
}
DEFAULT_PROFILE = "win98"
"""Unknown or unreported profiles get the patient thresholds: acting too late is cheaper
than resetting a guest that was fine."""


def thresholds_for(profile: str | None, table: dict[str, Thresholds] | None = None) -> Thresholds:
    table = table or PROFILES
    return table.get(profile or DEFAULT_PROFILE) or table[DEFAULT_PROFILE]
