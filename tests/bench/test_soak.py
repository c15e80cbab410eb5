"""The soak's pure parts: processes told apart by pid, growth read within one process, and
the places it finds on this host (QEMU's serial socket, the supervisor's QEMU)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bench.soak import Sample, growth, lives, serial_path, serial_socket
from bench.soak_cluster import qemu_child, restart_note
from localcluster.processes import cmdline

SLEEPER = [sys.executable, "-c", "import time; time.sleep(30)"]


def s(pid: int, rss: float = 50.0, fds: int = 10, threads: int = 3) -> Sample:
    return Sample(pid, rss, fds, threads)


def test_a_new_pid_is_a_new_life_and_a_gap_is_none() -> None:
    column = [s(1), s(1), None, s(2), s(3), s(3)]
    assert [[x.pid for x in life] for life in lives(column)] == [[1, 1], [2], [3, 3]]


def test_growth_is_read_within_one_process_after_its_first_sample() -> None:
    # A bigger process after a restart is not growth; the first sample (starting) is left out.
    restarted = [s(1, 40), s(1, 41), s(1, 41), s(2, 90), s(2, 91), s(2, 92)]
    assert growth("qemu a", restarted) == []
    warming = [s(1, 10), s(1, 60), s(1, 61)]
    assert growth("supervisor a", warming) == []
    leaking = [s(7, 60, 10, 3), s(7, 61, 10, 3), s(7, 70, 14, 6)]
    assert growth("backend", leaking) == [
        "backend (pid 7): RSS 61 -> 70 MiB",
        "backend (pid 7): descriptors 10 -> 14",
        "backend (pid 7): threads 3 -> 6",
    ]


def test_one_sample_in_a_passing_state_is_not_a_trend() -> None:
    # A supervisor sampled while its QEMU was down after a kill (the cluster soak's minute
    # 1): three descriptors and a thread fewer, then back where it stands.
    dip = [s(5, 76, 12, 3), s(5, 76, 9, 2), s(5, 76, 12, 3), s(5, 76, 12, 3), s(5, 78, 12, 3)]
    assert growth("supervisor b", dip) == []
    # A leak moves every sample, so the medians at both ends move too.
    leak = [s(5, 60, 10, 3)] + [s(5, 60 + 2 * i, 10 + i, 3) for i in range(1, 9)]
    assert growth("supervisor b", leak) == [
        "supervisor b (pid 5): RSS 64 -> 74 MiB",
        "supervisor b (pid 5): descriptors 12 -> 17",
    ]


@pytest.mark.parametrize(
    ("argv", "path"),
    [
        (["qemu", "-serial", "unix:/var/lib/loco/serial.sock,server=on,wait=off"],
         "/var/lib/loco/serial.sock"),
        (["qemu", "-serial", "unix:/tmp/a,,b/serial.sock,server=on"], "/tmp/a,b/serial.sock"),
        (["qemu", "-serial", "unix:/tmp/plain.sock"], "/tmp/plain.sock"),
        (["qemu", "-serial", "none"], None),
        (["qemu", "-serial"], None),
        (["qemu"], None),
    ],
)  # fmt: skip
def test_the_serial_socket_is_read_from_qemus_command_line(
    argv: list[str], path: str | None
) -> None:
    assert serial_path(argv) == path


@pytest.fixture
def fake_qemu() -> Iterator[subprocess.Popen[bytes]]:
    argv = ["qemu-system-x86_64", *SLEEPER[1:], "-serial", "unix:/tmp/x/serial.sock,server=on"]
    proc = subprocess.Popen(argv, executable=sys.executable)
    # Right after the spawn /proc may still show the parent's copy or nothing: wait for ours.
    deadline = time.monotonic() + 10
    while cmdline(proc.pid)[:1] != ["qemu-system-x86_64"] and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_qemu_sharing_our_root_is_reached_by_its_own_path(
    fake_qemu: subprocess.Popen[bytes],
) -> None:
    assert serial_socket(fake_qemu.pid) == "/tmp/x/serial.sock"


def test_the_supervisors_qemu_is_its_qemu_child(fake_qemu: subprocess.Popen[bytes]) -> None:
    other = subprocess.Popen(SLEEPER)
    try:
        assert qemu_child(os.getpid()) == fake_qemu.pid
        assert qemu_child(other.pid) is None
    finally:
        other.kill()
        other.wait()


def test_a_kubelet_restart_says_why_the_container_ended() -> None:
    status = {
        "name": "emulator",
        "restartCount": 2,
        "lastState": {"terminated": {"reason": "Error", "exitCode": 137}},
    }
    assert restart_note("loco-emulator-1", status, 1) == (
        "loco-emulator-1: container emulator restarted by the kubelet "
        "(1 -> 2 restarts; reason Error, exitCode 137)"
    )
