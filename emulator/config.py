"""Settings of one supervisor: flags, then ``LOCO_*`` environment variables, then defaults.

The model is read the way all three programs read theirs (``emulator.layered_settings``);
``loco-emulator run`` feeds it the parsed flags. The control token never comes from a flag.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, InstanceOf, model_validator

from emulator.errors import SettingsError
from emulator.jsonlog import parse_level
from emulator.layered_settings import (
    Env,
    LayeredSettings,
    between,
    boolean,
    real_number,
    whole_number,
)

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
            raise SettingsError(
                f"--vnc/LOCO_VNC={value!r} is not HOST:DISPLAY (e.g. 127.0.0.1:0 for port 5900)"
            )
        display = int(m["display"])
        if display + VNC_BASE_PORT > 65535:
            raise SettingsError(
                f"--vnc display {display} gives port {display + VNC_BASE_PORT}, above 65535"
            )
        return cls(m["host"], display)


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def check_name(name: str) -> str:
    """Instance names end up in metrics labels, file names and QEMU's -name: keep them to
    what a Kubernetes pod name may contain."""
    if not _NAME_RE.match(name):
        raise SettingsError(
            f"instance name {name!r} is not valid: use letters, digits, '.', '_' and '-' "
            "(at most 63, starting with a letter or digit)"
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
        raise SettingsError(
            f"--fps-sampling/LOCO_FPS_SAMPLING={value!r}: give BURST/PERIOD in seconds with "
            "0.5 <= BURST <= PERIOD, e.g. 2/5 (the default) or 1/10 for less overhead"
        )
    return burst, period


_HOST_PORT_RE = re.compile(r"^(?P<host>[^:\s]+):(?P<port>\d{1,5})$")
_SIZE_RE = re.compile(r"^(?P<width>\d{2,4})x(?P<height>\d{2,4})$")


def parse_destination(value: str) -> tuple[str, int]:
    """``HOST:PORT`` of the RTP receiver, e.g. ``127.0.0.1:5000``."""
    m = _HOST_PORT_RE.match(value.strip())
    if not m or not 0 < int(m["port"]) < 65536:
        raise SettingsError(
            f"--stream-dest/LOCO_STREAM_DEST={value!r} is not HOST:PORT with a UDP port "
            "1-65535 (e.g. 127.0.0.1:5000)"
        )
    return m["host"], int(m["port"])


def parse_size(value: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` of the streamed picture; even numbers, as I420 needs."""
    m = _SIZE_RE.match(value.strip().lower())
    width, height = (int(m["width"]), int(m["height"])) if m else (0, 0)
    if not (m and 64 <= width <= 1920 and 64 <= height <= 1200 and width % 2 == height % 2 == 0):
        raise SettingsError(
            f"--stream-size/LOCO_STREAM_SIZE={value!r}: give WIDTHxHEIGHT with even numbers, "
            "64-1920 by 64-1200 (e.g. 1024x768, what Lego Loco draws)"
        )
    return width, height


def _port(value: Any) -> int:
    port = whole_number(value)
    if not 0 < port < 65536:
        raise ValueError(f"={port} is not a TCP port (1-65535)")
    return port


def _one_of(*choices: str) -> Any:
    def check(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"={value!r}: use {', '.join(choices[:-1])} or {choices[-1]}")
        return value

    return BeforeValidator(check)


def _memory(value: Any) -> int | None:
    if value is None:
        return None
    memory = whole_number(value, "MB")
    if not 8 <= memory <= 65536:
        raise SettingsError(f"memory {memory} MB is out of range (8-65536)")
    return memory


def _hang_limit(value: Any) -> float:
    limit = real_number(value, "seconds")
    if not (limit == 0 or 3 <= limit <= 3600):
        raise SettingsError(
            f"hang limit {limit:g} s: give 0 (off) or 3-3600 seconds "
            "(QMP is probed every second; below 3 s a busy host would look hung)"
        )
    return limit


def _heartbeat(value: Any) -> float:
    seconds = real_number(value, "seconds")
    if not 0.1 <= seconds <= 300:
        raise SettingsError(f"status heartbeat {seconds:g} s: give 0.1-300 seconds")
    return seconds


def _seconds(value: Any) -> float:
    return real_number(value, "seconds")


def _vnc(value: Any) -> Any:
    return VncAddress.parse(value) if isinstance(value, str) else value


def _sampling(value: Any) -> Any:
    return parse_sampling(value) if isinstance(value, str) else value


def _level(value: Any) -> Any:
    if value is not None:
        parse_level(value, where="")
    return value


def _destination(value: Any) -> Any:
    return parse_destination(value) if isinstance(value, str) else value


def _size(value: Any) -> Any:
    return parse_size(value) if isinstance(value, str) else value


def _absolute(path: Path | None) -> Path | None:
    return path.absolute() if path is not None else None


def _optional(check: Any) -> Any:
    return BeforeValidator(lambda value: None if value is None else check(value))


class Settings(LayeredSettings):
    """What one supervisor runs with. ``Settings.load`` (in ``emulator.cli``) reads the
    flags and the environment; a model made directly takes only the values given."""

    disk: Annotated[Path, Env("LOCO_DISK_IMAGE")]
    state_dir: Annotated[Path, Env("LOCO_STATE_DIR"), AfterValidator(_absolute)]
    health_port: Annotated[int, Env("LOCO_HEALTH_PORT"), BeforeValidator(_port)] = 8080
    health_host: Annotated[str, Env("LOCO_HEALTH_HOST")] = "0.0.0.0"  # noqa: S104 - kubelet probes reach the pod IP
    vnc: Annotated[InstanceOf[VncAddress], Env("LOCO_VNC"), BeforeValidator(_vnc)] = VncAddress(
        "127.0.0.1", 0
    )
    profile: Annotated[Profile, Env("LOCO_PROFILE"), _one_of("testimage", "win98")] = "testimage"
    accel: Annotated[Accel, Env("LOCO_ACCEL"), _one_of("auto", "tcg", "kvm")] = "auto"
    memory_mb: Annotated[int | None, Env("LOCO_MEMORY_MB"), BeforeValidator(_memory)] = None
    name: Annotated[str, Env("LOCO_INSTANCE_NAME"), AfterValidator(check_name)] = Field(
        default_factory=socket.gethostname, validate_default=True
    )
    control_token: str | None = Field(default=None, repr=False)
    """From LOCO_CONTROL_TOKEN(_FILE) only (``read_control_token``), never a flag."""
    fresh_overlay: Annotated[bool, Env("LOCO_FRESH_OVERLAY"), BeforeValidator(boolean)] = False
    qemu_binary: Annotated[str, Env("LOCO_QEMU_BINARY")] = "qemu-system-x86_64"
    shutdown_grace: Annotated[float | None, Env("LOCO_SHUTDOWN_GRACE"), _optional(_seconds)] = None
    max_restarts: Annotated[int, Env("LOCO_MAX_RESTARTS"), BeforeValidator(whole_number)] = 5
    log_file: Annotated[Path | None, Env("LOCO_LOG_FILE"), AfterValidator(_absolute)] = None
    log_level: Annotated[str | None, Env("LOG_LEVEL"), BeforeValidator(_level)] = None
    # Frame counting: seconds of screendump sampling per period (see emulator.framerate).
    fps_sampling: Annotated[
        tuple[float, float], Env("LOCO_FPS_SAMPLING"), BeforeValidator(_sampling)
    ] = (2.0, 5.0)
    # QMP silent this long with the process present: QEMU is killed and restarted. 0: never.
    hang_limit: Annotated[float, Env("LOCO_HANG_LIMIT"), BeforeValidator(_hang_limit)] = 15.0
    # Seconds of quiet on a status stream before a keep-alive comment goes out.
    status_heartbeat: Annotated[
        float, Env("LOCO_STATUS_HEARTBEAT"), BeforeValidator(_heartbeat)
    ] = 5.0

    # The live video stream (emulator.stream, docs/stream.md): off unless asked for.
    stream: Annotated[bool, Env("LOCO_STREAM"), BeforeValidator(boolean)] = False
    stream_dest: Annotated[
        tuple[str, int], Env("LOCO_STREAM_DEST"), BeforeValidator(_destination)
    ] = ("127.0.0.1", 5000)
    stream_size: Annotated[tuple[int, int], Env("LOCO_STREAM_SIZE"), BeforeValidator(_size)] = (
        1024,
        768,
    )
    stream_fps: Annotated[
        int, Env("LOCO_STREAM_FPS"), BeforeValidator(between(1, 60, "frames/s", whole=True))
    ] = 30
    stream_bitrate: Annotated[
        int, Env("LOCO_STREAM_BITRATE"), BeforeValidator(between(100, 20000, "kbit/s", whole=True))
    ] = 1500

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if not data.get("disk"):
                raise SettingsError("no disk image: give --disk IMG or set LOCO_DISK_IMAGE")
            if not data.get("state_dir"):
                raise SettingsError(
                    "no state directory: give --state-dir DIR or set LOCO_STATE_DIR"
                )
        return data

    @property
    def fps_burst(self) -> float:
        return self.fps_sampling[0]

    @property
    def fps_period(self) -> float:
        return self.fps_sampling[1]

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
