"""``loco-emulator run``: checks, then supervisor + sampler + HTTP server until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from emulator.config import Settings
from emulator.errors import ExitCode, SupervisorError
from emulator.framecount import FrameCounter, dump_path
from emulator.image import FINGERPRINT_NAME, BaseImageGuard, inspect_image, prepare_overlay
from emulator.instance import EmulatorInstance
from emulator.jsonlog import log
from emulator.models import DiskFacts
from emulator.qemu_argv import build_argv, choose_accel
from emulator.registration import LocalRegistration, remove_registration, write_registration
from emulator.statedir import state_dir_error
from emulator.stream.owner import StreamOwner
from emulator.stream.pipeline import Element, StreamConfig, describe, elements, rtp_output
from emulator.supervisor import Supervisor
from emulator.vnc import VncSampler

logger = logging.getLogger("emulator")

# sun_path is 108 bytes; deep state dirs (test temp dirs, long PVC mounts) overflow it.
MAX_SOCKET_PATH = 100


def bind_port(host: str, port: int, what: str, flag: str) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted connections when the
    # listening socket says it is TCP, and without it every small answer waits ~40 ms for
    # the peer's delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SupervisorError(
                f"{what} port {host}:{port} is already in use (another emulator?); "
                f"choose another with {flag}",
                ExitCode.PORT_IN_USE,
            ) from None
        raise SupervisorError(
            f"cannot listen on {host}:{port} for {what}: {exc.strerror}", ExitCode.PORT_IN_USE
        ) from None
    return sock


def qmp_socket_path(state_dir: Path) -> Path:
    path = state_dir / "qmp.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    return Path(tempfile.mkdtemp(prefix="loco-qmp-")) / "qmp.sock"


async def run(settings: Settings) -> int:
    if shutil.which(settings.qemu_binary) is None:
        raise SupervisorError(
            f"{settings.qemu_binary} is not installed; run 'make setup' "
            "(Debian package qemu-system-x86)",
            ExitCode.QEMU_MISSING,
        )
    accel = choose_accel(settings.accel)
    vnc_host = settings.vnc.host if settings.vnc.host != "0.0.0.0" else "127.0.0.1"  # noqa: S104
    stream_config = _stream_config(settings, vnc_host) if settings.stream else None
    # Ports before the disk: a clash must not leave a fresh overlay behind.
    http_sock = bind_port(settings.health_host, settings.health_port, "health", "--health-port")
    try:
        # QEMU would only say "Address already in use" after starting; check before.
        bind_port(settings.vnc.host, settings.vnc.port, "VNC", "--vnc").close()
        image = await inspect_image(settings.disk)
        overlay = await prepare_overlay(settings.state_dir, image, settings.fresh_overlay)
    except BaseException:
        http_sock.close()
        raise
    log(
        logger,
        logging.INFO,
        "disk ready",
        image=str(image.path),
        format=image.format,
        virtual_size=image.virtual_size,
        overlay=str(overlay),
    )

    qmp_socket = qmp_socket_path(settings.state_dir)
    argv = build_argv(settings, overlay, qmp_socket, accel)
    base_guard = BaseImageGuard(image.path, settings.state_dir / FINGERPRINT_NAME)
    supervisor = Supervisor(
        argv,
        qmp_socket,
        accel.accel,
        settings.profile,
        settings.effective_grace,
        settings.max_restarts,
        settings.name,
        hang_limit=settings.hang_limit,
        disk_dir=settings.state_dir,
        base_check=base_guard.changed,
    )
    sampler = VncSampler(vnc_host, settings.vnc.port)
    disk = DiskFacts(
        image=str(image.path),
        format=image.format,
        virtual_size=image.virtual_size,
        actual_size=image.actual_size,
        overlay=str(overlay),
        overlay_size=overlay.stat().st_size,
    )
    counter = FrameCounter(
        supervisor,
        dump_path(settings.state_dir),
        burst=settings.fps_burst,
        period=settings.fps_period,
        # At least two bursts inside the window, so one missed burst does not zero the rate.
        window=max(12.0, 2.5 * settings.fps_period),
    )
    stream = _stream_owner(stream_config, sampler) if stream_config else None
    instance = EmulatorInstance(settings.name, supervisor, sampler, counter, disk, stream)
    if settings.control_token is None:
        log(
            logger,
            logging.WARNING,
            "no control token configured: /reset and /restart are "
            "open to anyone who can reach the health port",
        )

    log(
        logger,
        logging.INFO,
        "supervisor starting",
        instance=settings.name,
        accel=accel.accel,
        accel_reason=accel.reason,
        profile=settings.profile,
        health=f"http://{settings.health_host}:{settings.health_port}",
        vnc=str(settings.vnc),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)

    # QEMU first: it boots in its own process while this one loads the HTTP stack, which
    # takes the better part of a second of imports.
    sup_task = asyncio.create_task(supervisor.run(), name="supervisor")
    vnc_task = asyncio.create_task(sampler.run(), name="vnc")
    fps_task = asyncio.create_task(counter.run(), name="framecount")
    stream_task = asyncio.create_task(stream.run(), name="stream") if stream else None
    http_task: asyncio.Task[None] | None = None
    server = None
    try:
        await supervisor.spawned.wait()
        server = _http_server(instance, settings.control_token, settings.status_heartbeat)
        http_task = asyncio.create_task(server.serve(sockets=[http_sock]), name="http")
        _register(
            settings.state_dir,
            LocalRegistration(
                name=settings.name,
                health_url=f"http://{_reachable(settings.health_host)}:{settings.health_port}",
                vnc=f"{_reachable(settings.vnc.host)}:{settings.vnc.port}",
                pid=os.getpid(),
                state_dir=str(settings.state_dir),
                log_file=str(settings.log_file) if settings.log_file else None,
                started_at=datetime.now(UTC),
            ),
        )
        stop_task = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait(
            {stop_task, sup_task, http_task}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            if task is not stop_task and task.exception():
                raise task.exception()  # type: ignore[misc]
        if stream_task is not None:
            # Before QEMU goes: its VNC server closing would otherwise read as a failure.
            stream_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream_task
        log(logger, logging.INFO, "stopping: powering the guest down")
        await supervisor.stop()
    finally:
        supervisor.kill_now()
        # Open status streams end properly (readers see the end, not a broken link), and
        # the HTTP server does not wait for them.
        instance.feed.close()
        remove_registration(settings.state_dir)
        sup_task.cancel()
        vnc_task.cancel()
        fps_task.cancel()
        pending = [sup_task, vnc_task, fps_task]
        if stream_task is not None:
            stream_task.cancel()
            pending.append(stream_task)
        if server is not None and http_task is not None:
            server.should_exit = True
            pending.append(http_task)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 5)
        http_sock.close()
        if qmp_socket.parent != settings.state_dir:
            shutil.rmtree(qmp_socket.parent, ignore_errors=True)
    log(logger, logging.INFO, "supervisor stopped", restarts=supervisor.restarts)
    return ExitCode.OK


def _stream_config(settings: Settings, vnc_host: str) -> StreamConfig:
    """The stream of ``--stream``. GStreamer is loaded only then, and checked before
    anything starts: a missing piece of it stops the start with what to install."""
    try:
        from emulator.stream.gst import missing_elements
    except (ImportError, ValueError) as exc:  # ValueError: gi without a typelib
        raise SupervisorError(
            f"--stream needs GStreamer's Python bindings ({exc}); run 'make setup'",
            ExitCode.STREAM_UNAVAILABLE,
        ) from None
    (width, height), (dest_host, dest_port) = settings.stream_size, settings.stream_dest
    config = StreamConfig(
        vnc_host=vnc_host,
        vnc_port=settings.vnc.port,
        dest_host=dest_host,
        dest_port=dest_port,
        width=width,
        height=height,
        max_fps=settings.stream_fps,
        bitrate_kbps=settings.stream_bitrate,
    )
    missing = missing_elements([*elements(config), *rtp_output(config), Element("webrtcbin", "")])
    if missing:
        raise SupervisorError(
            f"--stream needs the GStreamer elements {', '.join(missing)}; run 'make setup' "
            "(Debian packages gstreamer1.0-plugins-base, -good, -bad and gstreamer1.0-nice)",
            ExitCode.STREAM_UNAVAILABLE,
        )
    return config


def _stream_owner(config: StreamConfig, sampler: VncSampler) -> StreamOwner:
    from emulator.stream.gst import RunningPipeline

    log(logger, logging.INFO, "stream configured", pipeline=describe(config))

    async def wait_drawing() -> None:
        await sampler.wait_for_frame(sampler.seq)

    def picture_changed_at() -> float | None:
        changed = sampler.facts().changed_at
        return None if changed is None else changed.timestamp()

    return StreamOwner(config, RunningPipeline, wait_drawing, picture_changed_at)


def _register(state_dir: Path, registration: LocalRegistration) -> None:
    try:
        write_registration(state_dir, registration)
    except OSError as exc:
        raise state_dir_error(state_dir, exc, "cannot write the registration file") from None


def _http_server(instance: EmulatorInstance, token: str | None, heartbeat: float):  # type: ignore[no-untyped-def]
    import uvicorn

    from emulator.http_api import create_app

    class Server(uvicorn.Server):
        """uvicorn without its own signal handling: the supervisor orders the shutdown."""

        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[no-untyped-def]
            yield

    app = create_app(instance, token, status_heartbeat=heartbeat)
    return Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
