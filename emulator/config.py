"""Settings of one supervisor, from flags with environment-variable fallbacks."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from emulator.errors import ExitCode, SupervisorError

Profile = Literal["testimage", "win98"]
Accel = Literal["auto", "tcg", "kvm"]

VNC_BASE_PORT = 5900
_VNC_RE = re.compile(r"^(?P<host>[^:\s]+):(?P<display>\d{1,4})$")


@dataclass(frozen=True)
class VncAddress:
    host: str
    display: int

    @property
    def port(self) -> int:
        return VNC_BASE_PORT + self.display

    @property
    def qemu_arg(self) -> str:
        return f"{self.host}:{self.display}"

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, value: str) -> VncAddress:
        m = _VNC_RE.match(value.strip())
        if not m:
            raise SupervisorError(
                f"--vnc/LOCO_VNC={value!r} is not HOST:DISPLAY (e.g. 127.0.0.1:0 for port 5900)",
                ExitCode.USAGE,
            )
        display = int(m["display"])
        if display + VNC_BASE_PORT > 65535:
            raise SupervisorError(
                f"--vnc display {display} gives port {display + VNC_BASE_PORT}, above 65535",
                ExitCode.USAGE,
            )
        return cls(m["host"], display)


@dataclass(frozen=True)
class Settings:
    disk: Path
    state_dir: Path
    health_port: int = 8080
    health_host: str = "0.0.0.0"  # noqa: S104 - kubelet probes reach the pod IP
    vnc: VncAddress = VncAddress("127.0.0.1", 0)
    profile: Profile = "testimage"
    accel: Accel = "auto"
    memory_mb: int | None = None
    name: str = "emulator"
    control_token: str | None = None
    fresh_overlay: bool = False
    qemu_binary: str = "qemu-system-x86_64"
    shutdown_grace: float | None = None
    max_restarts: int = 5
    log_file: Path | None = None
    # Frame counting: seconds of screendump sampling per period (see emulator.framerate).
    fps_burst: float = 2.0
    fps_period: float = 5.0
    # QMP silent this long with the process present: QEMU is killed and restarted. 0: never.
    hang_limit: float = 15.0

    @property
    def effective_memory_mb(self) -> int:
        if self.memory_mb is not None:
            return self.memory_mb
        return 256 if self.profile == "win98" else 32

    @property
    def effective_grace(self) -> float:
        """How long ACPI power-down may take before QEMU is told to quit."""
        if self.shutdown_grace is not None:
            return self.shutdown_grace
        # The test guest has no ACPI handler; waiting for it would only delay every stop.
        return 15.0 if self.profile == "win98" else 0.5


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def check_name(name: str) -> str:
    """Instance names end up in metrics labels, file names and QEMU's -name: keep them to
    what a Kubernetes pod name may contain."""
    if not _NAME_RE.match(name):
        raise SupervisorError(
            f"instance name {name!r} is not valid: use letters, digits, '.', '_' and '-' "
            "(at most 63, starting with a letter or digit)",
            ExitCode.USAGE,
        )
    return name


def parse_sampling(value: str) -> tuple[float, float]:
    """``BURST/PERIOD`` in seconds, e.g. ``2/5``: sample for BURST seconds every PERIOD."""
    burst_s, sep, period_s = value.partition("/")
    try:
        burst, period = float(burst_s), float(period_s)
    except ValueError:
        burst = period = -1.0
    if not sep or not 0.5 <= burst <= period <= 600:
        raise SupervisorError(
            f"--fps-sampling/LOCO_FPS_SAMPLING={value!r}: give BURST/PERIOD in seconds with "
            "0.5 <= BURST <= PERIOD, e.g. 2/5 (the default) or 1/10 for less overhead",
            ExitCode.USAGE,
        )
    return burst, period


def read_token(token: str | None, token_file: str | None) -> str | None:
    """The control token from the environment or a mounted secret file (file wins)."""
    if token_file:
        path = Path(token_file)
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise SupervisorError(
                f"control token file {path}: {exc.strerror}; check LOCO_CONTROL_TOKEN_FILE",
                ExitCode.USAGE,
            ) from exc
        if not value:
            raise SupervisorError(
                f"control token file {path} is empty; write the token into it",
                ExitCode.USAGE,
            )
        return value
    if token is not None and not token.strip():
        raise SupervisorError("LOCO_CONTROL_TOKEN is set but empty; unset it or give a token")
    return token.strip() if token else None


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default
