"""Alert rules over fleet snapshots (pure; time passed in).

Each rule looks at a snapshot and gives, for every thing it watches, a
verdict: ``True`` (the condition holds), ``False`` (it does not) or ``None``
(cannot tell: the thing is unknown, e.g. not seen since a restart or the
monitor is cut off).  ``None`` keeps an alert as it is, so a restart or a
monitor outage neither fires nor resolves anything.  A condition that holds
for the rule's ``for`` seconds fires; one that stops resolves.

Rules (DESIGN.md §3, the alerting issue):
``site_isolated`` no channel works; ``site_channel_lost`` one does not while
the village is still reachable; ``device_down``; ``device_degraded``;
``scenario_not_ready`` (peacetime maintenance); ``outage_active`` (a 三断
outage detected or declared); ``endurance_low`` (during an active outage the
village would not last its target); ``checkin_stale``; ``monitor_cut_off``;
``monitor_fault`` (the monitor still works but something of its own is
wrong, e.g. its state directory is full or read-only).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from commsmon.core.alerting import Alert, Severity, fingerprint
from commsmon.core.fleet import DeviceStatus, SiteStatus, Snapshot
from commsmon.core.types import State

__all__ = ["DEFAULT_RULES", "MONITOR_FAULTS", "RULES", "AlertEngine", "Firing", "RuleSpec"]


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
    "device_degraded",
    "scenario_not_ready",
    "outage_active",
    "endurance_low",
    "checkin_stale",
    "monitor_cut_off",
    "monitor_fault",
)

DEFAULT_RULES: Mapping[str, RuleSpec] = {
    "site_isolated": RuleSpec(60, "critical"),
    "site_channel_lost": RuleSpec(300, "warning"),
    "device_down": RuleSpec(300, "warning"),
    "device_degraded": RuleSpec(900, "info"),
    "scenario_not_ready": RuleSpec(3600, "warning"),
    "outage_active": RuleSpec(60, "critical"),
    "endurance_low": RuleSpec(0, "critical"),
    "checkin_stale": RuleSpec(0, "warning"),
    "monitor_cut_off": RuleSpec(60, "critical"),
    "monitor_fault": RuleSpec(60, "warning"),
}

# Faults of the monitor the daemon reports (label values of ``monitor_fault``).
MONITOR_FAULTS = ("state_dir",)

Verdict = bool | None


@dataclass(frozen=True, slots=True)
class _Candidate:
    rule: str
    labels: dict[str, str]
    verdict: Verdict
    facts: dict[str, str]


@dataclass(slots=True)
class Firing:
    """The engine's memory of one alert: pending (not yet ``for``) or firing.

    Attributes:
        alert: the alert as last evaluated (facts refreshed each time).
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
    """

    def __init__(self, rules: Mapping[str, RuleSpec] | None = None) -> None:
        self.rules = {**DEFAULT_RULES, **(rules or {})}
        self.active: dict[str, Firing] = {}

    def update(self, snap: Snapshot) -> list[Alert]:
        """Evaluate at ``snap.at``; returns the alerts that resolved now.

        Firing alerts are then in :attr:`firing`.
        """
        now = snap.at
        resolved: list[Alert] = []
        seen: set[str] = set()
        for c in _candidates(snap):
            spec = self.rules[c.rule]
            if not spec.enabled:
                continue
            labels = {"alertname": c.rule, "severity": spec.severity, **spec.labels, **c.labels}
            fp = fingerprint(labels)
            seen.add(fp)
            entry = self.active.get(fp)
            if c.verdict is None:
                continue  # cannot tell: keep whatever we had
            if c.verdict:
                if entry is None:
                    alert = Alert(c.rule, spec.severity, labels, c.facts, starts_at=now)
                    entry = self.active[fp] = Firing(alert, now)
                else:
                    entry.alert = replace(entry.alert, facts=c.facts)
                    # The wall clock stepped back: the condition holds since "now" at
                    # most, not for an hour more.
                    entry.pending_since = min(entry.pending_since, now)
                if not entry.firing and now - entry.pending_since >= spec.for_seconds:
                    entry.firing = True
            elif entry is not None:
                del self.active[fp]
                if entry.firing:
                    resolved.append(replace(entry.alert, ends_at=now))
        # Things that left the inventory resolve too.
        for fp in [fp for fp in self.active if fp not in seen]:
            entry = self.active.pop(fp)
            if entry.firing:
                resolved.append(replace(entry.alert, ends_at=now))
        return resolved

    @property
    def firing(self) -> list[Alert]:
        """Every firing alert."""
        return [f.alert for f in self.active.values() if f.firing]

    def dump(self) -> list[dict[str, Any]]:
        """The engine's memory as JSON-ready data (to survive a restart)."""
        return [
            {"rule": f.alert.rule, "severity": f.alert.severity, "labels": dict(f.alert.labels),
             "facts": dict(f.alert.facts), "starts_at": f.alert.starts_at,
             "pending_since": f.pending_since, "firing": f.firing}
            for f in self.active.values()
        ]

    def load(self, data: list[dict[str, Any]]) -> None:
        """Restore what :meth:`dump` gave."""
        self.active = {}
        for item in data:
            alert = Alert(item["rule"], item["severity"], item["labels"], item["facts"],
                          starts_at=item["starts_at"])
            self.active[alert.fingerprint] = Firing(alert, item["pending_since"], item["firing"])


def _candidates(snap: Snapshot) -> Iterator[_Candidate]:
    cut_off = snap.cut_off is not None
    yield _Candidate("monitor_cut_off", {}, cut_off, {"reason": snap.cut_off or ""})
    for fault in MONITOR_FAULTS:
        problem = snap.faults.get(fault)
        yield _Candidate("monitor_fault", {"fault": fault}, problem is not None,
                         {"reason": problem or ""})
    for site in snap.sites.values():
        yield from _site_candidates(site, cut_off)
    for device in snap.devices.values():
        yield from _device_candidates(device, cut_off)


def _site_candidates(s: SiteStatus, cut_off: bool) -> Iterator[_Candidate]:
    if s.site.role != "village":
        return
    site = {"site": s.site.id}
    lost = {c: ch.state.value for c, ch in s.channels.items() if ch.state is not State.UP}
    isolated: Verdict = None if s.reachable is None or cut_off else not s.reachable
    yield _Candidate("site_isolated", site, isolated, {
        "channels": ", ".join(f"{c} {st}" for c, st in lost.items()),
    })
    for name, channel in s.channels.items():
        verdict: Verdict
        if channel.state is State.UNKNOWN or cut_off:
            verdict = None
        else:
            verdict = channel.state is State.DOWN and bool(s.reachable)
        yield _Candidate("site_channel_lost", {**site, "channel": name}, verdict,
                         {"providers": ", ".join(channel.providers)})
    for scenario, result in s.scenarios.items():
        unknown = result.unknown and not result.ready
        yield _Candidate(
            "scenario_not_ready", {**site, "scenario": scenario},
            None if cut_off or (unknown and s.state is State.UNKNOWN) else not result.ready,
            {"reason": result.reason, "hours": _hours(result.endurance_hours)},
        )
    for kind, outage in s.outages.items():
        yield _Candidate("outage_active", {**site, "outage": kind}, True,
                         {"evidence": "; ".join(outage.evidence)})
    for kind in ("power", "network", "road"):
        if kind not in s.outages:
            yield _Candidate("outage_active", {**site, "outage": kind}, False, {})
    yield _endurance_low(s, site, cut_off)


def _endurance_low(s: SiteStatus, site: dict[str, str], cut_off: bool) -> _Candidate:
    """During an active outage, would the village last its target as things stand?"""
    active = sorted(s.outages)
    if not active:
        return _Candidate("endurance_low", site, False, {})
    scenario = active[0] if len(active) == 1 else "all"
    result = s.scenarios.get(scenario)
    if result is None or cut_off:
        return _Candidate("endurance_low", site, None, {})
    verdict: Verdict = not result.ready
    if result.endurance_hours is None and not result.ready and s.state is State.UNKNOWN:
        verdict = None
    return _Candidate("endurance_low", site, verdict, {
        "scenario": scenario, "outages": ", ".join(active),
        "hours": _hours(result.endurance_hours), "target": f"{result.target_hours:g}",
        "reason": result.reason,
    })


def _device_candidates(d: DeviceStatus, cut_off: bool) -> Iterator[_Candidate]:
    dev = d.device
    labels = {"site": dev.site, "device": dev.id, "kind": dev.kind}
    facts = {"device_name": dev.name, "reason": d.reason or "", "since": f"{d.since:.0f}"}
    known = d.state is not State.UNKNOWN and not cut_off
    yield _Candidate("device_down", labels, d.state is State.DOWN if known else None, facts)
    yield _Candidate("device_degraded", labels, d.state is State.DEGRADED if known else None,
                     facts)
    if dev.source == "checkin":
        stale: Verdict = None
        if d.state is State.UNKNOWN and d.checkin_stale:
            stale = True
        elif d.state is not State.UNKNOWN:
            stale = False
        yield _Candidate("checkin_stale", labels, stale, facts)


def _hours(hours: float | None) -> str:
    if hours is None:
        return "unknown"
    return "unbounded" if math.isinf(hours) else f"{hours:.1f}"
