"""The evaluation loop: judge the fleet, log what changed and keep it in the timeline,
hand the snapshot to the alerts, and keep the status line systemd shows."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable

import structlog

from commsmon.changelog import ChangeLog
from commsmon.core.facts import Fact
from commsmon.core.fleet import Fleet
from commsmon.core.shard import ShardPlan
from commsmon.core.snapshot import Snapshot
from commsmon.log import LogOnce
from commsmon.operations.drills import Drills
from commsmon.outputs.alerts.service import AlertService
from commsmon.outputs.http import STALE_AFTER
from commsmon.outputs.wording import Wording
from commsmon.selfmetrics import EVALUATION_DURATION, EVENT_LOOP_TASKS
from commsmon.state.dutylog import Event
from commsmon.state.store import Store

__all__ = ["ALIVE_EVERY", "EVALUATE_DUTY", "EVALUATE_EVERY", "EVALUATE_LATEST", "Evaluation",
           "pause_after"]

log = structlog.get_logger("commsmon.daemon")

# Logs and systemd's status line are for the operations engineer, in English.
_WORDS = Wording("en")

EVALUATE_EVERY = 1.0  # seconds between evaluations of the fleet, at least
# A large fleet waits this many times an evaluation's cost before the next (evaluating
# then takes a sixty-first of the time; more once the pause reaches its cap), but
# never longer than EVALUATE_LATEST: the console pushes the board every 5 s, /healthz
# calls a snapshot older than STALE_AFTER (10 s) stalled, and alert rules wait 60 s or
# more before most alerts fire, so evaluating a province more often buys seconds
# nobody sees, with the pollers' CPU.  A province's evaluation (0.08-0.23 s of wall
# time at 20 000 devices in bench/daemon.py; at 40 times, its pace, it ran every
# 3.4 s) is then every 5 s, or nearly: what a cheaper evaluation saves is kept, not
# spent on pace.
EVALUATE_DUTY = 60.0
EVALUATE_LATEST = STALE_AFTER / 2
ALIVE_EVERY = 60.0  # seconds between the store's notes that the daemon runs (gaps in history)


class Evaluation:
    """Evaluates the fleet on a pace that follows its cost, and publishes the snapshot.

    Args:
        fleet: the core.
        plan: this instance's shard plan now (it changes on reload).
        clock: wall clock, epoch seconds.
        store: the store now, whose disk trouble is a monitor fault.
        alerts: the alert service now (``None``: no alerts, in tests).
        on_status: told the status line when it changes (systemd's ``STATUS=``).
        history_days: days the timeline and the duty log are kept.
        drills: the drills, watched at each evaluation (``None``: none, in tests).
    """

    def __init__(
        self,
        fleet: Fleet,
        plan: Callable[[], ShardPlan],
        clock: Callable[[], float],
        store: Callable[[], Store | None],
        alerts: Callable[[], AlertService | None],
        on_status: Callable[[str], None],
        history_days: int = 400,
        drills: Drills | None = None,
    ) -> None:
        self._fleet, self._plan, self._clock = fleet, plan, clock
        self._store, self._alerts, self._on_status = store, alerts, on_status
        self._drills = drills
        self.snapshot: Snapshot | None = None
        self.evaluated_at = time.monotonic()
        self._changes = ChangeLog()
        self._status = ""
        self._once = LogOnce()
        self._history = history_days * 86400.0
        self._events: list[Event] = []  # timeline events not yet written
        self._pruned = -math.inf
        self._alive = -math.inf  # when the store last heard the daemon is running

    def evaluate(self) -> Snapshot:
        """Evaluate the fleet now, log what changed, publish the snapshot."""
        # Let the old snapshot go before the new one is built: at province scale each
        # is tens of MiB, and two at once would set the daemon's resident size.
        # The change log keeps states, not statuses.
        self.snapshot = None
        snap = self._plan().report(self._fleet.evaluate(self._clock()))
        self.snapshot = snap
        self._events += self._changes.events(snap)  # the first: every state, as first seen
        return snap

    async def run(self) -> None:
        """Evaluate until cancelled."""
        cost = 0.0
        while True:
            # Small fleets are evaluated every second, a province's (0.08-0.23 s of
            # wall time for 20 000 devices) every 5 s or nearly.
            await asyncio.sleep(pause_after(cost))
            started = time.perf_counter()
            await self._once_more()
            cost = time.perf_counter() - started
            EVALUATION_DURATION.observe(cost)
            EVENT_LOOP_TASKS.set(len(asyncio.all_tasks()))
            self.evaluated_at = time.monotonic()
            status = self.status_line()
            if status != self._status:
                self._status = status
                self._on_status(status)

    async def _once_more(self) -> None:
        """One evaluation and its alerts; a method of its own so that no frame holds the
        snapshot between runs (the next evaluation lets the old one go first)."""
        alerts = self._alerts()
        state = [db.problem for db in (self._store(), alerts and alerts.outbox) if db]
        problem = "; ".join(p for p in state if p)
        self._fleet.set_fault("state_dir",
                              Fact("state_dir", {"detail": problem}) if problem else None)
        snap = self.evaluate()
        drills = await self._drills.observe(snap) if self._drills is not None else {}
        if alerts is not None:
            try:
                await alerts.step(snap, drills)
            except sqlite3.Error as exc:  # nothing of the outbox's may stop monitoring
                if self._once.first("outbox", str(exc)):
                    log.error("alert outbox failed; alerts wait", error=str(exc))
            else:
                self._events += alerts.changes()
                if self._once.clear("outbox"):
                    log.info("alert outbox writable again")
        await self._keep_history(snap.at)

    async def _keep_history(self, now: float) -> None:
        """Write the timeline events gathered since the last time; prune the history
        past its retention once an hour."""
        store = self._store()
        if store is None:
            self._events.clear()
            return
        events, self._events = self._events, []
        try:
            if store.problem is not None:  # written only on change: ask the disk again
                await asyncio.to_thread(store.retry)
            if self._alive < 0:  # the first time this run: was there a gap before it?
                last = await asyncio.to_thread(store.alive)
                if last is not None and now - last > 2 * ALIVE_EVERY:
                    events.insert(0, Event(last, "", "monitor_gap", "",
                                           detail={"until": f"{now:.3f}"}))
            if now - self._alive >= ALIVE_EVERY:
                self._alive = now
                await asyncio.to_thread(store.put_alive, now)
            if events:
                await asyncio.to_thread(store.add_events, events)
            if now - self._pruned >= 3600:
                self._pruned = now
                await asyncio.to_thread(store.prune_history, now - self._history)
        except sqlite3.Error as exc:
            if self._once.first("timeline", str(exc)):
                log.error("timeline not written", error=str(exc))

    def status_line(self) -> str:
        """``polling 92 devices, 14 sites, 0 isolated`` for systemctl status."""
        snap = self.snapshot
        sites = [s for s in snap.sites.values() if s.site.role == "village"] if snap else []
        isolated = sum(s.reachable is False for s in sites)
        line = f"polling {len(self._fleet.inventory.devices)} devices, {len(sites)} sites, " \
               f"{isolated} isolated"
        cut_off = _WORDS.fact(snap.cut_off) if snap and snap.cut_off else ""
        return line + (f"; {cut_off}" if cut_off else "")


def pause_after(cost: float) -> float:
    """Seconds to wait after an evaluation that took ``cost`` seconds (wall time):
    ``EVALUATE_DUTY`` times its cost, within ``EVALUATE_EVERY`` and
    ``EVALUATE_LATEST``."""
    return max(EVALUATE_EVERY, min(cost * EVALUATE_DUTY, EVALUATE_LATEST))
