"""The emulator supervisor: owns QEMU, measures its frame rate over VNC, serves health."""
