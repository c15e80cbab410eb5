"""A QMP connection with deadlines, over the QEMU project's own client (qemu.qmp).

Every call has a time limit, because a stopped or hung QEMU simply never answers; the caller
turns a timeout into "unresponsive" rather than waiting with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from qemu.qmp import ConnectError, ExecuteError, QMPClient

logger = logging.getLogger("emulator.qmp")


class QmpUnavailable(Exception):
    """No answer within the deadline, or no connection."""


class QmpCommandError(Exception):
    """QEMU answered with an error (the message is QEMU's own)."""


class Qmp:
    def __init__(self, socket_path: Path, name: str = "loco") -> None:
        self.socket_path = socket_path
        self._client: QMPClient | None = None
        self._name = name

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.runstate.name == "RUNNING"

    async def connect(self, limit: float) -> None:
        """Connects and negotiates; QEMU creates the socket a moment after it starts."""
        await self.close()
        deadline = time.monotonic() + limit
        last: Exception | None = None
        while time.monotonic() < deadline:
            client = QMPClient(self._name)
            try:
                remaining = max(0.1, deadline - time.monotonic())
                await asyncio.wait_for(client.connect(str(self.socket_path)), remaining)
            except (ConnectError, OSError, TimeoutError) as exc:
                last = exc
                with contextlib.suppress(Exception):
                    await client.disconnect()
                await asyncio.sleep(0.05)
                continue
            self._client = client
            return
        raise QmpUnavailable(f"no QMP greeting on {self.socket_path} within {limit:.1f} s: {last}")

    async def execute(
        self, command: str, arguments: dict[str, Any] | None = None, limit: float = 1.0
    ) -> Any:
        if not self.connected:
            raise QmpUnavailable("QMP is not connected")
        assert self._client is not None
        try:
            return await asyncio.wait_for(self._client.execute(command, arguments), limit)
        except TimeoutError:
            raise QmpUnavailable(f"QMP {command} got no answer within {limit:.1f} s") from None
        except ExecuteError as exc:
            raise QmpCommandError(f"QMP {command} failed: {exc.error.desc}") from exc
        except Exception as exc:  # a dropped connection surfaces as several qemu.qmp types
            raise QmpUnavailable(f"QMP {command}: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 2.0)
