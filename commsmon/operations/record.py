"""Persist, then apply: each operation is on disk before the core sees it, so a
restart or a crash loses none, and each is a duty-log entry (who, what, when, from
where: :mod:`commsmon.state.dutylog`)."""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Literal

import structlog

from commsmon.config.settings import Settings
from commsmon.core.alerting import SEVERITIES, Alert
from commsmon.core.dispatch import Silence
from commsmon.core.drills import Drill, DrillError, DrillRecord
from commsmon.core.escalation import Ack
from commsmon.core.fleet import Fleet
from commsmon.core.outages import Declaration
from commsmon.core.roster import Shift
from commsmon.core.shard import ShardPlan
from commsmon.core.snapshot import Snapshot
from commsmon.core.types import CheckIn
from commsmon.operations.drills import Drills, record_of
from commsmon.operations.roster import parse_roster_csv
from commsmon.outputs.alerts.service import AlertService
from commsmon.outputs.wording import DEFAULT_TZ, Wording
from commsmon.state.dutylog import NOBODY, Action, Actor, DutyEntry, Event
from commsmon.state.outbox import AckLink
from commsmon.state.store import Store

__all__ = ["GroupAction", "GroupView", "Operations"]

GroupAction = Literal["ack", "unack", "escalate"]

log = structlog.get_logger("commsmon.daemon")


@dataclass(frozen=True, slots=True)
class GroupView:
    """An alert group as the console shows it.

    Attributes:
        group: its key (``site:v05``, ``monitor``).
        site: its site, ``""`` for the monitor's.
        state: ``firing`` or ``acknowledged``.
        severity: its worst severity.
        alerts: how many alerts fire in it.
        opened: epoch seconds it began firing.
        ack: the ack in force or expired-unnoticed, ``None`` when none.
        next_step: epoch seconds its next escalation step falls due, if any.
        escalates: an escalation policy covers it.
        silenced_until: epoch seconds the latest silence over its site ends, if one
            holds it back now.
    """

    group: str
    site: str
    state: str
    severity: str
    alerts: int
    opened: float
    ack: Ack | None
    next_step: float | None
    escalates: bool = False
    silenced_until: float | None = None


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
        tz: the district's time zone (an uploaded roster's times, drill ids).
        settings: the configuration's settings now (what drills must show to pass,
            the kit standard and maintenance windows of reports).
    """

    def __init__(
        self,
        fleet: Fleet,
        plan: Callable[[], ShardPlan],
        store: Callable[[], Store | None],
        alerts: Callable[[], AlertService | None],
        evaluate: Callable[[], object],
        clock: Callable[[], float] = time.time,
        tz: tzinfo = DEFAULT_TZ,
        settings: Callable[[], Settings] = Settings,
    ) -> None:
        self._fleet, self._plan, self._store, self._alerts = fleet, plan, store, alerts
        self._evaluate, self._clock, self._tz, self._settings = evaluate, clock, tz, settings
        self.drills = Drills(store, lambda: fleet.inventory, clock, tz)
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
        await asyncio.to_thread(self.drills.restore, store)
        return store

    async def record_checkin(self, checkin: CheckIn, actor: Actor = NOBODY,
                             method: str = "") -> bool:
        """Persist, then apply a check-in; ``False`` if the device is unknown.
        ``method``: how it was made (``test_call``, ``roll_call`` ...), for the duty log."""
        if checkin.device not in self._fleet.inventory.devices:
            return False
        if (store := self._store()) is not None:
            await asyncio.to_thread(store.add_checkin, checkin)
        self._fleet.checkin(checkin)
        site = self._fleet.inventory.devices[checkin.device].site
        log.info("check-in recorded", device=checkin.device, ok=checkin.ok, by=checkin.by,
                 site=site)
        detail = {"ok": "1" if checkin.ok else "0", "method": method, "note": checkin.note}
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

    async def start_drill(self, site: str, scenario: str, until: float | None, note: str,
                          actor: Actor = NOBODY) -> Drill:
        """Start a drill at ``site`` now (:meth:`Drills.start`).

        Raises:
            DrillError: it cannot start (the code says why).
        """
        if site not in self._plan().sites:
            raise DrillError("unknown_site", f"site {site!r} is not this instance's")
        before = self._evaluate()
        drill = await self.drills.start(site, scenario, until, actor.shown, note,
                                        before if isinstance(before, Snapshot) else None)
        detail = {"id": drill.id, "note": note}
        if until is not None:
            detail["until"] = f"{until:.0f}"
        await self.log_duty(actor, "drill_start", site, scenario, detail)
        return drill

    async def stop_drill(self, site_or_id: str, actor: Actor = NOBODY) -> Drill:
        """Stop the drill running at a site (or with that id) now.

        Raises:
            DrillError: none runs (code ``not_found``).
        """
        drill = await self.drills.stop(site_or_id)
        await self.log_duty(actor, "drill_stop", drill.site, drill.scenario, {"id": drill.id})
        self._evaluate()
        return drill

    async def drill_records(self, start: float, end: float,
                            drill_id: str | None = None) -> list[DrillRecord]:
        """The records of the drills overlapping [start, end) (or the one ``drill_id``),
        oldest first, judged as of now."""
        store = self._store()
        if store is None:
            return []

        def read() -> list[DrillRecord]:
            now, inventory = self._clock(), self._fleet.inventory
            expect = self._settings().drills.expectations()
            return [record_of(d, seen, store, inventory, expect, now)
                    for d, seen in store.drills(start, end, drill_id)]

        return await asyncio.to_thread(read)

    def running_drills(self) -> dict[str, Drill]:
        """Site -> the drill running there now."""
        return self.drills.running(self._clock())

    async def report_file(self, period: str | None, drill_id: str | None, fmt: str,
                          w: Wording) -> tuple[str, bytes]:
        """The report of ``period`` (or drill ``drill_id``'s record) as a file of format
        ``fmt`` (``pdf``, ``xlsx``, ``html``) in ``w``'s language: (file name, content).

        Raises:
            LookupError: no store (nothing to count from), or no such drill.
            ValueError: the period does not read.
        """
        store = self._store()
        if store is None:
            raise LookupError("no history: the store is not open")
        settings, inventory = self._settings(), self._fleet.inventory

        def make() -> tuple[str, bytes]:
            # matplotlib and WeasyPrint: loaded when a report is first asked for, not
            # by every daemon at start
            from commsmon.outputs.reports.writer import write_drill, write_report

            with tempfile.TemporaryDirectory(prefix="commsmon-report-") as folder:
                if drill_id is not None:
                    written = write_drill(store, settings, inventory, drill_id, w, [fmt],
                                          Path(folder), self._clock())
                else:
                    written = write_report(store, settings, inventory, period or "", None, w,
                                           [fmt], Path(folder), self._clock())
                path = written[0][0]
                return path.name, path.read_bytes()

        try:
            return await asyncio.to_thread(make)
        except KeyError as exc:
            raise LookupError(str(exc)) from None

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

    def alert_groups(self) -> list[GroupView]:
        """Every alert group firing now (acknowledged or not), worst first."""
        alerts = self._alerts()
        if alerts is None:
            return []
        esc, now = alerts.escalation, self._clock()
        out = []
        for group in esc.groups():
            level = esc.level(group)
            if level is None:
                continue
            site = _site_of(group)
            silenced = [s.ends_at for s in alerts.dispatcher.silences.values()
                        if site and s.silences({"site": site}, now)]
            out.append(GroupView(group, site, esc.state(group, now), level.severity,
                                 len(level.alerts), esc.opened(group) or now, esc.ack(group),
                                 esc.next_due_of(group), esc.escalates(group),
                                 max(silenced, default=None)))
        return sorted(out, key=lambda g: (SEVERITIES.index(g.severity)
                                          if g.severity in SEVERITIES else 9, g.opened))

    def alerts_of(self, group: str) -> list[Alert]:
        """The alerts firing in ``group`` at the last evaluation."""
        alerts = self._alerts()
        return list(alerts.firing_in(group)) if alerts is not None else []

    def roster(self) -> tuple[Shift, ...]:
        """Every shift of the duty roster, by start."""
        alerts = self._alerts()
        return alerts.roster.shifts if alerts is not None else ()

    def roles_needed(self) -> list[str]:
        """The roles the escalation policies call, in the order they first do."""
        alerts = self._alerts()
        if alerts is None:
            return []
        return list(dict.fromkeys(step.notify for p in alerts.spec.escalation.policies
                                  for step in p.steps))

    def roster_now(self) -> dict[str, Shift]:
        """Who holds each roster role now."""
        alerts = self._alerts()
        return alerts.roster.holders(self._clock()) if alerts is not None else {}

    async def read_link(self, token: str) -> tuple[AckLink | None, str | None]:
        """The ack link a token names and what stops it acting now (``None``: it can);
        ``(None, "off")`` without an alert service."""
        alerts = self._alerts()
        if alerts is None:
            return None, "off"
        return await asyncio.to_thread(alerts.links.read, token)

    async def ack_by_link(self, token: str, actor: Actor) -> str | None:
        """Acknowledge through an ack link (single use); ``None`` when done, else what
        stopped it (``used``, ``expired``, ``resolved``, ``worse``, ``forged``...)."""
        alerts = self._alerts()
        if alerts is None:
            return "off"
        link, problem = await asyncio.to_thread(alerts.links.read, token)
        if link is None or problem is not None:
            return problem or "unknown"
        if not await asyncio.to_thread(alerts.links.use, link, actor.shown):
            return "used"
        if not await self.acknowledge(link.group, actor, via=f"link:{link.role}"):
            return "resolved"
        return None

    async def act_on_group(self, action: GroupAction, group: str, actor: Actor,
                           via: str = "console") -> bool:
        """``ack``, ``unack`` or ``escalate`` the alert group ``group``; ``False`` when
        there is nothing to do it to (see each)."""
        if action == "ack":
            return await self.acknowledge(group, actor, via)
        if action == "unack":
            return await self.unacknowledge(group, actor)
        return await self.escalate(group, actor)

    async def acknowledge(self, group: str, actor: Actor, via: str = "console") -> bool:
        """``actor`` acknowledges the alert group ``group`` (``site:v05``); ``False`` if it
        is not firing (resolved meanwhile) or no alert service runs."""
        alerts = self._alerts()
        if alerts is None or await alerts.acknowledge(group, actor.shown) is None:
            return False
        await self.log_duty(actor, "ack", _site_of(group), group, {"via": via})
        return True

    async def unacknowledge(self, group: str, actor: Actor) -> bool:
        """Withdraw ``group``'s ack; ``False`` if it had none."""
        alerts = self._alerts()
        if alerts is None or not await alerts.unacknowledge(group):
            return False
        await self.log_duty(actor, "unack", _site_of(group), group)
        return True

    async def escalate(self, group: str, actor: Actor) -> bool:
        """Take ``group``'s next escalation step now; ``False`` if it is not firing or
        follows no policy."""
        alerts = self._alerts()
        if alerts is None or not await alerts.escalate_now(group):
            return False
        await self.log_duty(actor, "escalate", _site_of(group), group)
        self._evaluate()  # the step goes out at this evaluation, not the next
        return True

    async def set_roster(self, csv_text: str, actor: Actor) -> int:
        """Replace the duty roster by an uploaded CSV sheet; the number of shifts.

        Raises:
            ValueError: the sheet does not read (the message names the line).
            RuntimeError: no alert service runs.
        """
        alerts = self._alerts()
        if alerts is None:
            raise RuntimeError("no alert service to hold the roster")
        shifts = parse_roster_csv(csv_text, self._tz)
        await alerts.set_roster(shifts)
        await self.log_duty(actor, "roster", detail={"shifts": str(len(shifts))})
        return len(shifts)

    async def hand_over(self, actor: Actor, note: str) -> None:
        """``actor`` hands the shift over: a duty-log entry naming who holds each role
        now (the roster's holders)."""
        alerts = self._alerts()
        holders = alerts.roster.holders(self._clock()) if alerts is not None else {}
        detail = {role: shift.name for role, shift in holders.items()}
        detail["note"] = note
        await self.log_duty(actor, "handover", detail=detail)

    async def log_duty(self, actor: Actor, action: Action, site: str = "", subject: str = "",
                       detail: dict[str, str] | None = None) -> None:
        """Write a duty-log entry, now, for ``actor`` (the store's, else kept in memory)."""
        detail = dict(detail or {})
        if actor.name and actor.name != actor.user:
            detail["name"] = actor.name
        entry = DutyEntry(self._clock(), actor.user, actor.address, action, site, subject,
                          detail)
        if (store := self._store()) is not None:
            await asyncio.to_thread(store.add_duty, entry)
        else:
            self._unstored.append(entry)

    async def history(self, site: str, limit: int) -> tuple[list[Event], list[DutyEntry]]:
        """``site``'s latest timeline events and duty-log entries, newest first, at most
        ``limit`` of each."""
        store = self._store()
        if store is None:
            entries = [e for e in reversed(self._unstored) if e.site == site][:limit]
            return [], entries
        events = await asyncio.to_thread(store.events, site, 0.0, math.inf, limit)
        entries = await asyncio.to_thread(store.site_duty, site, 0.0, math.inf, limit)
        return events, entries

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
        task = asyncio.create_task(self.record_checkin(checkin, Actor("mqtt")))
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


def _site_of(group: str) -> str:
    """The site of an alert group (``site:v05`` -> ``v05``; ``monitor`` -> ``""``)."""
    return group.removeprefix("site:") if group.startswith("site:") else ""
