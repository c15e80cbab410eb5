"""Errors an operator can act on, each with its own exit code.

The message is the whole story in one line: the file or setting, what is wrong, what to do.
The CLI prints it and exits with ``code``; nothing else should print a traceback for these.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2  # argparse's own code for bad flags
    IMAGE_MISSING = 10
    IMAGE_UNREADABLE = 11
    IMAGE_CORRUPT = 12  # truncated, inconsistent, not a disk
    IMAGE_UNSUPPORTED = 13  # a format QEMU reads but we do not run
    OVERLAY = 14
    QEMU_MISSING = 15
    PORT_IN_USE = 16
    QEMU_START = 17
    STATE_DIR_UNUSABLE = 18  # a file in the way, not writable, read-only filesystem
    STATE_DIR_FULL = 19
    STATE_DIR_IN_USE = 20  # another supervisor holds it
    LOG_FILE = 21  # --log-file cannot be opened for appending
    STREAM_UNAVAILABLE = 22  # --stream without GStreamer, its bindings or an element


class SupervisorError(Exception):
    """A failure with a message meant for the operator and a distinct exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILURE) -> None:
        super().__init__(message)
        self.code = code


class SettingsError(SupervisorError):
    """A flag, variable, file or file key that cannot be used (all three programs).

    ``str()`` is the one line to print (which setting, what is wrong, what to do);
    ``code`` is the exit status, 2 as for argparse's own usage errors. Defined here, not in
    ``emulator.layered_settings``, so that catching it costs no import of pydantic.
    """

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message, code)
