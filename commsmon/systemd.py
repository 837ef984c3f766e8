"""systemd's notify protocol: READY=1, STATUS=..., WATCHDOG=1, STOPPING=1, RELOADING=1.

A datagram to the socket named by ``$NOTIFY_SOCKET`` (sd_notify(3)); a no-op when
the daemon is not run by systemd with ``Type=notify``.  Ten lines of protocol do
not justify a dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable

import structlog

from commsmon.log import LogOnce

__all__ = ["Notifier", "watchdog", "watchdog_interval"]

log = structlog.get_logger("commsmon.daemon")


class Notifier:
    """Sends state lines to systemd, if it listens."""

    def __init__(self) -> None:
        path = os.environ.get("NOTIFY_SOCKET", "")
        if path.startswith("@"):  # abstract namespace
            path = "\0" + path[1:]
        self._address = path or None

    @property
    def enabled(self) -> bool:
        """Whether systemd asked for notifications."""
        return self._address is not None

    def send(self, **fields: str) -> None:
        """Send ``KEY=value`` lines, e.g. ``send(READY="1", STATUS="polling 92 devices")``."""
        if self._address is None:
            return
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        # systemd gone (shutting down): nothing to tell.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
            sock.sendto(message, self._address)


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of ``$WATCHDOG_USEC``), or ``None`` if off."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def watchdog(notifier: Notifier, interval: float,
                   checks: Callable[[float], dict[str, bool]]) -> None:
    """Ping systemd's watchdog every ``interval`` seconds while every check passes:
    a stuck event loop, evaluation or poller stops the pings and systemd restarts
    the daemon. ``checks(interval)`` names each check and whether it passes."""
    once = LogOnce()
    while True:
        await asyncio.sleep(interval)
        results = checks(interval)
        if all(results.values()):
            notifier.send(WATCHDOG="1")
        elif once.first("watchdog", tuple(results.items())):
            log.error("watchdog withheld: the daemon is stuck", **results)
