"""The fleet: every device's tracker, and its evaluation into a snapshot.

``Fleet.evaluate(now)`` turns raw reachability into effective states
(``degraded`` or ``lost`` from health rules on fresh readings, ``unknown``
behind a down parent or a lost source), works out each site's channels and
reachability (DESIGN.md §3 "Channel"), its active outages, then its scenarios
and ``now`` with those outages folded in, settles the seconds spent in each
state where it changed, and returns a frozen :class:`Snapshot` for the outputs.
Reasons are facts, never words.

Only what changed is judged again: devices touched since the last evaluation or
with a change falling due (scheduled, not rescanned), their children, the sites
reading them, and the judgements that read those (:mod:`commsmon.core.memo`);
``Fleet(incremental=False)`` judges everything, the reference the differential
test compares with (tests/core/test_incremental.py).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from commsmon.core.agenda import Agenda
from commsmon.core.availability import Tally
from commsmon.core.channels import judge_channels, site_state
from commsmon.core.endurance import Endurance
from commsmon.core.facts import Fact
from commsmon.core.freshness import fresh_readings, fresh_until
from commsmon.core.memo import Memo, Reads
from commsmon.core.model import Device, Inventory, Site
from commsmon.core.outages import OUTAGE_KINDS, Declaration, Outage, OutageKind, evidence
from commsmon.core.power import DeviceView, device_endurance
from commsmon.core.readiness import ScenarioResult, conditions, evaluate_site, mains_out
from commsmon.core.readings import CHARGE, JUDGED
from commsmon.core.shared import Shared
from commsmon.core.snapshot import Changes, ChannelStatus, DeviceStatus, SiteStatus, Snapshot
from commsmon.core.state import DeviceTracker
from commsmon.core.trappath import trap_path
from commsmon.core.types import WORKING, ChannelName, CheckIn, Observation, Reading, State

__all__ = ["Fleet"]


# Snapshots' generations, unique among every fleet's: a reader that read one fleet's
# snapshot never takes another fleet's for the one that follows it.
_GENERATIONS = itertools.count(1)


class Fleet:
    """Holds every device's tracker and evaluates them; pure, time passed in."""

    def __init__(self, inventory: Inventory, now: float, *, incremental: bool = True) -> None:
        """``incremental``: keep each site's scenarios and each device's endurance while
        what they read is unchanged (:mod:`commsmon.core.memo`); ``False`` judges all
        of it at every evaluation (the reference the property tests compare with)."""
        self.inventory = inventory
        self._scenarios: Memo[Mapping[str, ScenarioResult]] = Memo(
            _scenarios_move if incremental else _always)
        self._endurance: Memo[Endurance] = Memo(_reads_move if incremental else _always)
        self._incremental = incremental
        self._views: dict[str, DeviceView] = {}  # each device's latest view
        self._new_views: set[str] = set()  # devices whose view changed in this evaluation
        # Each device's effective state before the cut-off check, and its status, as of
        # the last evaluation; devices to judge again at the next: touched since, or
        # with a change falling due (the agenda).
        self._judged: dict[str, tuple[State, tuple[Fact, ...]]] = {}
        # Of those: devices judged down per site (none: no key), and devices working.
        self._down_at: dict[str, int] = {}
        self._working = 0
        self._status: dict[str, DeviceStatus] = {}
        self._touched: set[str] = set(inventory.devices)
        self._agenda = Agenda()
        self._moving: set[str] = set()  # whose view moves with the clock (stale ages)
        self._blind = False
        self._depth, self._children, self._looped, self._readers = _family(inventory)
        # Each site's channels and outages as of the last evaluation, and the sites to
        # judge again at the next (a declaration changed; None: every one).
        self._channels: dict[str, dict[ChannelName, ChannelStatus]] = {}
        self._active: dict[str, dict[OutageKind, Outage]] = {}
        self._touched_sites: set[str] | None = None
        # Each site's status as of the last evaluation, with the channels and outages
        # it was made of (its mappings are read-only views of these).
        self._sites: dict[str, tuple[SiteStatus, Mapping[ChannelName, ChannelStatus],
                                     Mapping[OutageKind, Outage]]] = {}
        self._last_out: Mapping[str, float] = {}  # the last evaluation's mains cuts
        self.checkins: dict[str, CheckIn] = {}
        self.declarations: dict[tuple[str, str], Declaration] = {}
        self._outage_since: dict[tuple[str, OutageKind], float] = {}
        self._trackers = {d: DeviceTracker(dev) for d, dev in inventory.devices.items()}
        self._device_time = {d: Tally.start(now) for d in inventory.devices}
        self._site_time = {s: Tally.start(now) for s in inventory.sites}
        self._source_up: dict[str, float | None] = {}
        self._faults: dict[str, Fact] = {}
        self._trap_heard: dict[str, float] = {}  # site -> latest trap from its kit
        self._traps_since: float | None = None  # listening for traps since
        self._last_eval = now
        self._now = now
        # The last snapshot's generation, for the next one's changes; the next
        # snapshot's statuses are all new, and some may be gone, while _whole.
        self._generation = 0
        self._whole = True

    def reconfigure(self, inventory: Inventory, now: float) -> None:
        """Switch to a new inventory (a reload), keeping what is known of what stays.

        A device that stays keeps its state, readings and seconds in each
        state under its new definition (a changed profile or threshold applies
        from its next observation); a new one starts ``unknown``; a removed one
        is forgotten with its check-ins.  Sites likewise, with their declared
        and detected outages.
        """
        self.inventory = inventory
        self._whole = True
        self._scenarios.clear()
        self._endurance.clear()
        self._views.clear()
        self._new_views, self._last_out = set(), {}
        self._judged.clear()
        self._down_at.clear()
        self._working = 0
        self._status.clear()
        self._touched = set(inventory.devices)
        self._agenda.clear()
        self._moving.clear()
        self._depth, self._children, self._looped, self._readers = _family(inventory)
        self._channels.clear()
        self._active.clear()
        self._sites.clear()
        self._touched_sites = None
        trackers = {}
        for device_id, device in inventory.devices.items():
            tracker = self._trackers.get(device_id)
            if tracker is None:
                tracker = DeviceTracker(device)
            tracker.device = device
            trackers[device_id] = tracker
        self._trackers = trackers
        self._device_time = {
            d: self._device_time.get(d) or Tally.start(now) for d in inventory.devices
        }
        self._site_time = {
            s: self._site_time.get(s) or Tally.start(now) for s in inventory.sites
        }
        self.checkins = {d: c for d, c in self.checkins.items() if d in inventory.devices}
        self.declarations = {
            k: v for k, v in self.declarations.items() if k[0] in inventory.sites
        }
        self._outage_since = {
            k: v for k, v in self._outage_since.items() if k[0] in inventory.sites
        }
        self._trap_heard = {s: at for s, at in self._trap_heard.items() if s in inventory.sites}

    def observe(self, obs: Observation) -> bool:
        """Apply an observation; ``False`` if its device is not in the inventory."""
        tracker = self._trackers.get(obs.device)
        if tracker is None:
            return False
        tracker.observe(obs)
        self._touched.add(obs.device)
        if obs.unconfirmed:  # a trap: the site's trap path works
            site = tracker.device.site
            self._trap_heard[site] = max(obs.at, self._trap_heard.get(site, obs.at))
        return True

    def set_traps_listening(self, listening: bool, now: float) -> None:
        """Record that the monitor started or stopped listening for traps: a trap
        path is judged only while it listens (:mod:`commsmon.core.trappath`)."""
        if not listening:
            self._traps_since = None
        elif self._traps_since is None:
            self._traps_since = now

    def checkin(self, checkin: CheckIn) -> bool:
        """Record a check-in; ``False`` if its device is not in the inventory.

        For a device observed only by check-ins it is its heartbeat: ``ok``
        makes it answer, ``failed`` takes it down at once; a charge reading
        becomes its ``charge``.  Older check-ins than the latest are kept out.
        """
        tracker = self._trackers.get(checkin.device)
        if tracker is None:
            return False
        latest = self.checkins.get(checkin.device)
        if latest is not None and latest.at > checkin.at:
            return True
        self.checkins[checkin.device] = checkin
        self._touched.add(checkin.device)
        if tracker.device.source == "checkin":
            readings = {} if checkin.charge is None else {CHARGE: checkin.charge}
            tracker.observe(
                Observation(checkin.device, checkin.at, checkin.ok, readings,
                            conclusive=not checkin.ok,
                            error=None if checkin.ok else "checkin_failed", detail=checkin.note)
            )
        return True

    def declare(self, declaration: Declaration) -> bool:
        """Declare an outage at a site; ``False`` if the site is unknown."""
        if declaration.site not in self.inventory.sites:
            return False
        self.declarations[(declaration.site, declaration.kind)] = declaration
        self._touch_site(declaration.site)
        return True

    def clear(self, site: str, kind: str) -> bool:
        """Clear a declared outage; ``False`` if none was declared."""
        if self.declarations.pop((site, kind), None) is None:
            return False
        self._touch_site(site)
        return True

    def _touch_site(self, site: str) -> None:
        if self._touched_sites is not None:
            self._touched_sites.add(site)

    def set_source(self, source: str, connected: bool, now: float) -> None:
        """Record that a source (``"mqtt"``) lost or regained its link.

        While a source is disconnected its devices are ``unknown``: the
        monitor, not the device, is cut off.  When it comes back, a device
        heard only through presence relearns its state
        (:meth:`DeviceTracker.relearn`): a broker restart may have dropped its
        session unseen.
        """
        was = self._source_up.get(source, 0.0)
        self._source_up[source] = now if connected else None
        if connected and was is None:
            for tracker in self._trackers.values():
                device = tracker.device
                if device.source == source and device.stale_after is None:
                    tracker.relearn()
        if self._source_up[source] != was:
            self._touched.update(d for d, t in self._trackers.items()
                                 if t.device.source == source)

    def set_fault(self, name: str, problem: Fact | None) -> None:
        """Record a fault of the monitor itself, or that it is gone (``None``).

        Args:
            name: what is at fault, unique among faults (the ``fault`` label of
                its ``monitor_fault`` alert): ``state_dir``, ``mqtt_client_id``,
                ``receiver:<name>`` ...
            problem: what is wrong, as a fact (``state_dir`` {detail},
                ``client_id_taken`` {client_id, count}, ``receiver_rejecting``
                {receiver, code, detail}).
        """
        if problem is None:
            self._faults.pop(name, None)
        else:
            self._faults[name] = problem

    def evaluate(self, now: float) -> Snapshot:
        """Work out effective states at ``now`` and account the elapsed time.

        Incremental (the default): a device is judged again only when it was
        touched (an observation, a check-in, its source's link) or a change falls
        due (a reading reaching its ``max_age``, a pushed device's ``stale_after``,
        a check-in's validity), or its parent's state changed; the others keep
        their view and status.  A site's channels and outage evidence are judged
        again when a device they read changed view or a declaration changed or runs
        out.  A ``now`` before the previous evaluation means the
        wall clock stepped back (NTP, an operator): no time is counted for it and
        every time after ``now`` becomes ``now`` (see :meth:`DeviceTracker.rewind`).
        """
        if now < self._last_eval:
            self._rewind(now)
        self._now = now
        # Until this evaluation ends: one that fails midway has replaced statuses that
        # no snapshot names, so the next is told whole.
        whole, self._whole = self._whole, True
        fresh = self._judge_devices(self._take_touched(now), now)
        cut_off, blind = self._cut_off()
        again = list(self._trackers) if blind or self._blind else list(fresh)
        self._blind = blind
        self._last_eval = now
        for d in again:
            state, reasons = self._judged[d]
            if blind and state is State.DOWN:
                state, reasons = State.UNKNOWN, (Fact("monitor_blind"),)
            tally = self._device_time[d] = self._device_time[d].entered(state, now)
            tracker = self._trackers[d]
            values = fresh.get(d) or fresh_readings(
                tracker.device, tracker.shared_readings(), tracker.reading_at, now)
            self._view(d, state, tally.since, reasons, values)

        inv = self.inventory
        views: Mapping[str, DeviceView] = self._views
        new_views = self._new_views
        changed_sites = []
        judged_sites = self._sites_to_judge(new_views)
        for s in judged_sites:
            site = inv.sites[s]
            channels = self._channels[s] = judge_channels(inv, s, views)
            found = evidence(inv, site, views, {c: ch.state for c, ch in channels.items()},
                             self.declarations, now)
            outages = self._outages(s, found, now)
            if self._active.get(s) != outages:
                self._active[s] = outages
                changed_sites.append(s)
        active = self._active
        out = mains_out(active)
        self._forget_changed(changed_sites, out)
        # Devices whose status may change: a new view or readings, or an endurance
        # judged again (each, the first time, in the inventory's order).
        todo = self._trackers.keys() if len(self._status) < len(self._trackers) \
            else new_views | fresh.keys() | self._endurance.unkept
        new_devices = []
        for d in todo:
            if d in new_views or d in fresh or not self._endurance.holds(d):
                self._status[d] = self._device_status(d, views, active, out, now)
                new_devices.append(d)
        # A site's status reads its members' states (a new state is a new view: the site
        # is judged again), channels and outages (judged with them), scenarios, and with
        # trap_every the clock: a site with none of them changed keeps its status.
        kept = self._sites
        sites: dict[str, SiteStatus] = {}
        new_sites = []
        for s, site in inv.sites.items():
            was = kept.get(s)
            if was is None or s in judged_sites or site.trap_every is not None \
                    or not self._scenarios.holds(s):
                sites[s] = self._site_status(site, views, active, out, now)
                if was is None or sites[s] is not was[0]:
                    new_sites.append(s)
            else:
                sites[s] = was[0]
        generation = next(_GENERATIONS)
        changes = Changes(self._generation, generation, frozenset(new_devices),
                          frozenset(new_sites), whole)
        self._generation, self._whole = generation, False
        return Snapshot(now, MappingProxyType(dict(self._status)), MappingProxyType(sites),
                        cut_off, MappingProxyType(dict(self._faults)), changes)

    def _site_status(self, site: Site, views: Mapping[str, DeviceView],
                     active: Mapping[str, Mapping[OutageKind, Outage]],
                     out: Mapping[str, float], now: float) -> SiteStatus:
        """``site``'s status at ``now``: the last evaluation's object when nothing in it
        changed (its state held, the same channels, verdicts and outages, the same
        trap path), so that what reads it can tell a site that changed by identity."""
        s, inv = site.id, self.inventory
        channels = self._channels[s]
        members = [self._status[d] for d in inv.devices_by_site.get(s, ())]
        state = site_state(channels.values(), members)
        tally = self._site_time[s] = self._site_time[s].entered(state, now)
        reachable = None if state is State.UNKNOWN or not channels else state in WORKING
        scenarios = self._scenarios.get(s, lambda v, a, o: MappingProxyType(
            evaluate_site(inv, site, v, a, now, o)), views, active, out)
        outages = active[s]
        path = trap_path(site, self._trap_heard.get(s), self._traps_since, now)
        kept = self._sites.get(s)
        if kept is not None:
            status, kept_channels, kept_outages = kept
            if (status.tally is tally and status.reachable is reachable
                    and kept_channels is channels and status.scenarios is scenarios
                    and kept_outages is outages and status.trap_path == path):
                return status
        status = SiteStatus(
            site=site, state=state, since=tally.since, reachable=reachable,
            channels=MappingProxyType(channels), tally=tally, scenarios=scenarios,
            outages=MappingProxyType(outages), trap_path=path)
        self._sites[s] = (status, channels, outages)
        return status

    def _sites_to_judge(self, new_views: set[str]) -> set[str] | Mapping[str, Site]:
        """Sites whose channels and outage evidence may have changed: those reading a
        device whose view changed, those whose declarations changed or run out (a
        road declared ``until``), every one when not incremental."""
        touched = self._touched_sites
        if touched is None or not self._incremental:
            self._touched_sites = set()
            return self.inventory.sites
        touched.update(s for d in new_views for s in self._readers[d])
        touched.update(s for (s, _), decl in self.declarations.items()
                       if decl.until is not None)
        self._touched_sites = set()
        return touched

    def _take_touched(self, now: float) -> list[str]:
        """The devices to judge at ``now``, parents before children: every one when not
        incremental; else those touched, those whose view moves with the clock, and
        those with a change due by ``now`` (a little early is only work)."""
        if not self._incremental:
            return sorted(self._trackers, key=self._depth.__getitem__)
        touched = self._touched | self._moving | self._agenda.due(now + _EARLY)
        self._touched = set()
        return sorted(touched & self._trackers.keys(), key=self._depth.__getitem__)

    def _judge_devices(self, todo: list[str], now: float
                       ) -> dict[str, tuple[Mapping[str, Reading], Mapping[str, float]]]:
        """Judge ``todo`` (parents first) and the children of any whose state changed;
        returns the fresh readings of each device judged."""
        fresh: dict[str, tuple[Mapping[str, Reading], Mapping[str, float]]] = {}
        queue = [(self._depth[d], d) for d in todo]  # sorted: already a heap
        queued = set(todo)
        while queue:
            _, d = heapq.heappop(queue)
            tracker = self._trackers[d]
            source = tracker.device.source
            if self._source_up.get(source, 0.0) is not None:
                tracker.expire(now, self._source_up.get(source))
            fresh[d] = fresh_readings(tracker.device, tracker.shared_readings(),
                                      tracker.reading_at, now)
            judged = self._effective(d, fresh[d][0])
            if self._judged.get(d) != judged:
                self._set_judged(d, judged)
                for child in self._children.get(d, ()):
                    if child not in queued:
                        queued.add(child)
                        heapq.heappush(queue, (self._depth[child], child))
            self._schedule(d, fresh[d][1], judged, now)
        return fresh

    def _schedule(self, d: str, stale: Mapping[str, float],
                  judged: tuple[State, tuple[Fact, ...]], now: float) -> None:
        """When ``d`` next changes with the clock alone: a fresh reading reaching its
        ``max_age``, a pushed device going silent past ``stale_after``, a check-in
        expiring.  A view with stale ages or a stale check-in moves at every
        evaluation (the ages are in it)."""
        tracker = self._trackers[d]
        device = tracker.device
        if stale or any(f.code == "checkin_stale" for f in judged[1]):
            self._moving.add(d)
            return
        self._moving.discard(d)
        times = []
        fresh_to = fresh_until(device, tracker.readings, tracker.reading_at)
        if fresh_to is not None:
            times.append(fresh_to)
        if device.stale_after is not None \
                and self._source_up.get(device.source, 0.0) is not None:
            heard = tracker.heard(self._source_up.get(device.source))
            if heard is not None:
                times.append(heard + device.stale_after)
        checkin = self.checkins.get(d)
        if device.source == "checkin" and checkin is not None:
            times.append(checkin.at + device.checkin_validity)
        self._agenda.put(d, min((t for t in times if t >= now), default=None))

    def _device_status(self, d: str, views: Mapping[str, DeviceView],
                       active: Mapping[str, Mapping[OutageKind, Outage]],
                       out: Mapping[str, float], now: float) -> DeviceStatus:
        tracker = self._trackers[d]
        device = tracker.device
        view = views[d]
        return DeviceStatus(
            device=device,
            state=view.state,
            since=view.since,
            reasons=view.reasons,
            readings=tracker.shared_readings(),
            last_seen=tracker.last_seen,
            tally=self._device_time[d],
            endurance=self._endurance.get(d, lambda v, a, o, site=device.site:
                                          device_endurance(v, d, conditions(
                                              "power", site, a, now, o)), views, active, out),
            checkin=self.checkins.get(d),
            checkin_stale=device.source == "checkin"
            and self._stale_checkin(device) is not None,
            taken_at=tracker.reading_at,
            # Every reading, as the officer sees the device (the view keeps only those
            # judgements read).
            stale=fresh_readings(device, tracker.shared_readings(), tracker.reading_at,
                                 now)[1],
            # The tracker's own maps: it replaces them, never changes them.
            unavailable=tracker.unavailable,
            unconfirmed=tracker.unconfirmed,
        )

    def _view(
        self,
        d: str,
        state: State,
        since: float,
        reasons: tuple[Fact, ...],
        fresh: tuple[Mapping[str, Reading], Mapping[str, float]],
    ) -> DeviceView:
        tracker = self._trackers[d]
        device = tracker.device
        values, stale = _judged_only(fresh[0]), _judged_only(fresh[1])
        unavailable, unconfirmed = _judged_only(tracker.unavailable), \
            _judged_only(tracker.unconfirmed)
        checkin_charge = None
        if device.source == "checkin" and CHARGE in values:
            charge = values[CHARGE]
            at = tracker.reading_at.get(CHARGE)
            if isinstance(charge, float) and at is not None:
                checkin_charge = (charge, at)
        # An event counter that rose at its latest report (upsInputLineBads: an event since).
        rose = {n: at for n, at in tracker.rose_at.items()
                if tracker.reading_at.get(n) == at} or _EMPTY
        last = self._views.get(d)
        if (last is not None and last.device is device and last.state is state
                and last.since == since and last.values is values and not stale
                and not last.stale and last.reasons == reasons
                and last.checkin_charge == checkin_charge and not rose and not last.rose
                and not unavailable and not last.unavailable
                and not unconfirmed and not last.unconfirmed):
            return last  # the common case, without making a view to compare
        view = DeviceView(device, state, since, self.inventory.sites[device.site].name, reasons,
                          values, stale, unavailable, checkin_charge, rose, unconfirmed)
        # The same object while nothing changed: kept judgements see it is theirs at once.
        if last is not None and last == view:
            return last
        self._views[d] = view
        self._new_views.add(d)
        return view

    def _forget_changed(self, sites: list[str], out: dict[str, float]) -> None:
        """Tell the kept judgements which views (:meth:`_view` noted them), sites'
        outages and mains cuts changed since the previous evaluation."""
        last_out = self._last_out
        changed = (
            self._new_views, sites,
            [s for s in out.keys() | last_out.keys() if out.get(s) != last_out.get(s)],
        )
        for memo in (self._scenarios, self._endurance):
            memo.forget(changed)
        self._new_views, self._last_out = set(), out

    def _rewind(self, now: float) -> None:
        for tracker in self._trackers.values():
            tracker.rewind(now)
        for times in (self._device_time, self._site_time):
            for one, tally in times.items():
                times[one] = tally.rewound(self._last_eval, now)
        self._touched.update(self._trackers)
        self._touched_sites = None
        self._agenda.clear()
        for key, since in self._outage_since.items():
            self._outage_since[key] = min(since, now)
        for source, up_since in self._source_up.items():
            if up_since is not None:
                self._source_up[source] = min(up_since, now)
        self._trap_heard = {site: min(at, now) for site, at in self._trap_heard.items()}
        if self._traps_since is not None:
            self._traps_since = min(self._traps_since, now)

    def _set_judged(self, d: str, judged: tuple[State, tuple[Fact, ...]]) -> None:
        """Note ``d``'s effective state, and count it where :meth:`_cut_off` looks."""
        site = self._trackers[d].device.site
        old = self._judged.get(d)
        self._judged[d] = judged
        for state, step in ((old[0], -1), (judged[0], 1)) if old else ((judged[0], 1),):
            if state is State.DOWN:
                down = self._down_at[site] = self._down_at.get(site, 0) + step
                if not down:
                    del self._down_at[site]
            elif state in WORKING:
                self._working += step

    def _cut_off(self) -> tuple[Fact | None, bool]:
        """Is the monitor, not the villages, cut off?  (the fact, and whether blind)

        Every site going silent at once (no device of any site works, the
        centre's included, and devices at two sites or more are down) points
        at the monitor's own link: those devices become ``unknown`` rather than
        ``down`` (``monitor_blind``), so no village is paged as isolated.
        """
        if len(self._down_at) >= 2 and not self._working:
            return Fact("cut_off", {"sources": ()}), True
        lost = sorted(s for s, since in self._source_up.items() if since is None)
        if lost:
            return Fact("cut_off", {"sources": tuple(lost)}), False
        return None, False

    def _outages(
        self, site: str, found: Mapping[OutageKind, tuple[Fact, ...]], now: float
    ) -> dict[OutageKind, Outage]:
        """Outages with the time each was first seen; forget the ones that ended."""
        result: dict[OutageKind, Outage] = {}
        for kind in OUTAGE_KINDS:
            key = (site, kind)
            if kind not in found:
                self._outage_since.pop(key, None)
                continue
            declared = self.declarations.get(key) if kind == "road" else None
            since = declared.since if declared else self._outage_since.setdefault(key, now)
            result[kind] = Outage(kind, since, found[kind], declared is not None)
        return result

    def _stale_checkin(self, device: Device) -> Fact | None:
        checkin = self.checkins.get(device.id)
        if checkin is None:
            return Fact("checkin_missing", {"validity": device.checkin_validity})
        age = self._now - checkin.at
        if age > device.checkin_validity:
            return Fact("checkin_stale", {"at": checkin.at, "age": age,
                                          "validity": device.checkin_validity})
        return None

    def _effective(self, d: str, values: Mapping[str, Reading]
                   ) -> tuple[State, tuple[Fact, ...]]:
        """``d``'s state and reasons before the cut-off check, its parent's judged."""
        if d in self._looped:
            return State.UNKNOWN, (Fact("parent_loop"),)  # guards a cycle in config
        tracker = self._trackers[d]
        device = tracker.device
        parent = self._judged[device.parent][0] if device.parent else None
        if self._source_up.get(device.source, 0.0) is None:
            return State.UNKNOWN, (Fact("source_lost", {"source": device.source}),)
        if parent is not None and parent not in WORKING:
            parent_device = self.inventory.devices[device.parent or ""]
            return State.UNKNOWN, (Fact("behind_parent", {
                "device": parent_device.id, "name": parent_device.name,
                "state": parent.value}),)
        if device.source == "checkin" and (stale := self._stale_checkin(device)):
            return State.UNKNOWN, (stale,)
        if tracker.failure is not None and tracker.failure.code == "auth_error":
            return State.UNKNOWN, (tracker.failure,)
        if tracker.raw is State.UNKNOWN:
            waiting = Fact("relearning", {"source": device.source}) \
                if tracker.relearning is not None else None
            return State.UNKNOWN, (tuple(f for f in (waiting, tracker.known) if f)
                                   or (Fact("not_seen"),))
        if tracker.raw is State.DOWN:
            return State.DOWN, (tracker.failure or Fact("no_answer"),)
        return _health(device, values)


def _always(result: object, reads: tuple[Reads[str, object], ...]) -> bool:
    return True


def _reads_move(result: object, reads: tuple[Reads[str, object], ...]) -> bool:
    """A judgement moves with the clock if it read a check-in's battery (it decays) or a
    mains cut in progress (the public network's backup runs down)."""
    views, _, out = reads
    return any(True for _ in out.found()) or any(
        isinstance(v, DeviceView) and v.checkin_charge is not None for v in views.found())


def _scenarios_move(result: Mapping[str, ScenarioResult],
                    reads: tuple[Reads[str, object], ...]) -> bool:
    """... and a ``now`` verdict that names clock times moves with it."""
    return _reads_move(result, reads) or any(r.at is not None for r in result.values())


# One object for every healthy device's verdict: the fleet keeps each device's (20 000
# tuples alike, 1 MiB measured).
_HEALTHY: tuple[State, tuple[Fact, ...]] = (State.UP, ())


def _health(device: Device, values: Mapping[str, Reading]) -> tuple[State, tuple[Fact, ...]]:
    """An answering device's state from its health rules on fresh readings: ``lost`` if a
    rule that takes the channel away fails, ``degraded`` if another does, else ``up``."""
    failing = []
    for rule in device.health:
        value = values.get(rule.reading)
        if value is not None and rule.fails(value):
            failing.append((rule, value))
    if not failing:
        return _HEALTHY
    facts = tuple(
        Fact("health", {"reading": r.reading, "value": v, "effect": r.effect,
                        "text_zh": r.text.get("zh", ""), "text_en": r.text.get("en", "")})
        for r, v in sorted(failing, key=lambda rv: rv[0].effect != "lost")
    )
    lost = any(r.effect == "lost" for r, _ in failing)
    return (State.LOST if lost else State.DEGRADED), facts


_EMPTY: Mapping[str, Any] = MappingProxyType({})
_V = TypeVar("_V")


def _judged_only(by_reading: Mapping[str, _V]) -> Mapping[str, _V]:
    """``by_reading`` without the readings no judgement reads (a PDT terminal's RSSI):
    a change in those alone leaves the device's view, and what was judged on it, as
    they were.  ``by_reading`` itself when it holds no other, one shared empty map
    when it holds only others (a UPS's objects answered as noSuchObject)."""
    if by_reading.keys() <= JUDGED:
        return by_reading
    return {name: v for name, v in by_reading.items() if name in JUDGED} or _EMPTY


#: Changes due this long after an evaluation are judged at it (floating point).
_EARLY = 1e-3


def _family(inventory: Inventory) -> tuple[dict[str, int], dict[str, tuple[str, ...]],
                                           frozenset[str], dict[str, tuple[str, ...]]]:
    """Each device's depth below its top parent, its children, the devices on a loop
    of parents (refused by the config loader; guarded here all the same), and the
    sites whose channels or outage evidence read each device (its own; those whose
    providers depend on it)."""
    depth: dict[str, int] = {}
    looped: set[str] = set()

    def walk(d: str, path: list[str]) -> int:
        if d in depth:
            return depth[d]
        if d in path:
            looped.update(path[path.index(d):])
            return 0
        parent = inventory.devices[d].parent
        path.append(d)
        depth[d] = 0 if parent is None else walk(parent, path) + 1
        path.pop()
        return depth[d]

    children: dict[str, list[str]] = {}
    for d, device in inventory.devices.items():
        walk(d, [])
        if device.parent is not None:
            children.setdefault(device.parent, []).append(d)
    readers: dict[str, set[str]] = {d: {device.site} for d, device in inventory.devices.items()}
    for device in inventory.devices.values():
        if device.channel is not None:
            for needed in device.depends_on:
                readers.setdefault(needed, set()).add(device.site)
    # Most devices are read by their own site alone: one tuple per site serves them all.
    one = Shared()
    return (depth, {d: tuple(c) for d, c in children.items()}, frozenset(looped),
            {d: one(tuple(sorted(sites))) for d, sites in readers.items()})
