"""``loco-emulator``: run a supervised emulator, or build the test guest image."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from emulator import jsonlog
from emulator.errors import ExitCode, SupervisorError
from emulator.statedir import check_state_dir, lock_state_dir

if TYPE_CHECKING:
    from emulator.config import Settings

EPILOG = """\
Every flag of 'run' can also come from the environment variable named in its help;
a flag wins over the environment. LOCO_QEMU_BINARY names another QEMU build.
The control token is read only from
LOCO_CONTROL_TOKEN or LOCO_CONTROL_TOKEN_FILE (the file wins), never from a flag (ps would
show it).
"""


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
        dest="memory_mb",
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
        metavar="SECONDS",
        help="how long ACPI power-down may take on SIGTERM "
        "(LOCO_SHUTDOWN_GRACE; 15 for win98, 0.5 for testimage)",
    )
    run.add_argument(
        "--max-restarts", help="failures in a row before giving up (LOCO_MAX_RESTARTS, 5)"
    )
    run.add_argument(
        "--hang-limit",
        metavar="SECONDS",
        help="kill and restart QEMU when QMP stays silent this long while it runs "
        "(LOCO_HANG_LIMIT, 15; 0 turns it off)",
    )
    run.add_argument(
        "--status-heartbeat",
        metavar="SECONDS",
        help="seconds of quiet on GET /status/stream before a keep-alive comment; readers "
        "call a stream dead after a few missed ones (LOCO_STATUS_HEARTBEAT, 5)",
    )
    run.add_argument("--log-file", help="also write log lines here (LOCO_LOG_FILE)")
    run.add_argument(
        "--fps-sampling",
        metavar="BURST/PERIOD",
        help="frame counting: sample the screen BURST seconds every PERIOD seconds "
        "(LOCO_FPS_SAMPLING, 2/5); a shorter burst costs less CPU, counts less precisely",
    )

    run.add_argument(
        "--stream",
        action="store_true",
        default=None,
        help="stream the display as VP8 over RTP and to browsers (LOCO_STREAM=1; off)",
    )
    run.add_argument(
        "--stream-dest",
        metavar="HOST:PORT",
        help="where the RTP stream goes (LOCO_STREAM_DEST, 127.0.0.1:5000)",
    )
    run.add_argument(
        "--stream-size",
        metavar="WxH",
        help="picture size of the stream (LOCO_STREAM_SIZE, 1024x768)",
    )
    run.add_argument(
        "--stream-fps", metavar="N", help="cap on streamed frames per second (LOCO_STREAM_FPS, 30)"
    )
    run.add_argument(
        "--stream-bitrate",
        metavar="KBITS",
        help="target VP8 bitrate in kbit/s (LOCO_STREAM_BITRATE, 1500)",
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


def settings_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """The settings of ``run``: its flags, then the environment, then the defaults.

    Imported here: ``--help`` and ``make-test-image`` need no settings model.
    """
    from emulator.config import Settings
    from emulator.layered_settings import env_layer, flag_layer, read_control_token

    env = os.environ if env is None else env
    token = read_control_token(env, "LOCO_CONTROL_TOKEN", "LOCO_CONTROL_TOKEN_FILE")
    return Settings.load(
        flag_layer(Settings, _parser(), args),
        env_layer(Settings, env),
        control_token=token.value if token else None,
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


def _configure_logging(settings: Settings) -> None:
    log_file = settings.log_file
    try:
        jsonlog.configure(settings.log_level, log_file)
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
            _configure_logging(settings)
            from emulator.runner import run

            return asyncio.run(run(settings))
        finally:
            lock.release()
    except SupervisorError as exc:
        print(f"loco-emulator: {exc}", file=sys.stderr)
        return int(exc.code)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
