"""Alert rules over fleet snapshots (pure; time passed in).

Each rule looks at a snapshot and gives, for every thing it watches, a
verdict: ``True`` (the condition holds), ``False`` (it does not) or ``None``
(cannot tell: the thing is unknown, e.g. not seen since a restart or the
monitor is cut off).  ``None`` keeps an alert as it is, so a restart or a
monitor outage neither fires nor resolves anything.  A condition that holds
for the rule's ``for`` seconds fires; one that stops resolves.

Rules (DESIGN.md §3, the alerting issue):
``site_isolated`` no channel works; ``site_channel_lost`` one does not while
the village is still reachable; ``device_down``; ``device_lost`` (answers but
cannot carry its channel: not registered, no signal); ``device_degraded``;
``scenario_not_ready`` (a scenario, with today's outages folded in, would
not last the target); ``outage_active`` (a 三断 outage detected or declared,
at a village or at a site others depend on, such as the district centre);
``endurance_low`` (with the outages active now, the site would not last its
target: the ``now`` view, exactly the active set — power + road is not
``all``); ``countdown`` (with the outages active now, the site is certainly
reachable for less than each configured threshold, 24/6/1 h by default);
``checkin_stale``; ``monitor_cut_off``; ``monitor_fault`` (the monitor still
works but something of its own is wrong, e.g. its state directory is full or
read-only).  An alert's facts are typed (:mod:`commsmon.core.facts`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import chain
from typing import Any

from commsmon.core.alerting import Alert, Severity, fingerprint
from commsmon.core.facts import DerivedFact, Fact, fact_from_json, fact_to_json, worked_out
from commsmon.core.outages import OUTAGE_KINDS
from commsmon.core.readiness import SCENARIOS, ScenarioResult
from commsmon.core.snapshot import ChannelStatus, DeviceStatus, SiteStatus, Snapshot
from commsmon.core.types import State

__all__ = [
    "DEFAULT_COUNTDOWN_HOURS",
    "DEFAULT_RULES",
    "RULES",
    "AlertEngine",
    "Firing",
    "RuleSpec",
    "dump_held",
    "facts_from_json",
    "facts_to_json",
]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """How a rule alerts.

    Attributes:
        for_seconds: how long the condition must hold before it fires.
        severity: ``critical``, ``warning`` or ``info``.
        enabled: whether the rule runs.
        labels: extra labels put on its alerts (from the configuration).
    """

    for_seconds: float = 0.0
    severity: Severity = "warning"
    enabled: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)


RULES = (
    "site_isolated",
    "site_channel_lost",
    "device_down",
    "device_lost",
    "device_degraded",
    "scenario_not_ready",
    "outage_active",
    "endurance_low",
    "countdown",
    "checkin_stale",
    "trap_path_down",
    "monitor_cut_off",
    "monitor_fault",
)

DEFAULT_RULES: Mapping[str, RuleSpec] = {
    "site_isolated": RuleSpec(60, "critical"),
    "site_channel_lost": RuleSpec(300, "warning"),
    "device_down": RuleSpec(300, "warning"),
    "device_lost": RuleSpec(300, "warning"),
    "device_degraded": RuleSpec(900, "info"),
    "scenario_not_ready": RuleSpec(3600, "warning"),
    "outage_active": RuleSpec(60, "critical"),
    "endurance_low": RuleSpec(0, "critical"),
    "countdown": RuleSpec(0, "critical"),
    "checkin_stale": RuleSpec(0, "warning"),
    "trap_path_down": RuleSpec(0, "warning"),  # trappath already allows a missed period
    "monitor_cut_off": RuleSpec(60, "critical"),
    "monitor_fault": RuleSpec(60, "warning"),
}

#: Hours left (the ``now`` view) below which ``countdown`` fires, one alert each.
DEFAULT_COUNTDOWN_HOURS: tuple[float, ...] = (24.0, 6.0, 1.0)

Verdict = bool | None


def _given(*facts: Fact) -> tuple[Fact, ...]:
    return facts


_no_facts = _given


@dataclass(frozen=True, slots=True)
class _Candidate:
    """One rule's verdict on one thing; ``facts`` made only for a verdict that holds
    (a province has a hundred thousand candidates, a few of which fire)."""

    rule: str
    labels: dict[str, str]
    verdict: Verdict
    facts: Callable[[], tuple[Fact, ...]] = _no_facts


# What a site's candidates were taken with: its providers' parts they read (by value),
# and the fingerprints they left pending or firing, each with whether it held.
_Kept = tuple[tuple[object, ...], tuple[tuple[str, bool], ...]]


def _read_of(d: DeviceStatus) -> tuple[object, ...]:
    """What the rules read of a device, as its candidates and its facts
    (:func:`_device_candidates`, :func:`_device_fact`) do: not its readings nor when it
    last answered, which change at every poll while its verdicts stay."""
    return (d.device, d.state, d.since, d.reasons, d.checkin_stale)


@dataclass(slots=True)
class Firing:
    """The engine's memory of one alert: pending (not yet ``for``) or firing.

    Attributes:
        alert: the alert as last evaluated (its facts replaced when they change).
        pending_since: epoch seconds the condition was first seen holding.
        firing: whether it has held for its ``for`` and fires.
    """

    alert: Alert
    pending_since: float
    firing: bool = False


class AlertEngine:
    """Evaluates the rules on each snapshot and remembers pending and firing alerts.

    Args:
        rules: the spec of each rule by name (missing names use the defaults).
        countdown_hours: thresholds of the ``countdown`` rule, hours.
        incremental: skip the candidates of a device or site when what they read of
            it did not change (``False``: look at every candidate, the reference for
            tests).
    """

    def __init__(
        self,
        rules: Mapping[str, RuleSpec] | None = None,
        countdown_hours: tuple[float, ...] = DEFAULT_COUNTDOWN_HOURS,
        incremental: bool = True,
    ) -> None:
        self.rules = {**DEFAULT_RULES, **(rules or {})}
        self.countdown_hours = tuple(sorted(set(countdown_hours), reverse=True))
        self.active: dict[str, Firing] = {}
        # Each active alert's labels (:func:`_label_key`) -> its fingerprint: a candidate
        # is looked up by its labels, and hashed only when it begins (a province has a
        # hundred thousand candidates at every evaluation, a few of which are pending or
        # firing).
        self._fingerprints: dict[tuple[str, ...], str] = {}
        #: Counts every change of which alerts are pending or firing and since when:
        #: what :meth:`dump` keeps but the facts.
        self.changes = 0
        #: Counts every change of a firing alert's facts (a countdown's hours, a
        #: provider's reasons): the rest of what :meth:`dump` keeps.
        self.revised = 0
        # What each device's and site's candidates read at the last update (a device's
        # parts, :func:`_read_of`; a site's status, and its channels' providers' parts
        # its facts name), with, for a site, the fingerprints of the alerts they left
        # pending or firing and whether each held (``False``: could not tell).  One that
        # reads the same again has the same verdicts: only those alerts' ``for`` timers
        # move (a province has 70 000 device and 53 000 site candidates at every
        # evaluation; a twelfth of its devices answer in 5 s, a few of which change
        # state).  Not a device's status: the rules would hold every replaced one, with
        # its readings, through the next evaluation.
        self._devices: dict[str, tuple[object, ...]] = {}
        self._sites: dict[str, _Kept] = {}
        # Of the devices, those whose candidates left alerts pending or firing, as a
        # site's are kept (a few of a province's 20 000: the rest keep no tuple), and the
        # generation of the last snapshot read (:class:`~commsmon.core.snapshot.Changes`).
        self._holding: dict[str, tuple[tuple[str, bool], ...]] = {}
        self._generation: int | None = None
        self._cut_off: bool | None = None  # every device's verdicts turn on it
        self._incremental = incremental
        self.taken = 0  # devices and sites whose candidates were taken, since creation

    def update(self, snap: Snapshot) -> list[Alert]:
        """Evaluate at ``snap.at``; returns the alerts that resolved now.

        Firing alerts are then in :attr:`firing`.
        """
        now = snap.at
        resolved: list[Alert] = []
        seen: set[str] = set()
        cut_off = snap.cut_off is not None
        # Statuses the snapshot holds anew, when it follows the last one read (else every
        # one may be): only those can read differently.
        delta = snap.new_since(self._generation)
        self._generation = None  # until this update ends: one that fails is not followed
        if cut_off != self._cut_off or not self._incremental:
            self._cut_off, self._devices, self._sites, self._holding = cut_off, {}, {}, {}
            delta = None
        for memory, present in ((self._devices, snap.devices), (self._sites, snap.sites),
                                (self._holding, snap.devices)):
            if delta is None or len(memory) > len(present):  # a reload took some away
                for gone in [k for k in memory if k not in present]:
                    del memory[gone]
        for c in _monitor_candidates(snap):
            self._apply(c, now, seen, resolved)
        countdown = self.countdown_hours
        devices = snap.devices
        # A device's status is replaced whenever it answers; what the rules read of it
        # rarely changes.  Only a new status can read differently: those are read here,
        # once, for the device and for the sites its channels serve.
        new: dict[str, tuple[object, ...]] = {}
        moved: set[str] = set()
        for d in [d for d in devices if d in delta.devices] if delta is not None else devices:
            reads, kept = _read_of(devices[d]), self._devices.get(d)
            if kept != reads:
                moved.add(d)
            elif kept[0] is reads[0]:  # the same parts: the one object its sites hold too
                reads = kept
            new[d] = reads
        for site in snap.sites.values():
            s = site.site.id
            kept = self._sites.get(s)
            same = delta is not None and s not in delta.sites
            if kept is not None and same and (not moved or not any(
                    p in moved for ch in site.channels.values() for p in ch.providers)):
                if kept[1]:  # the same site, its providers read alike
                    self._hold_kept(kept[1], now, seen)
                continue
            # A site's channel alerts tell of their providers: theirs are read too (the
            # device's own read, kept or new, not a copy of it).
            providers = tuple(new.get(p) or self._devices.get(p) or _read_of(devices[p])
                              for ch in site.channels.values() for p in ch.providers
                              if p in devices)
            self._follow(s, same, providers, now, seen, resolved,
                         partial(_site_candidates, snap, site, cut_off, countdown))
        for d in new:
            if d not in moved:  # its verdicts are as they were
                self._hold_kept(self._holding.get(d, ()), now, seen)
            elif held := self._take(partial(_device_candidates, devices[d], cut_off),
                                    now, seen, resolved):
                self._holding[d] = held
            else:
                self._holding.pop(d, None)
            # The new parts, though they read alike (a reload makes new Devices): the old
            # are let go.
            self._devices[d] = new[d]
        for d, held in self._holding.items():  # the same status: its alerts hold
            if d not in new:
                self._hold_kept(held, now, seen)
        # Things that left the inventory resolve too.
        for fp in [fp for fp in self.active if fp not in seen]:
            entry = self.active.pop(fp)
            self._fingerprints.pop(_label_key(entry.alert.labels), None)
            self.changes += 1
            if entry.firing:
                resolved.append(replace(entry.alert, ends_at=now))
        self._generation = snap.generation
        return resolved

    def _follow(self, site: str, same: bool, reads: tuple[object, ...], now: float,
                seen: set[str], resolved: list[Alert],
                candidates: Callable[[], Iterator[_Candidate]]) -> None:
        """Take the candidates of one site, unless what they read is as at the last
        update (``reads``: its providers' parts, equal; ``same``: its status is the same
        object): then they are the same verdicts, and only their alerts' ``for`` timers
        move."""
        kept = self._sites.get(site)
        if kept is not None and same and kept[0] == reads:
            self._hold_kept(kept[1], now, seen)
            # Equal, maybe not the same objects (a reload makes new Devices): keep the
            # new ones, so the old are let go.
            self._sites[site] = (reads, kept[1])
            return
        self._sites[site] = (reads, self._take(candidates, now, seen, resolved))

    def _take(self, candidates: Callable[[], Iterator[_Candidate]], now: float,
              seen: set[str], resolved: list[Alert]) -> tuple[tuple[str, bool], ...]:
        """Apply the verdicts of one device's or site's candidates; the fingerprints of
        the alerts they left pending or firing, each with whether its condition held."""
        self.taken += 1
        held = []
        for c in candidates():
            fp, verdict = self._apply(c, now, seen, resolved)
            if fp in self.active:
                held.append((fp, verdict is True))
        return tuple(held)

    def _hold_kept(self, held: tuple[tuple[str, bool], ...], now: float,
                   seen: set[str]) -> None:
        """The kept verdicts of a device or site that reads as before (``held``: its
        alerts' fingerprints, and whether each condition held): its alerts stay, and
        those whose condition held move their ``for`` timers."""
        for fp, holds in held:
            entry = self.active.get(fp)
            if entry is not None:
                seen.add(fp)
                if holds:
                    self._hold(entry, now)

    def _apply(self, c: _Candidate, now: float, seen: set[str],
               resolved: list[Alert]) -> tuple[str, Verdict]:
        """Take one candidate's verdict; its alert's fingerprint ("" if none) and the
        verdict (``None`` for a rule turned off)."""
        spec = self.rules[c.rule]
        if not spec.enabled:
            return "", None
        labels = {"alertname": c.rule, "severity": spec.severity, **spec.labels, **c.labels}
        label_set = _label_key(labels)
        known = self._fingerprints
        fp = known.get(label_set, "")
        entry = self.active.get(fp)
        if entry is not None:
            seen.add(fp)
        if c.verdict is None:
            return fp, None  # cannot tell: keep whatever we had
        if c.verdict:
            if entry is None:
                fp = fingerprint(labels)
                seen.add(fp)
                known[label_set] = fp
                entry = self.active.get(fp)  # found: the index had lost it
            if entry is None:
                alert = Alert(c.rule, spec.severity, labels, c.facts(), starts_at=now)
                entry = self.active[fp] = Firing(alert, now)
                self.changes += 1
            else:
                facts = c.facts()
                if facts != entry.alert.facts:
                    entry.alert = replace(entry.alert, facts=worked_out(facts)
                                          if entry.firing else facts)
                    if entry.firing:  # a pending alert's facts are not saved
                        self.revised += 1
                elif not entry.firing and facts and isinstance(facts[-1], DerivedFact):
                    # The same verdict, maybe worked out again: keep the newest, which
                    # the site's status holds too, and let the one it replaced go.
                    entry.alert = replace(entry.alert, facts=facts)
            self._hold(entry, now)
        elif entry is not None:
            del self.active[fp]
            known.pop(label_set, None)
            self.changes += 1
            if entry.firing:
                resolved.append(replace(entry.alert, ends_at=now))
        return fp, c.verdict

    def _hold(self, entry: Firing, now: float) -> None:
        """The alert's condition still holds at ``now``: fire it once it has for its
        rule's ``for``."""
        if now < entry.pending_since:
            # The wall clock stepped back: the condition holds since "now" at most,
            # not for an hour more.
            entry.pending_since = now
            self.changes += 1
        held_for = now - entry.pending_since
        if not entry.firing and held_for >= self.rules[entry.alert.rule].for_seconds:
            entry.firing = True
            self.changes += 1
            # A pending alert keeps its verdict itself; a firing one is put into words
            # for each message and kept by the dispatcher: worked out once, kept so.
            entry.alert = replace(entry.alert, facts=worked_out(entry.alert.facts))

    @property
    def firing(self) -> list[Alert]:
        """Every firing alert."""
        return [f.alert for f in self.active.values() if f.firing]

    def held(self) -> list[tuple[Alert, float, bool]]:
        """Each pending or firing alert, since when its condition holds (epoch s) and
        whether it fires: nothing the engine changes later, so :func:`dump_held` may
        encode it a batch at a time while the event loop goes on."""
        return [(f.alert, f.pending_since, f.firing) for f in self.active.values()]

    def dump(self) -> Iterator[dict[str, Any]]:
        """The engine's memory as JSON-ready data (to survive a restart)."""
        return dump_held(self.held())

    def load(self, data: list[dict[str, Any]]) -> None:
        """Restore what :meth:`dump` gave."""
        self.active, self._fingerprints, self._devices, self._sites = {}, {}, {}, {}
        self._holding, self._generation = {}, None  # the next snapshot is read whole
        self.changes += 1
        for item in data:
            alert = Alert(item["rule"], item["severity"], item["labels"],
                          facts_from_json(item.get("facts")), starts_at=item["starts_at"])
            self.active[alert.fingerprint] = Firing(alert, item["pending_since"], item["firing"])
            self._fingerprints[_label_key(alert.labels)] = alert.fingerprint


def _label_key(labels: Mapping[str, str]) -> tuple[str, ...]:
    """An alert's labels as one flat tuple of names and values, by name: the index's
    key, whatever order they were written in (as a frozenset of pairs, it was 540 B
    an alert, 3.6 MiB for a province's 7 000)."""
    return tuple(chain.from_iterable(sorted(labels.items())))


def dump_held(held: list[tuple[Alert, float, bool]]) -> Iterator[dict[str, Any]]:
    """:meth:`AlertEngine.held` as JSON-ready data, one alert at a time: at province
    scale the whole of it is tens of MiB as objects.

    A pending alert is kept without its facts: none of them is told before it fires,
    and it fires only on a verdict that holds, whose facts replace them first (after a
    restart the first snapshot is read whole).  A province's 6 670 villages pending
    ``scenario_not_ready`` for its hour, their fuel read every minute, were 16 MB of
    JSON to encode again each minute (0.8 s of CPU, bench/memory.py's traffic)."""
    for alert, pending_since, firing in held:
        yield {"rule": alert.rule, "severity": alert.severity, "labels": dict(alert.labels),
               "facts": facts_to_json(alert.facts) if firing else [],
               "starts_at": alert.starts_at, "pending_since": pending_since, "firing": firing}


def facts_to_json(facts: tuple[Fact, ...]) -> list[dict[str, Any]]:
    """An alert's facts as JSON-ready data."""
    return [fact_to_json(f) for f in facts]


def facts_from_json(data: Any) -> tuple[Fact, ...]:
    """An alert's facts from :func:`facts_to_json` data; what an older version kept
    (a map of texts) or anything unreadable gives none: the alert itself is kept."""
    if not isinstance(data, list):
        return ()
    try:
        return tuple(fact_from_json(item) for item in data)
    except (ValueError, TypeError, AttributeError):
        return ()


def _monitor_candidates(snap: Snapshot) -> Iterator[_Candidate]:
    cut_off = snap.cut_off is not None
    yield _Candidate("monitor_cut_off", {}, cut_off,
                     partial(_given, snap.cut_off) if snap.cut_off else _no_facts)
    # A fault that is gone is no longer a candidate, so its alert resolves.
    for name, problem in snap.faults.items():
        yield _Candidate("monitor_fault", {"fault": name}, True, partial(_given, problem))


def _site_candidates(
    snap: Snapshot, s: SiteStatus, cut_off: bool, countdown: tuple[float, ...]
) -> Iterator[_Candidate]:
    site = {"site": s.site.id}
    if s.channels:
        isolated: Verdict = None if s.reachable is None or cut_off else not s.reachable
        yield _Candidate("site_isolated", site, isolated, partial(_channel_facts, s))
    for name, channel in s.channels.items():
        verdict: Verdict
        if channel.state is State.UNKNOWN or cut_off:
            verdict = None
        else:
            verdict = channel.state is State.DOWN and bool(s.reachable)
        yield _Candidate("site_channel_lost", {**site, "channel": name}, verdict,
                         partial(_provider_facts, snap, channel))
    unknown_site = s.state is State.UNKNOWN
    for scenario in SCENARIOS:
        result = s.scenarios.get(scenario)
        if result is None:
            continue
        yield _Candidate(
            "scenario_not_ready", {**site, "scenario": scenario},
            None if cut_off or (result.unknown and unknown_site) else not result.ready,
            partial(_verdict_facts, result),
        )
    if (path := s.trap_path) is not None:
        silent: Verdict = None if cut_off or path.state is State.UNKNOWN \
            else path.state is State.DOWN
        yield _Candidate("trap_path_down", site, silent,
                         partial(_given, path.reason) if path.reason is not None else _no_facts)
    for kind in OUTAGE_KINDS:
        outage = s.outages.get(kind)
        facts = () if outage is None else (Fact("outage", {
            "site": s.site.id, "site_name": s.site.name, "outage": kind, "since": outage.since,
            "declared": outage.declared, "evidence": outage.evidence}),)
        yield _Candidate("outage_active", {**site, "outage": kind}, outage is not None,
                         partial(_given, *facts))
    now = s.scenarios.get("now")
    if now is None:
        return
    # Only while an outage bears on the site: otherwise a short "now" is isolation,
    # which site_isolated tells.
    during = bool(now.outages)
    low: Verdict = during and not now.ready
    if cut_off or (low and now.unknown and unknown_site):
        low = None
    yield _Candidate("endurance_low", site, low, partial(_verdict_facts, now))
    for hours in countdown:
        if hours >= s.site.target_hours:
            continue
        below: Verdict = None if cut_off else during and now.endurance.short(hours)
        yield _Candidate("countdown", {**site, "hours": f"{hours:g}"}, below,
                         partial(_countdown_facts, hours, now))


def _channel_facts(s: SiteStatus) -> tuple[Fact, ...]:
    return tuple(Fact("channel_state", {"channel": c, "state": ch.state.value})
                 for c, ch in s.channels.items())


def _provider_facts(snap: Snapshot, channel: ChannelStatus) -> tuple[Fact, ...]:
    return tuple(_device_fact(snap.devices[p]) for p in channel.providers if p in snap.devices)


def _verdict_facts(result: ScenarioResult) -> tuple[Fact, ...]:
    return (result.kept_fact(),)


def _countdown_facts(hours: float, now: ScenarioResult) -> tuple[Fact, ...]:
    return (Fact("countdown", {"hours": hours}), now.kept_fact())


def _device_facts(d: DeviceStatus) -> tuple[Fact, ...]:
    return (_device_fact(d),)


def _device_fact(d: DeviceStatus) -> Fact:
    dev = d.device
    return Fact("device", {"device": dev.id, "name": dev.name, "kind": dev.kind,
                           "site": dev.site, "state": d.state.value, "since": d.since,
                           "causes": d.reasons})


def _device_candidates(d: DeviceStatus, cut_off: bool) -> Iterator[_Candidate]:
    dev = d.device
    labels = {"site": dev.site, "device": dev.id, "kind": dev.kind}
    facts = partial(_device_facts, d)

    known = d.state is not State.UNKNOWN and not cut_off
    yield _Candidate("device_down", labels, d.state is State.DOWN if known else None, facts)
    yield _Candidate("device_lost", labels, d.state is State.LOST if known else None, facts)
    yield _Candidate("device_degraded", labels, d.state is State.DEGRADED if known else None,
                     facts)
    if dev.source == "checkin":
        stale: Verdict = None
        if d.state is State.UNKNOWN and d.checkin_stale:
            stale = True
        elif d.state is not State.UNKNOWN:
            stale = False
        yield _Candidate("checkin_stale", labels, stale, facts)
    # An agent rejecting our credentials: the monitor's configuration is at fault.
    for reason in d.reasons:
        if reason.code == "auth_error":
            yield _Candidate("monitor_fault", {"fault": f"snmp_auth:{dev.id}"}, True,
                             partial(_given, Fact("auth_error", {
                                 **reason.args, "device": dev.id, "name": dev.name})))
