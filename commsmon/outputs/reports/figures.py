"""The figures of a report, counted from the store's history by the accounting rules
(:mod:`commsmon.core.accounting`): per device availability, per site and scenario
readiness, per hand-checked device check-in compliance, the outages, and the alerts
with their acknowledgements.  No words here: the writers put them in a language."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import tzinfo

from commsmon.core.accounting import (
    KIT_KINDS,
    RULES_VERSION,
    Availability,
    Compliance,
    Readiness,
    Span,
    Window,
    availability,
    checkin_compliance,
    kit_compliance,
    minus,
    period,
    readiness,
    spans,
)
from commsmon.core.dispatch import Silence
from commsmon.core.drills import DrillRecord, Expectations, owns_outage
from commsmon.core.model import Inventory
from commsmon.core.readiness import VIEWS
from commsmon.operations.drills import record_of
from commsmon.state.dutylog import Event
from commsmon.state.store import Store

__all__ = ["Outage", "Report", "count"]

_EXPECT = Expectations()
LIVE_WITHIN = 120.0  # seconds: a daemon whose alive note is younger runs now


@dataclass(frozen=True, slots=True)
class Outage:
    """An outage of the period: site, kind, from its first evidence to its clearing
    (``end`` ``None`` while it goes on at the period's end); ``drill``: the id of the
    drill it began in (``""``: real)."""

    site: str
    kind: str
    start: float
    end: float | None
    drill: str = ""

    def seconds(self, until: float) -> float:
        """Its duration, to ``until`` while it goes on."""
        return (self.end if self.end is not None else until) - self.start


@dataclass
class Report:
    """What a report says, in figures.

    Attributes:
        period: as asked (``2026-11``).
        start, end: epoch seconds, [start, end).
        until: epoch seconds the figures go to (``end``, or now in a period still
            running, or the daemon's last note when it stopped).
        rules: the accounting rules' version.
        devices: device id -> its availability.
        sites: site id -> its availability (of the village as a whole: reachable).
        channels: (site, channel) -> the channel's availability.
        readiness: (site, scenario) -> readiness.
        checkins: device id -> compliance (hand-checked devices).
        outages: the real outages that overlap the period.
        acks: (site, seconds from its first alert to the ack) of each acknowledgement
            of a real alert.
        alerts: site -> how many real alerts began firing there.
        drills: the drills of the period, judged (their windows set apart).
        drill_outages: the outages that began during a drill at their site.
        kit: site -> the kit standard's kinds (and ``keeper``) -> ``working``,
            ``down``, ``unknown``, ``missing`` (``present``).
        maintenance: the maintenance windows, excluded and listed.
        gaps: the times the monitor did not run, counted apart.
        raw: (device or site, span) of every state span, to recount by hand.
    """

    period: str
    start: float
    end: float
    until: float = 0.0
    rules: str = RULES_VERSION
    devices: dict[str, Availability] = field(default_factory=dict)
    sites: dict[str, Availability] = field(default_factory=dict)
    channels: dict[tuple[str, str], Availability] = field(default_factory=dict)
    readiness: dict[tuple[str, str], Readiness] = field(default_factory=dict)
    checkins: dict[str, Compliance] = field(default_factory=dict)
    outages: list[Outage] = field(default_factory=list)
    acks: list[tuple[str, float]] = field(default_factory=list)
    alerts: dict[str, int] = field(default_factory=dict)
    drills: list[DrillRecord] = field(default_factory=list)
    drill_outages: list[Outage] = field(default_factory=list)
    kit: dict[str, dict[str, str]] = field(default_factory=dict)
    kit_kinds: tuple[str, ...] = KIT_KINDS
    maintenance: list[Window] = field(default_factory=list)
    gaps: list[Window] = field(default_factory=list)
    raw: list[tuple[str, Span]] = field(default_factory=list)


def count(store: Store, inventory: Inventory, asked: str, tz: tzinfo,
          maintenance: Sequence[Silence] = (), site: str | None = None,
          expect: Expectations = _EXPECT,
          kit: tuple[Sequence[str], bool] = (KIT_KINDS, True),
          now: float | None = None) -> Report:
    """The report of period ``asked`` (``2026-11``, ``2026-Q4``, ``2026``), for every
    site or ``site``; ``maintenance``: the configuration's maintenance windows;
    ``expect``: what drills must show; ``kit``: the kinds the kit standard requires,
    and whether a named keeper is; ``now``: epoch seconds now (``None``: the daemon's
    last alive note) — while the daemon runs the figures go to now, else to its last
    note.

    Raises:
        ValueError: the period does not read or has not begun, or the site is unknown.
    """
    start, end = period(asked, tz)
    if site is not None and site not in inventory.sites:
        raise ValueError(f"unknown site {site!r}")
    alive = store.alive()
    # what was last seen holds to now while the daemon runs (its alive note is at most a
    # minute old), else to its last note; the rest of the period is not monitored
    if now is None:
        now = alive if alive is not None else start
    running = alive is not None and now - alive <= LIVE_WITHIN
    until = max(start, min(end, now if running else alive if alive is not None else start))
    if start > now:
        raise ValueError(f"period {asked!r} has not begun")
    report = Report(asked, start, end, until=until, kit_kinds=tuple(kit[0]))
    report.gaps = [Window(a, b, "monitor") for a, b in store.gaps(start, end)]
    windows = [(Window(m.starts_at, m.ends_at, m.comment), dict(m.matchers).get("site"))
               for m in maintenance if m.ends_at > start and m.starts_at < end]
    report.maintenance = [w for w, _ in windows]
    sites = [site] if site else list(inventory.sites)
    report.drills = [record_of(d, seen, store, inventory, expect, until)
                     for d, seen in store.drills(start, end) if d.site in sites]
    last: dict[str, str] = {}  # device -> its state at the period's end ("": none)
    for s in sites:
        marks = store.marks(s, ("outage_start", "outage_end", "alert_firing",
                                "alert_resolved"), end)
        outages = _outages(marks, s, start)
        drills = [r for r in report.drills if r.drill.site == s]
        for outage in outages:  # the drill's when of its scenario and begun in it
            drill = next((r.drill.id for r in drills if owns_outage(
                r.drill, outage.kind, outage.start, r.window_end)), "")
            if drill:
                report.drill_outages.append(replace(outage, drill=drill))
            else:
                report.outages.append(outage)
        real = [(o.start, o.end if o.end is not None else until) for o in report.outages
                if o.site == s]
        # a drill's window is set apart, but never a real outage within it
        during = [Window(a, b, r.drill.id) for r in drills
                  for a, b in minus(r.drill.start, min(r.window_end, until), sorted(real))]
        kept = [w for w, where in windows if where in (None, s)] + during
        own = spans(store.state_changes("site_state", s, start, end), until)
        report.sites[s] = availability(own, start, end, kept, report.gaps)
        report.raw += [(s, x) for x in own]
        for channel in dict.fromkeys(inventory.devices[d].channel
                                     for d in inventory.devices_by_site.get(s, ())):
            if channel:
                states = spans(store.state_changes("channel_state", f"{s}/{channel}", start,
                                                   end), until)
                report.channels[s, channel] = availability(states, start, end, kept,
                                                           report.gaps)
        for name in VIEWS:
            verdicts = spans(store.state_changes("readiness", f"{s}/{name}", start, end),
                             until)
            if verdicts:
                report.readiness[s, name] = readiness(verdicts, start, end, kept, report.gaps)
        for device_id in inventory.devices_by_site.get(s, ()):
            device = inventory.devices[device_id]
            states = spans(store.state_changes("device_state", device_id, start, end),
                           until)
            report.devices[device_id] = availability(states, start, end, kept, report.gaps)
            last[device_id] = states[-1].state if states and states[-1].end >= until else ""
            report.raw += [(device_id, x) for x in states]
            if device.source == "checkin" and device.checkin_validity:
                # weeks due from when it was first watched in the period, to now
                watched = max(start, states[0].start) if states else until
                calls = [c.at for c in store.checkins(device_id, start, end) if c.ok]
                report.checkins[device_id] = checkin_compliance(
                    calls, device.checkin_validity, watched, until)
        report.alerts[s] = sum(1 for e in marks if e.kind == "alert_firing" and e.at >= start
                               and not e.detail.get("drill")
                               and not any(w.start <= e.at < w.end for w in during))
        report.acks += [(s, seconds) for at, seconds in _acks(store, marks, s, start, end)
                        if not any(w.start <= at - seconds < w.end for w in during)]
        if inventory.sites[s].role == "village":
            report.kit[s] = kit_compliance(
                kit[0], [(inventory.devices[d].kind, last.get(d, ""))
                         for d in inventory.devices_by_site.get(s, ())],
                inventory.sites[s].keeper if kit[1] else None)
    return report


def _outages(marks: list[Event], site: str, start: float) -> list[Outage]:
    """Outages of ``site`` from ``start`` on, from their start and end events (``marks``:
    the site's, oldest first, to the period's end)."""
    open_: dict[str, float] = {}
    out = []
    for e in marks:
        if e.kind == "outage_start" and e.subject not in open_:
            open_[e.subject] = e.at
        elif e.kind == "outage_end" and e.subject in open_:
            began = open_.pop(e.subject)
            if e.at > start:
                out.append(Outage(site, e.subject, began, e.at))
    out += [Outage(site, kind, began, None) for kind, began in open_.items()]
    return sorted(out, key=lambda o: o.start)


def _acks(store: Store, marks: list[Event], site: str, start: float,
          end: float) -> list[tuple[float, float]]:
    """(epoch seconds of the ack, seconds from the first alert still firing to it) of
    each ack at ``site`` (``marks``: its alert events, oldest first)."""
    out = []
    for entry in store.site_duty(site, start, end, 1_000_000):
        if entry.action != "ack":
            continue
        firing: dict[str, float] = {}
        for e in marks:
            if e.at > entry.at:
                break
            if e.kind == "alert_firing":
                firing.setdefault(e.subject, e.at)
            elif e.kind == "alert_resolved":
                firing.pop(e.subject, None)
        if firing:
            out.append((entry.at, entry.at - min(firing.values())))
    return out
