"""Persist, then apply: each operation is on disk before the core sees it, so a
restart or a crash loses none, and each is logged as a duty-log line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import structlog

from commsmon.core.dispatch import Silence
from commsmon.core.fleet import Fleet
from commsmon.core.outages import Declaration
from commsmon.core.shard import ShardPlan
from commsmon.core.types import CheckIn
from commsmon.outputs.alerts.service import AlertService
from commsmon.state.store import Store

__all__ = ["Operations"]

log = structlog.get_logger("commsmon.daemon")


class Operations:
    """What the API may change (:class:`commsmon.outputs.api.Operations`), and
    check-ins read from the broker.

    Args:
        fleet: the core they apply to.
        plan: this instance's shard plan now (it changes on reload).
        store: the store they persist to now (``None``: not persisted, in tests).
        alerts: the alert service now, for silences (``None``: none running).
        evaluate: re-evaluates the fleet after a change, so its effect shows at once.
    """

    def __init__(
        self,
        fleet: Fleet,
        plan: Callable[[], ShardPlan],
        store: Callable[[], Store | None],
        alerts: Callable[[], AlertService | None],
        evaluate: Callable[[], object],
    ) -> None:
        self._fleet, self._plan, self._store, self._alerts = fleet, plan, store, alerts
        self._evaluate = evaluate
        self._pending: set[asyncio.Task[bool]] = set()

    async def restore(self, path: Path) -> Store:
        """Open the store at ``path`` and apply what it holds: each device's latest
        check-in and the declared outages (a restart forgets none).

        Raises:
            OSError, sqlite3.Error: the store cannot be opened or read.
        """
        store = await asyncio.to_thread(Store, path)
        for checkin in await asyncio.to_thread(store.latest_checkins):
            self._fleet.checkin(checkin)
        for declaration in await asyncio.to_thread(store.declarations):
            self._fleet.declare(declaration)
        return store

    async def record_checkin(self, checkin: CheckIn) -> bool:
        """Persist, then apply a check-in; ``False`` if the device is unknown."""
        if checkin.device not in self._fleet.inventory.devices:
            return False
        if (store := self._store()) is not None:
            await asyncio.to_thread(store.add_checkin, checkin)
        self._fleet.checkin(checkin)
        log.info("check-in recorded", device=checkin.device, ok=checkin.ok, by=checkin.by,
                 site=self._fleet.inventory.devices[checkin.device].site)
        self._evaluate()
        return True

    async def declare(self, declaration: Declaration) -> bool:
        """Persist, then apply a declared outage; ``False`` if the site is not ours."""
        if declaration.site not in self._plan().sites:
            return False
        if (store := self._store()) is not None:
            await asyncio.to_thread(store.put_declaration, declaration)
        self._fleet.declare(declaration)
        log.info("outage declared", site=declaration.site, outage=declaration.kind,
                 until=declaration.until, by=declaration.by)
        self._evaluate()
        return True

    async def clear(self, site: str, kind: str) -> bool:
        """Persist, then clear a declared outage; ``False`` if none was declared."""
        if (site, kind) not in self._fleet.declarations:
            return False
        if (store := self._store()) is not None:
            await asyncio.to_thread(store.delete_declaration, site, kind)
        self._fleet.clear(site, kind)
        log.info("outage cleared", site=site, outage=kind)
        self._evaluate()
        return True

    def silences(self) -> list[Silence]:
        """Every silence the dispatcher knows (config and API)."""
        alerts = self._alerts()
        return list(alerts.dispatcher.silences.values()) if alerts else []

    async def add_silence(
        self, matchers: dict[str, str], starts_at: float, ends_at: float, by: str, comment: str
    ) -> Silence:
        """Create and persist a silence.

        Raises:
            RuntimeError: no alert service is running.
        """
        alerts = self._alerts()
        if alerts is None:
            raise RuntimeError("no alert service to hold the silence")
        silence = await alerts.add_silence(matchers, starts_at, ends_at, by, comment)
        log.info("silence added", id=silence.id, matchers=matchers, by=by)
        return silence

    async def delete_silence(self, silence_id: str) -> bool:
        """Expire an API silence now; ``False`` if none by that id."""
        alerts = self._alerts()
        return alerts is not None and await alerts.delete_silence(silence_id)

    def checkin_heard(self, checkin: CheckIn) -> None:
        """A check-in read from the broker: recorded in the background, by the shard
        that tracks its device."""
        trackers = self._plan().trackers(checkin.device)
        if trackers and self._plan().index not in trackers:
            return  # another shard's device: that shard records it
        task = asyncio.create_task(self.record_checkin(checkin))
        self._pending.add(task)
        task.add_done_callback(self._checkin_done)

    async def drain(self) -> None:
        """Wait (up to 5 s each) for background check-ins to be written."""
        for task in list(self._pending):
            await asyncio.wait([task], timeout=5.0)

    def _checkin_done(self, task: asyncio.Task[bool]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is None and not task.result():
            log.warning("check-in for a device not in the inventory")
