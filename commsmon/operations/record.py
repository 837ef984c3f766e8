"""Persist, then apply: each operation is on disk before the core sees it, so a
restart or a crash loses none, and each is a duty-log entry (who, what, when, from
where: :mod:`commsmon.state.dutylog`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from commsmon.core.dispatch import Silence
from commsmon.core.fleet import Fleet
from commsmon.core.outages import Declaration
from commsmon.core.shard import ShardPlan
from commsmon.core.types import CheckIn
from commsmon.outputs.alerts.service import AlertService
from commsmon.state.dutylog import NOBODY, Action, Actor, DutyEntry
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
        clock: wall clock, epoch seconds (the duty log's times).
    """

    def __init__(
        self,
        fleet: Fleet,
        plan: Callable[[], ShardPlan],
        store: Callable[[], Store | None],
        alerts: Callable[[], AlertService | None],
        evaluate: Callable[[], object],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fleet, self._plan, self._store, self._alerts = fleet, plan, store, alerts
        self._evaluate, self._clock = evaluate, clock
        self._pending: set[asyncio.Task[bool]] = set()
        self._unstored: list[DutyEntry] = []  # the duty log while there is no store

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

    async def record_checkin(self, checkin: CheckIn, actor: Actor = NOBODY) -> bool:
        """Persist, then apply a check-in; ``False`` if the device is unknown."""
        if checkin.device not in self._fleet.inventory.devices:
            return False
        if (store := self._store()) is not None:
            await asyncio.to_thread(store.add_checkin, checkin)
        self._fleet.checkin(checkin)
        site = self._fleet.inventory.devices[checkin.device].site
        log.info("check-in recorded", device=checkin.device, ok=checkin.ok, by=checkin.by,
                 site=site)
        detail = {"ok": "1" if checkin.ok else "0", "note": checkin.note}
        if checkin.charge is not None:
            detail["charge"] = f"{checkin.charge:g}"
        await self.log_duty(actor, "checkin", site, checkin.device, detail)
        self._evaluate()
        return True

    async def declare(self, declaration: Declaration, actor: Actor = NOBODY) -> bool:
        """Persist, then apply a declared outage; ``False`` if the site is not ours."""
        if declaration.site not in self._plan().sites:
            return False
        if (store := self._store()) is not None:
            await asyncio.to_thread(store.put_declaration, declaration)
        self._fleet.declare(declaration)
        log.info("outage declared", site=declaration.site, outage=declaration.kind,
                 until=declaration.until, by=declaration.by)
        detail = {"note": declaration.note}
        if declaration.until is not None:
            detail["until"] = f"{declaration.until:.0f}"
        await self.log_duty(actor, "declare", declaration.site, declaration.kind, detail)
        self._evaluate()
        return True

    async def clear(self, site: str, kind: str, actor: Actor = NOBODY) -> bool:
        """Persist, then clear a declared outage; ``False`` if none was declared."""
        if (site, kind) not in self._fleet.declarations:
            return False
        if (store := self._store()) is not None:
            await asyncio.to_thread(store.delete_declaration, site, kind)
        self._fleet.clear(site, kind)
        log.info("outage cleared", site=site, outage=kind)
        await self.log_duty(actor, "clear", site, kind)
        self._evaluate()
        return True

    def silences(self) -> list[Silence]:
        """Every silence the dispatcher knows (config and API)."""
        alerts = self._alerts()
        return list(alerts.dispatcher.silences.values()) if alerts else []

    async def add_silence(
        self, matchers: dict[str, str], starts_at: float, ends_at: float, by: str, comment: str,
        actor: Actor = NOBODY,
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
        await self.log_duty(actor, "silence", matchers.get("site", ""), silence.id, {
            "matchers": ",".join(f"{k}={v}" for k, v in sorted(matchers.items())),
            "starts": f"{starts_at:.0f}", "ends": f"{ends_at:.0f}", "comment": comment})
        return silence

    async def delete_silence(self, silence_id: str, actor: Actor = NOBODY) -> bool:
        """Expire an API silence now; ``False`` if none by that id."""
        alerts = self._alerts()
        if alerts is None:
            return False
        silence = alerts.dispatcher.silences.get(silence_id)
        if not await alerts.delete_silence(silence_id):
            return False
        site = dict(silence.matchers).get("site", "") if silence is not None else ""
        await self.log_duty(actor, "unsilence", site, silence_id)
        return True

    async def log_duty(self, actor: Actor, action: Action, site: str = "", subject: str = "",
                       detail: dict[str, str] | None = None) -> None:
        """Write a duty-log entry, now, for ``actor`` (the store's, else kept in memory)."""
        entry = DutyEntry(self._clock(), actor.user, actor.address, action, site,
                          subject, detail or {})
        if (store := self._store()) is not None:
            await asyncio.to_thread(store.add_duty, entry)
        else:
            self._unstored.append(entry)

    async def duty_entries(self, start: float, end: float,
                           user: str | None = None) -> list[DutyEntry]:
        """The duty log from ``start`` to ``end`` (epoch seconds), oldest first."""
        if (store := self._store()) is not None:
            return await asyncio.to_thread(store.duty_entries, start, end, user)
        return [e for e in self._unstored
                if start <= e.at < end and (user is None or e.user == user)]

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
