"""``loco-emulator``: run a supervised emulator, or build the test guest image."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from pathlib import Path

from emulator import jsonlog
from emulator.config import (
    Settings,
    VncAddress,
    check_name,
    env,
    parse_sampling,
    read_token,
)
from emulator.errors import ExitCode, SupervisorError
from emulator.statedir import check_state_dir, lock_state_dir

EPILOG = """\
Every flag of 'run' can also come from the environment variable named in its help;
a flag wins over the environment. LOCO_QEMU_BINARY names another QEMU build.
The control token is read only from
LOCO_CONTROL_TOKEN or LOCO_CONTROL_TOKEN_FILE, never from a flag (ps would show it).
"""


def _int(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise SupervisorError(f"{what}={value!r} is not a whole number", ExitCode.USAGE) from None


def _float(value: str | None, what: str, default: float) -> float:
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise SupervisorError(f"{what}={value!r} is not a number", ExitCode.USAGE) from None


def _port(value: int | None, what: str) -> int | None:
    if value is not None and not 0 < value < 65536:
        raise SupervisorError(f"{what}={value} is not a TCP port (1-65535)", ExitCode.USAGE)
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loco-emulator",
        description="Supervises one QEMU emulator: health, frame rate, thumbnails, reset.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run QEMU under supervision and serve its health",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--disk", help="base disk image, never written (LOCO_DISK_IMAGE)")
    run.add_argument("--state-dir", help="overlay, QMP socket, registration (LOCO_STATE_DIR)")
    run.add_argument(
        "--health-port",
        type=int,
        help="HTTP port for health/metrics/thumbnail (LOCO_HEALTH_PORT, 8080)",
    )
    run.add_argument(
        "--health-host", help="address the HTTP server binds (LOCO_HEALTH_HOST, 0.0.0.0)"
    )
    run.add_argument("--vnc", help="HOST:DISPLAY of QEMU's VNC server (LOCO_VNC, 127.0.0.1:0)")
    run.add_argument(
        "--profile",
        choices=["testimage", "win98"],
        help="machine profile (LOCO_PROFILE, testimage)",
    )
    run.add_argument(
        "--accel",
        choices=["auto", "tcg", "kvm"],
        help="accelerator; auto picks KVM only on bare metal (LOCO_ACCEL, auto)",
    )
    run.add_argument(
        "--memory",
        type=int,
        metavar="MB",
        help="guest memory (LOCO_MEMORY_MB; 256 for win98, 32 for testimage)",
    )
    run.add_argument("--name", help="instance name (LOCO_INSTANCE_NAME, else the host name)")
    run.add_argument(
        "--fresh-overlay",
        action="store_true",
        default=None,
        help="discard this instance's overlay and start from the base image (LOCO_FRESH_OVERLAY=1)",
    )
    run.add_argument(
        "--shutdown-grace",
        type=float,
        metavar="SECONDS",
        help="how long ACPI power-down may take on SIGTERM "
        "(LOCO_SHUTDOWN_GRACE; 15 for win98, 0.5 for testimage)",
    )
    run.add_argument(
        "--max-restarts", type=int, help="failures in a row before giving up (LOCO_MAX_RESTARTS, 5)"
    )
    run.add_argument(
        "--hang-limit",
        type=float,
        metavar="SECONDS",
        help="kill and restart QEMU when QMP stays silent this long while it runs "
        "(LOCO_HANG_LIMIT, 15; 0 turns it off)",
    )
    run.add_argument("--log-file", help="also write log lines here (LOCO_LOG_FILE)")
    run.add_argument(
        "--fps-sampling",
        metavar="BURST/PERIOD",
        help="frame counting: sample the screen BURST seconds every PERIOD seconds "
        "(LOCO_FPS_SAMPLING, 2/5); a shorter burst costs less CPU, counts less precisely",
    )

    image = sub.add_parser("make-test-image", help="write the bootable test guest image")
    image.add_argument("out", help="output file (raw disk image, 1 MiB)")
    image.add_argument(
        "--fps", type=float, default=30.0, help="frames per second the guest draws (default 30)"
    )
    image.add_argument(
        "--mode-switch",
        action="store_true",
        help="switch video mode about every second, as Windows 98 does while booting",
    )
    image.add_argument(
        "--disk-write",
        action="store_true",
        help="write a sector to the disk every frame (fills the overlay to 1 MiB; for tests "
        "of a full state directory)",
    )
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    disk = args.disk or env("LOCO_DISK_IMAGE")
    if not disk:
        raise SupervisorError(
            "no disk image: give --disk IMG or set LOCO_DISK_IMAGE", ExitCode.USAGE
        )
    state_dir = args.state_dir or env("LOCO_STATE_DIR")
    if not state_dir:
        raise SupervisorError(
            "no state directory: give --state-dir DIR or set LOCO_STATE_DIR", ExitCode.USAGE
        )
    port = args.health_port or _int(env("LOCO_HEALTH_PORT"), "LOCO_HEALTH_PORT") or 8080
    profile = args.profile or env("LOCO_PROFILE", "testimage")
    if profile not in ("testimage", "win98"):
        raise SupervisorError(f"LOCO_PROFILE={profile!r}: use testimage or win98", ExitCode.USAGE)
    accel = args.accel or env("LOCO_ACCEL", "auto")
    if accel not in ("auto", "tcg", "kvm"):
        raise SupervisorError(f"LOCO_ACCEL={accel!r}: use auto, tcg or kvm", ExitCode.USAGE)
    memory = args.memory or _int(env("LOCO_MEMORY_MB"), "LOCO_MEMORY_MB")
    if memory is not None and not 8 <= memory <= 65536:
        raise SupervisorError(f"memory {memory} MB is out of range (8-65536)", ExitCode.USAGE)
    grace = args.shutdown_grace
    if grace is None and env("LOCO_SHUTDOWN_GRACE"):
        grace = _float(env("LOCO_SHUTDOWN_GRACE"), "LOCO_SHUTDOWN_GRACE", 0.0)
    fresh = args.fresh_overlay
    if fresh is None:
        fresh = env("LOCO_FRESH_OVERLAY", "0") in ("1", "true", "yes")
    log_file = args.log_file or env("LOCO_LOG_FILE")
    max_restarts = args.max_restarts
    if max_restarts is None:
        max_restarts = _int(env("LOCO_MAX_RESTARTS"), "LOCO_MAX_RESTARTS") or 5
    burst, period = parse_sampling(args.fps_sampling or env("LOCO_FPS_SAMPLING", "2/5") or "")
    hang_limit = args.hang_limit
    if hang_limit is None:
        hang_limit = _float(env("LOCO_HANG_LIMIT"), "LOCO_HANG_LIMIT", 15.0)
    if not (hang_limit == 0 or 3 <= hang_limit <= 3600):
        raise SupervisorError(
            f"hang limit {hang_limit:g} s: give 0 (off) or 3-3600 seconds "
            "(QMP is probed every second; below 3 s a busy host would look hung)",
            ExitCode.USAGE,
        )
    return Settings(
        disk=Path(disk),
        state_dir=Path(state_dir).absolute(),
        health_port=_port(port, "health port") or 8080,
        health_host=args.health_host or env("LOCO_HEALTH_HOST", "0.0.0.0") or "0.0.0.0",  # noqa: S104
        vnc=VncAddress.parse(args.vnc or env("LOCO_VNC", "127.0.0.1:0") or ""),
        profile=profile,  # type: ignore[arg-type]
        accel=accel,  # type: ignore[arg-type]
        memory_mb=memory,
        name=check_name(args.name or env("LOCO_INSTANCE_NAME") or socket.gethostname()),
        control_token=read_token(env("LOCO_CONTROL_TOKEN"), env("LOCO_CONTROL_TOKEN_FILE")),
        fresh_overlay=fresh,
        shutdown_grace=grace,
        max_restarts=max_restarts,
        log_file=Path(log_file).absolute() if log_file else None,
        qemu_binary=env("LOCO_QEMU_BINARY", "qemu-system-x86_64") or "qemu-system-x86_64",
        fps_burst=burst,
        fps_period=period,
        hang_limit=hang_limit,
    )


def _make_test_image(args: argparse.Namespace) -> int:
    from emulator.testimage import write_test_image

    try:
        path = write_test_image(
            Path(args.out), fps=args.fps, mode_switch=args.mode_switch, disk_write=args.disk_write
        )
    except (ValueError, OSError) as exc:
        print(f"loco-emulator: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    extras = [("mode switching", args.mode_switch), ("writing to its disk", args.disk_write)]
    print(f"wrote {path} ({', '.join([f'{args.fps:g} frames/s'] + [e for e, on in extras if on])})")
    return ExitCode.OK


def _configure_logging(log_file: Path | None) -> None:
    try:
        jsonlog.configure(log_file=log_file)
    except OSError as exc:
        raise SupervisorError(
            f"log file {exc.filename or log_file}: cannot open it for appending "
            f"({exc.strerror or exc}); give a writable --log-file or LOCO_LOG_FILE",
            ExitCode.LOG_FILE,
        ) from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "make-test-image":
        return _make_test_image(args)
    try:
        settings = settings_from(args)
        # The state directory is taken before anything is written, the log file included:
        # a second supervisor on it must leave every file of the first one alone.
        check_state_dir(settings.state_dir)
        lock = lock_state_dir(settings.state_dir)
        try:
            _configure_logging(settings.log_file)
            from emulator.runner import run

            return asyncio.run(run(settings))
        finally:
            lock.release()
    except SupervisorError as exc:
        print(f"loco-emulator: {exc}", file=sys.stderr)
        return int(exc.code)
    except ValueError as exc:  # LOG_LEVEL and similar settings
        print(f"loco-emulator: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
