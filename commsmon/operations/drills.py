"""Drills as they run: planned and stopped by people, watched at every evaluation, kept
in the store (the plan at once, what the kit did as it happens), judged on request
(:func:`commsmon.core.drills.judge`)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import tzinfo

import structlog

from commsmon.core.drills import (
    DRILL_KINDS,
    DRILL_SCENARIOS,
    LONGEST_OPEN,
    SETTLE_LONGEST,
    Contact,
    Drill,
    DrillError,
    DrillRecord,
    Expectations,
    Figures,
    KitStep,
    drill_id,
    judge,
    owns_alerts,
)
from commsmon.core.model import Inventory
from commsmon.core.readings import CHARGE, FUEL, MAINS_PRESENT, OUTPUT_SOURCE, RUNNING, SUPPLY_TYPE
from commsmon.core.snapshot import Snapshot
from commsmon.state.store import Store

__all__ = ["Drills", "record_of"]

log = structlog.get_logger("commsmon.daemon")

#: The readings that say what the power kit did (UPS to battery, generator running ...).
KIT_READINGS = (OUTPUT_SOURCE, RUNNING, MAINS_PRESENT, SUPPLY_TYPE)
_SAVE_EVERY = 60.0  # seconds between saves of a running drill's latest figures
#: Seconds after a drill's outages cleared that its alerts' resolutions are still its
#: own (they go out within the group interval, 120 s by default).
RESOLVED_WITHIN = 600.0


class Drills:
    """The drills of one daemon.

    Args:
        store: the store now (``None``: kept in memory only, in tests).
        inventory: the inventory now (sites and their devices).
        clock: wall clock, epoch seconds.
        tz: the district's time zone (drill ids).
    """

    def __init__(self, store: Callable[[], Store | None], inventory: Callable[[], Inventory],
                 clock: Callable[[], float], tz: tzinfo) -> None:
        self._store, self._inventory, self._clock, self._tz = store, inventory, clock, tz
        self._running: dict[str, Drill] = {}  # site -> its drill
        self._observed: dict[str, dict[str, object]] = {}  # drill id -> what was seen
        self._last: dict[str, dict[tuple[str, str], str]] = {}  # drill id -> kit readings
        self._saved: dict[str, float] = {}
        # site -> a drill stopped whose outages have not cleared yet (its alerts still
        # its own), with what was seen of it
        self._settling: dict[str, tuple[Drill, dict[str, object]]] = {}

    def restore(self, store: Store) -> None:
        """Take back the drills still running (or settling) when the daemon stopped
        (blocking)."""
        now = self._clock()
        for drill, observed in store.drills(now - SETTLE_LONGEST, math.inf):
            if drill.stopped is None:
                self._running[drill.site] = drill
                self._observed[drill.id] = observed
            elif "settled" not in observed and now < drill.stopped + SETTLE_LONGEST:
                self._settling[drill.site] = (drill, observed)

    def running(self, now: float) -> dict[str, Drill]:
        """Site -> the drill running there at ``now``."""
        return {s: d for s, d in self._running.items() if d.running(now)}

    async def start(self, site: str, scenario: str, until: float | None, by: str,
                    note: str = "", before: Snapshot | None = None) -> Drill:
        """Plan and start a drill now; kept before it counts.  ``before``: the fleet as
        evaluated just before, the drill's starting point (else its first evaluation).

        Raises:
            DrillError: the site is unknown, the scenario is not one of
                :data:`~commsmon.core.drills.DRILL_SCENARIOS`, ``until`` is not
                later than now, or a drill runs at the site already.
        """
        now = self._clock()
        if site not in self._inventory().sites:
            raise DrillError("unknown_site", f"unknown site {site!r}")
        if scenario not in DRILL_SCENARIOS:
            raise DrillError("scenario", f"scenario {scenario!r}: one of "
                             + ", ".join(DRILL_SCENARIOS))
        if until is not None and until <= now:
            raise DrillError("until", "the drill's end must be later than now")
        if (old := self._running.get(site)) is not None and old.running(now):
            raise DrillError("running", f"drill {old.id} runs at {site} already")
        if until is None:  # a forgotten drill must not make real outages drills for long
            until = now + LONGEST_OPEN
        drill = Drill(await self._new_id(site, now), site, scenario, now, until, by, note)
        self._running[site] = drill
        self._observed[drill.id] = {"kit": []}
        if before is not None:  # what the kit read before anything was cut
            self._kit_changes(drill, before)
            figures = _figures(before, drill, self._inventory().devices_by_site.get(site, ()))
            if figures is not None:
                self._observed[drill.id]["start"] = asdict(figures)
        await self._save(drill)
        log.info("drill started", drill=drill.id, site=site, scenario=scenario, until=until,
                 by=by)
        return drill

    async def stop(self, site_or_id: str) -> Drill:
        """Stop the drill running at a site (or with that id) now.

        Raises:
            DrillError: no such drill runs.
        """
        drill = self._running.get(site_or_id) or next(
            (d for d in self._running.values() if d.id == site_or_id), None)
        if drill is None:
            raise DrillError("not_found", f"no drill runs at or as {site_or_id!r}")
        return await self._end(drill, self._clock())

    async def observe(self, snap: Snapshot) -> dict[str, Drill]:
        """Note what the running drills' sites show in ``snap``; end those past their
        ``until``; note when a stopped drill's outages have cleared.  Returns site -> the
        drill whose alerts the site's are now: one runs there, or stopped with its
        outages not yet cleared — unless an outage of a kind it does not play is
        active there (then the alerts are real)."""
        for drill in list(self._running.values()):
            if drill.until is not None and snap.at >= drill.until:
                await self._end(drill, drill.until)
                continue
            observed = self._observed.setdefault(drill.id, {"kit": []})
            figures = _figures(snap, drill, self._inventory().devices_by_site.get(drill.site, ()))
            if figures is None:
                continue
            observed.setdefault("start", asdict(figures))
            observed["end"] = asdict(figures)
            site = snap.sites[drill.site]
            seen = set(_strings(observed.get("outages"))) | set(site.outages)
            if len(seen) != len(_strings(observed.get("outages"))):
                observed["outages"] = sorted(seen)
                self._saved.pop(drill.id, None)  # saved below
            steps = self._kit_changes(drill, snap)
            if steps:
                kit = observed.setdefault("kit", [])
                assert isinstance(kit, list)
                kit += steps
            if steps or snap.at - self._saved.get(drill.id, -math.inf) >= _SAVE_EVERY:
                await self._save(drill)
        for site_id, (drill, observed) in list(self._settling.items()):
            status = snap.sites.get(site_id)
            active = set(status.outages) if status is not None else set()
            if "settled" in observed:  # its alerts' resolutions still go out as its own
                if snap.at >= float(str(observed["settled"])) + RESOLVED_WITHIN:
                    del self._settling[site_id]
                continue
            if not active & set(DRILL_KINDS[drill.scenario]) or \
                    snap.at >= (drill.stopped or drill.start) + SETTLE_LONGEST:
                observed["settled"] = snap.at
                store = self._store()
                if store is not None:
                    await asyncio.to_thread(store.put_drill, drill, dict(observed))
        marked = {**{s: d for s, (d, _) in self._settling.items()}, **self.running(snap.at)}
        return {s: d for s, d in marked.items() if (status := snap.sites.get(s)) is None
                or owns_alerts(d, status.outages)}

    def _kit_changes(self, drill: Drill, snap: Snapshot) -> list[list[object]]:
        """[offset, device, reading, old, new] of each kit reading or device state at
        the site that changed since the last evaluation (none the first time)."""
        now = {(d, name): str(value)
               for d in self._inventory().devices_by_site.get(drill.site, ())
               if (status := snap.devices.get(d)) is not None
               for name, value in [("state", status.state.value),
                                   *((r, status.readings[r]) for r in KIT_READINGS
                                     if r in status.readings)]}
        before = self._last.get(drill.id)
        self._last[drill.id] = now
        if before is None:
            return []
        offset = round(snap.at - drill.start, 3)
        # a reading first seen now (none before) is news of the monitor, not of the kit
        return [[offset, d, name, before[d, name], value]
                for (d, name), value in now.items() if before.get((d, name), value) != value]

    async def _end(self, drill: Drill, at: float) -> Drill:
        ended = replace(drill, stopped=at)
        del self._running[drill.site]
        self._last.pop(drill.id, None)
        # its alerts stay its own until the outages it played clear (see observe)
        self._settling[drill.site] = (ended, self._observed.get(drill.id, {"kit": []}))
        await self._save(ended)
        self._observed.pop(drill.id, None)
        log.info("drill ended", drill=drill.id, site=drill.site, at=at)
        return ended

    async def _new_id(self, site: str, now: float) -> str:
        """``D20261205-1432-v03``, or with ``-2``, ``-3`` ... when that minute's is taken."""
        base = drill_id(site, now, self._tz)
        store = self._store()
        taken = {d.id for d in self._running.values()} | {
            d.id for d, _ in self._settling.values()}
        if store is not None:
            taken |= {d.id for d, _ in await asyncio.to_thread(
                store.drills, now - 120, now + 120)}
        n, candidate = 1, base
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    async def _save(self, drill: Drill) -> None:
        store = self._store()
        self._saved[drill.id] = self._clock()
        if store is not None:
            await asyncio.to_thread(store.put_drill, drill, dict(self._observed.get(drill.id, {})))


def record_of(drill: Drill, observed: Mapping[str, object], store: Store | None,
              inventory: Inventory, expect: Expectations, now: float) -> DrillRecord:
    """A drill's record from what was kept of it and the check-ins made from its site
    during it (blocking)."""
    devices = inventory.devices_by_site.get(drill.site, ())
    end = drill.end(now)
    contacts = [] if store is None else [
        Contact(c.at - drill.start, c.device, inventory.devices[c.device].channel or "",
                c.by, c.ok)
        for d in devices for c in store.checkins(d, drill.start, end + 1e-6)]
    kit = [KitStep(float(str(k[0])), str(k[1]), str(k[2]), str(k[3]), str(k[4]))
           for k in _rows(observed.get("kit"))]
    settled = observed.get("settled")
    record = judge(drill, now, expect, kit, contacts, _read_figures(observed.get("start")),
                   _read_figures(observed.get("end")), _strings(observed.get("outages")),
                   float(settled) if isinstance(settled, int | float) else None)
    if store is None:
        return record
    marks = [(e.at - drill.start, e.kind, e.subject) for e in store.marks(
        drill.site, ("outage_start", "outage_end", "alert_firing", "alert_resolved",
                     "escalation_step"), record.window_end + 1e-6) if e.at >= drill.start]
    return replace(record, marks=tuple(marks))


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _rows(value: object) -> list[list[object]]:
    return [list(v) for v in value if isinstance(v, list)] if isinstance(value, list) else []


def _read_figures(value: object) -> Figures | None:
    if not isinstance(value, dict):
        return None
    return Figures(float(value["at"]), float(value["now_lower"]), float(value["now_upper"]),
                   str(value["scenario_ready"]), dict(value.get("channels", {})),
                   {k: dict(v) for k, v in dict(value.get("levels", {})).items()})


def _figures(snap: Snapshot, drill: Drill, devices: Sequence[str]) -> Figures | None:
    """The drilled site (its ``devices``) as ``snap`` shows it (``None``: not in it)."""
    site = snap.sites.get(drill.site)
    if site is None:
        return None
    now, scenario = site.scenarios.get("now"), site.scenarios.get(drill.scenario)
    verdict = "unknown" if scenario is None else scenario.verdict
    levels: dict[str, dict[str, float]] = {}
    for device_id in devices:
        if (status := snap.devices.get(device_id)) is None:
            continue
        for name in (FUEL, CHARGE):
            value = status.readings.get(name)
            if isinstance(value, float | int) and not isinstance(value, bool):
                levels.setdefault(device_id, {})[name] = float(value)
    return Figures(snap.at, now.endurance.lower if now else 0.0,
                   now.endurance.upper if now else math.inf, verdict,
                   {str(c): s.state.value for c, s in site.channels.items()}, levels)
