"""The figures of a report, counted from the store's history by the accounting rules
(:mod:`commsmon.core.accounting`): per device availability, per site and scenario
readiness, per hand-checked device check-in compliance, the outages, and the alerts
with their acknowledgements.  No words here: the writers put them in a language."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import tzinfo

from commsmon.core.accounting import (
    RULES_VERSION,
    Availability,
    Compliance,
    Readiness,
    Span,
    Window,
    availability,
    checkin_compliance,
    period,
    readiness,
    spans,
)
from commsmon.core.dispatch import Silence
from commsmon.core.model import Inventory
from commsmon.core.readiness import VIEWS
from commsmon.state.store import Store

__all__ = ["Outage", "Report", "count"]


@dataclass(frozen=True, slots=True)
class Outage:
    """An outage of the period: site, kind, from its first evidence to its clearing
    (``end`` ``None`` while it goes on at the period's end)."""

    site: str
    kind: str
    start: float
    end: float | None

    def seconds(self, until: float) -> float:
        """Its duration, to ``until`` while it goes on."""
        return (self.end if self.end is not None else until) - self.start


@dataclass
class Report:
    """What a report says, in figures.

    Attributes:
        period: as asked (``2026-11``).
        start, end: epoch seconds, [start, end).
        rules: the accounting rules' version.
        devices: device id -> its availability.
        sites: site id -> its availability (of the village as a whole: reachable).
        readiness: (site, scenario) -> readiness.
        checkins: device id -> compliance (hand-checked devices).
        outages: the outages that overlap the period.
        acks: (site, seconds from its first alert to the ack) of each acknowledgement.
        maintenance: the maintenance windows, excluded and listed.
        gaps: the times the monitor did not run, counted apart.
        raw: (device or site, span) of every state span, to recount by hand.
    """

    period: str
    start: float
    end: float
    rules: str = RULES_VERSION
    devices: dict[str, Availability] = field(default_factory=dict)
    sites: dict[str, Availability] = field(default_factory=dict)
    readiness: dict[tuple[str, str], Readiness] = field(default_factory=dict)
    checkins: dict[str, Compliance] = field(default_factory=dict)
    outages: list[Outage] = field(default_factory=list)
    acks: list[tuple[str, float]] = field(default_factory=list)
    maintenance: list[Window] = field(default_factory=list)
    gaps: list[Window] = field(default_factory=list)
    raw: list[tuple[str, Span]] = field(default_factory=list)


def count(store: Store, inventory: Inventory, asked: str, tz: tzinfo,
          maintenance: Sequence[Silence] = (), site: str | None = None) -> Report:
    """The report of period ``asked`` (``2026-11``, ``2026-Q4``, ``2026``), for every
    site or ``site``; ``maintenance``: the configuration's maintenance windows.

    Raises:
        ValueError: the period does not read, or the site is unknown.
    """
    start, end = period(asked, tz)
    if site is not None and site not in inventory.sites:
        raise ValueError(f"unknown site {site!r}")
    report = Report(asked, start, end)
    report.gaps = [Window(a, b, "monitor") for a, b in store.gaps(start, end)]
    # what was last seen holds until the daemon last said it ran, no further: the rest
    # of the period (the daemon stopped, or not yet come) is not monitored
    alive = store.alive()
    until = end if alive is None else min(end, alive)
    windows = [(Window(m.starts_at, m.ends_at, m.comment), dict(m.matchers).get("site"))
               for m in maintenance if m.ends_at > start and m.starts_at < end]
    report.maintenance = [w for w, _ in windows]
    sites = [site] if site else list(inventory.sites)
    for s in sites:
        kept = [w for w, where in windows if where in (None, s)]
        own = spans(store.state_changes("site_state", s, start, end), until)
        report.sites[s] = availability(own, start, end, kept, report.gaps)
        report.raw += [(s, x) for x in own]
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
            report.raw += [(device_id, x) for x in states]
            if device.source == "checkin" and device.checkin_validity:
                calls = [c.at for c in store.checkins(device_id, start, end) if c.ok]
                report.checkins[device_id] = checkin_compliance(
                    calls, device.checkin_validity, start, end)
        report.outages += _outages(store, s, start, end)
        report.acks += _acks(store, s, start, end)
    return report


def _outages(store: Store, site: str, start: float, end: float) -> list[Outage]:
    """Outages of ``site`` overlapping [start, end), from their start and end events."""
    open_: dict[str, float] = {}
    out = []
    for e in sorted(store.events(site, 0.0, end, 1_000_000, every=True), key=lambda e: e.at):
        if e.kind == "outage_start" and e.subject not in open_:
            open_[e.subject] = e.at
        elif e.kind == "outage_end" and e.subject in open_:
            began = open_.pop(e.subject)
            if e.at > start:
                out.append(Outage(site, e.subject, began, e.at))
    out += [Outage(site, kind, began, None) for kind, began in open_.items()]
    return sorted(out, key=lambda o: o.start)


def _acks(store: Store, site: str, start: float, end: float) -> list[tuple[str, float]]:
    """(site, seconds from the first alert still firing to the ack) of each ack."""
    events = sorted(store.events(site, 0.0, end, 1_000_000, every=True), key=lambda e: e.at)
    out = []
    for entry in store.site_duty(site, start, end, 1_000_000):
        if entry.action != "ack":
            continue
        firing: dict[str, float] = {}
        for e in events:
            if e.at > entry.at:
                break
            if e.kind == "alert_firing":
                firing.setdefault(e.subject, e.at)
            elif e.kind == "alert_resolved":
                firing.pop(e.subject, None)
        if firing:
            out.append((site, entry.at - min(firing.values())))
    return out
