"""The alert service as the daemon runs it: opened on the state directory's outbox,
delivering until cancelled, started over when a reload changes ``alerting`` (its
memory comes back from the outbox); with it this server's part in an HA pair
(:mod:`commsmon.ha`) and the ``monitor_heartbeat`` pushed to Alertmanager."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import structlog

from commsmon.aio import run_until
from commsmon.config.alerting import AlertingSpec
from commsmon.config.services import HaSpec
from commsmon.ha import Replica, Role
from commsmon.log import LogOnce
from commsmon.outputs.alerts.delivery import FaultCallback
from commsmon.outputs.alerts.receivers.alertmanager import AlertmanagerReceiver
from commsmon.outputs.alerts.service import AlertService

if TYPE_CHECKING:
    from commsmon.config.compile import Setup

__all__ = ["AlertOutput"]

log = structlog.get_logger("commsmon.alerts")


class AlertOutput:
    """Holds the running :class:`AlertService`, its delivery task and the HA replica.

    Args:
        path: the outbox database file.
        tz: time zone of the messages' times.
        clock: wall clock, epoch seconds.
        on_fault: a receiver fault raised or cleared (``receiver:<name>``).
        ha: the ``ha`` section (``None``: a single server).
        shard: this instance's shard index (its lease and heartbeat label).

    Raises (from :meth:`open`):
        OSError, sqlite3.Error: the outbox cannot be opened.
    """

    name = "delivery"

    def __init__(self, path: Path, tz: tzinfo, clock: Callable[[], float],
                 on_fault: FaultCallback, ha: HaSpec | None = None, shard: int = 0) -> None:
        self._path, self._tz, self._clock, self._on_fault = path, tz, clock, on_fault
        self._restart = asyncio.Event()  # reconfigure -> run: stop delivering
        self._stopped = asyncio.Event()  # run -> reconfigure: delivery has stopped
        self._resume = asyncio.Event()  # reconfigure -> run: the new service is open
        self._running = False
        self._external_url: str | None = None
        self._shard = shard
        self.service: AlertService | None = None
        self.replica = Replica(ha, shard, self._role_changed)

    async def open(self, spec: AlertingSpec, external_url: object = None) -> None:
        """Open the service for ``spec`` and restore its memory from the outbox;
        ``external_url`` (``http.external_url``) is where its ack links point."""
        self._external_url = None if external_url is None else str(external_url)
        self.service = await asyncio.to_thread(
            AlertService, spec, self._path, self._tz, self._clock, self._on_fault,
            self._external_url, self.replica)
        await asyncio.to_thread(self.service.restore)

    async def run(self, alive: Callable[[], bool] = lambda: True) -> None:
        """Deliver until cancelled, starting over after each :meth:`reconfigure`; take
        part in the HA pair; push the heartbeat while ``alive()`` (evaluating, polling)."""
        self._running = True
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.replica.run(), name="ha")
                while True:
                    service = self.service
                    await run_until(self._deliver(service, alive) if service else None,
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

    async def _deliver(self, service: AlertService, alive: Callable[[], bool]) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(service.deliverer.run())
            tg.create_task(self._heartbeat(service, alive))

    async def _heartbeat(self, service: AlertService, alive: Callable[[], bool]) -> None:
        """Push ``monitor_heartbeat`` to each Alertmanager with a ``heartbeat`` period,
        while the daemon works; a failed push is logged once and tried next period."""
        beating = [r for r in service.receivers.values()
                   if isinstance(r, AlertmanagerReceiver) and r.heartbeat]
        if not beating:
            return
        started, once = self._clock(), LogOnce()
        period = min(r.heartbeat or 60.0 for r in beating)
        async with aiohttp.ClientSession() as session:
            while True:
                for receiver in beating if alive() else ():
                    result = await receiver.beat(session, started, {"shard": str(self._shard)})
                    if not result.ok and once.first(receiver.name, result.detail):
                        log.warning("heartbeat not accepted", receiver=receiver.name,
                                    detail=result.detail)
                    elif result.ok and once.clear(receiver.name):
                        log.info("heartbeat accepted again", receiver=receiver.name)
                await asyncio.sleep(period)

    def _role_changed(self, role: Role) -> None:
        if self.service is not None:
            self.service.deliverer.wake()  # a new leader sends what it holds at once
