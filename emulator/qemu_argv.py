"""The QEMU command line for each machine profile, as an argv list (never a shell string)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from emulator.config import Settings
from emulator.errors import ExitCode, SupervisorError


@dataclass(frozen=True)
class AccelChoice:
    accel: str  # what QEMU gets: tcg or kvm
    reason: str  # why, for health and logs


def _cpu_is_virtualised() -> bool:
    try:
        with open("/proc/cpuinfo") as fh:
            return any(line.startswith("flags") and " hypervisor" in line for line in fh)
    except OSError:
        return False


def choose_accel(requested: str, kvm_device: Path = Path("/dev/kvm")) -> AccelChoice:
    """Resolves ``auto``: KVM only on bare metal.

    Under nested virtualisation KVM exists but VGA-heavy guests crawl (every framebuffer
    write traps through two hypervisors), so TCG is the faster choice there.
    """
    kvm_usable = kvm_device.exists() and os.access(kvm_device, os.R_OK | os.W_OK)
    if requested == "tcg":
        return AccelChoice("tcg", "requested")
    if requested == "kvm":
        if not kvm_usable:
            raise SupervisorError(
                f"--accel kvm was asked for but {kvm_device} is missing or not writable by "
                "this user; use --accel tcg (or auto)",
                ExitCode.USAGE,
            )
        return AccelChoice("kvm", "requested")
    if not kvm_usable:
        return AccelChoice("tcg", f"auto: {kvm_device} not usable")
    if _cpu_is_virtualised():
        return AccelChoice("tcg", "auto: nested virtualisation, KVM is slower for VGA guests")
    return AccelChoice("kvm", "auto: bare-metal KVM available")


# A failed read or write of the guest's disk (a full or failing state volume) pauses the
# guest instead of reporting the error to it: Windows 98 does not survive a failed write
# of its system disk, while a paused guest is resumed intact once the disk is back
# (emulator.supervisor). QEMU's default stops only on a full disk.
DISK_ERRORS = "werror=stop,rerror=stop"


def qemu_opt(value: object) -> str:
    """A value inside a QEMU option list: a comma there would start another option, and
    QEMU's own escape for it is a doubled comma."""
    return str(value).replace(",", ",,")


def serial_socket(qmp_socket: Path) -> Path:
    """Where the test guest's serial port listens (beside the QMP socket)."""
    return qmp_socket.with_name("serial.sock")


def build_argv(
    settings: Settings, overlay: Path, qmp_socket: Path, accel: AccelChoice
) -> list[str]:
    """QEMU argv for ``settings.profile``; the disk is always the instance's overlay."""
    argv = [
        settings.qemu_binary,
        "-name",
        f"{qemu_opt(settings.name)},process=qemu-{qemu_opt(settings.name)}",
        "-accel",
        accel.accel,
        "-m",
        str(settings.effective_memory_mb),
        "-nodefaults",
        "-display",
        "none",
        "-vnc",
        settings.vnc.qemu_arg,
        "-qmp",
        f"unix:{qemu_opt(qmp_socket)},server=on,wait=off",
        # COM1: the test guest's control line (emulator/testimage/boot.asm: 'f' freezes its
        # picture, 'g' lets it go on), a socket beside the QMP one; nothing for Windows.
        "-serial",
        "none"
        if settings.profile == "win98"
        else f"unix:{qemu_opt(serial_socket(qmp_socket))},server=on,wait=off",
        "-parallel",
        "none",
        "-monitor",
        "none",
        "-rtc",
        "base=localtime",
    ]
    if settings.profile == "win98":
        argv += [
            # A period-correct PC that Windows 98 has drivers for out of the box.
            "-machine",
            "pc",  # i440FX + PIIX
            "-cpu",
            "pentium3" if accel.accel == "tcg" else "host",
            "-vga",
            "cirrus",  # Windows 98's built-in Cirrus Logic 5446 driver
            "-device",
            "sb16",
            "-nic",
            "user,model=ne2k_pci",
            "-drive",
            f"file={qemu_opt(overlay)},format=qcow2,if=ide,index=0,media=disk,{DISK_ERRORS}",
            "-boot",
            "c",
        ]
    else:
        argv += [
            "-machine",
            "pc",
            "-vga",
            "std",
            "-drive",
            f"file={qemu_opt(overlay)},format=qcow2,if=ide,index=0,media=disk,{DISK_ERRORS}",
        ]
    return argv
