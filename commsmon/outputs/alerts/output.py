"""The alert service as the daemon runs it: opened on the state directory's outbox,
delivering until cancelled, started over when a reload changes ``alerting`` (its
memory comes back from the outbox)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from commsmon.aio import run_until
from commsmon.config.alerting import AlertingSpec
from commsmon.outputs.alerts.delivery import FaultCallback
from commsmon.outputs.alerts.service import AlertService

if TYPE_CHECKING:
    from commsmon.config.compile import Setup

__all__ = ["AlertOutput"]


class AlertOutput:
    """Holds the running :class:`AlertService` and its delivery task.

    Args:
        path: the outbox database file.
        tz: time zone of the messages' times.
        clock: wall clock, epoch seconds.
        on_fault: a receiver fault raised or cleared (``receiver:<name>``).

    Raises (from :meth:`open`):
        OSError, sqlite3.Error: the outbox cannot be opened.
    """

    name = "delivery"

    def __init__(self, path: Path, tz: tzinfo, clock: Callable[[], float],
                 on_fault: FaultCallback) -> None:
        self._path, self._tz, self._clock, self._on_fault = path, tz, clock, on_fault
        self._restart = asyncio.Event()  # reconfigure -> run: stop delivering
        self._stopped = asyncio.Event()  # run -> reconfigure: delivery has stopped
        self._resume = asyncio.Event()  # reconfigure -> run: the new service is open
        self._running = False
        self._external_url: str | None = None
        self.service: AlertService | None = None

    async def open(self, spec: AlertingSpec, external_url: object = None) -> None:
        """Open the service for ``spec`` and restore its memory from the outbox;
        ``external_url`` (``http.external_url``) is where its ack links point."""
        self._external_url = None if external_url is None else str(external_url)
        self.service = await asyncio.to_thread(
            AlertService, spec, self._path, self._tz, self._clock, self._on_fault,
            self._external_url)
        await asyncio.to_thread(self.service.restore)

    async def run(self) -> None:
        """Deliver until cancelled, starting over after each :meth:`reconfigure`."""
        self._running = True
        try:
            while True:
                await run_until(self.service.deliverer.run() if self.service else None,
                                self._restart)
                self._stopped.set()
                await self._resume.wait()
                self._resume.clear()
        finally:
            self._running = False

    async def reconfigure(self, old: Setup, new: Setup) -> bool:
        """Start over if the ``alerting`` section changed; True if it did."""
        if new.settings.alerting == old.settings.alerting or self.service is None:
            return False
        running = self._running
        if running:  # the old deliverer stops before its service closes
            self._restart.set()
            await self._stopped.wait()
            self._stopped.clear()
        try:
            await self.close()
            await self.open(new.settings.alerting, self._external_url)
        finally:
            if running:
                self._resume.set()
        return True

    async def close(self) -> None:
        """Close the service (its deliverer's session and the outbox)."""
        if self.service is not None:
            await self.service.close()
