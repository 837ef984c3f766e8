"""Three-outage (三断) readiness and the ``now`` view: would a site keep a channel, how long.

For each scenario — ``network`` (public network down), ``road`` (no
resupply, no repair), ``power`` (mains lost at the village and at every site
its channels go through), ``all`` three — and for ``now`` (only the outages
actually active), each site's channels are judged with today's device
states and fresh readings:

* **What is true now holds in every scenario**: an active power outage at the
  village or at any site its chains pass through (the district centre) means
  no mains there in every scenario; an active network outage loses the
  public channel; a declared road outage means no resupply.
* A channel on ``public`` is lost when the public network is; when mains is
  lost at the site (assumed, or now), the public network is one more link,
  lasting the operators' base-station backup (``public_backup_hours``, less
  the time since the cut began) — not known unless configured, so 4G never
  carries a village through a power cut on faith.
* **Every link counts**: a provider lasts as long as the shortest-lived of
  itself, the parents it sits behind, the devices it ``depends_on``, and each
  of their power chains (:mod:`commsmon.core.power`); a link that is down or
  lost now stays lost (no repair can be counted on), an ``unknown`` one makes
  the channel unknown, a ``degraded`` one still works.  Of several providers
  the longest-lived counts (:mod:`commsmon.core.endurance`).
* A channel *survives* when it certainly lasts the site's target (default
  72 h: 72.0 h does, 71.9 h does not); unknown endurance never counts.

A village is ``ready`` when a channel survives; its endurance is its
longest-lived channel's, even below target.  A site others depend on (the
district centre) is judged by what they need of it — its **supports**, e.g.
the PDT repeater: it is ready when every support survives, and its endurance
is the shortest-lived support's.  Pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from commsmon.core.endurance import Endurance, least, lost, most, unknown
from commsmon.core.facts import DerivedFact, Fact
from commsmon.core.model import Device, Inventory, Site
from commsmon.core.outages import Outage, OutageKind
from commsmon.core.power import Conditions, DeviceView, device_endurance
from commsmon.core.types import CHANNELS, ChannelName

__all__ = [
    "SCENARIOS",
    "VIEWS",
    "Outlook",
    "ScenarioResult",
    "conditions",
    "evaluate_site",
    "mains_out",
]

SCENARIOS = ("network", "road", "power", "all")
#: The scenarios and ``now`` (only the outages active now), in display order.
VIEWS = (*SCENARIOS, "now")


@dataclass(frozen=True, slots=True)
class Outlook:
    """One channel of a village, or one support of a hub, in one scenario.

    Attributes:
        channel: the channel, for a village's outlook.
        device: the device others need, for a support's outlook.
        endurance: how long it lasts.
        survives: it certainly lasts the site's target.
        dependents: (site, channel) pairs that need a support.
    """

    channel: ChannelName | None
    device: str | None
    endurance: Endurance
    survives: bool
    dependents: tuple[tuple[str, str], ...] = ()

    def as_fact(self) -> Fact:
        """This outlook as a fact (code ``outlook``), made anew at each call: what
        keeps one (an alert) keeps its verdict as a :class:`DerivedFact` instead."""
        return Fact("outlook", {
            "channel": self.channel, "device": self.device, "survives": self.survives,
            "endurance": self.endurance.as_fact(),
            "dependent_sites": tuple(sorted({s for s, _ in self.dependents})),
            "dependent_channels": tuple(sorted({c for _, c in self.dependents if c})),
        })


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """A site in one scenario (or ``now``).

    Attributes:
        scenario: ``network``, ``road``, ``power``, ``all`` or ``now``.
        ready: it certainly lasts its target (a village: some channel does;
            a hub: every support does).
        target_hours: the target it was judged against.
        endurance: the site's: its longest-lived channel's (a hub: its
            shortest-lived support's).
        channels: each channel's outlook, in channel order.
        supports: each support's outlook (sites others depend on), by device id.
        outages: the outages active now that this judgement folds in (facts
            of code ``outage``).
        until: ``now`` only: epoch seconds the site stays reachable to — exact
            when the endurance is, else at least; ``None`` when unbounded, or
            when not even a minute is certain.
        at: ``now`` only, when it names clock times (``until``; when a channel,
            or a support others depend on, that lasts a known time gives out):
            epoch seconds of the evaluation they count from.  ``None`` otherwise: the verdict then
            reads the same at any time, and a kept one is shared between
            evaluations as it is.
    """

    scenario: str
    ready: bool
    target_hours: float
    endurance: Endurance
    channels: tuple[Outlook, ...] = ()
    supports: tuple[Outlook, ...] = ()
    outages: tuple[Fact, ...] = ()
    until: float | None = None
    at: float | None = None

    @property
    def surviving(self) -> tuple[ChannelName, ...]:
        """Channels that certainly last the target."""
        return tuple(o.channel for o in self.channels if o.survives and o.channel)

    @property
    def verdict(self) -> str:
        """``ready``, ``unknown`` (not ready for want of knowledge) or ``not_ready``: the
        history's and the reports' word for it."""
        return "ready" if self.ready else "unknown" if self.unknown else "not_ready"

    @property
    def unknown(self) -> bool:
        """Not ready for want of knowledge: with what is missing it might be."""
        return not self.ready and not self.endurance.short(self.target_hours)

    def as_fact(self) -> Fact:
        """This verdict as a fact (code ``verdict``), made anew at each call (for the
        outputs to put into words); :meth:`kept_fact` for what keeps it."""
        return Fact("verdict", {
            "scenario": self.scenario, "ready": self.ready,
            "target_hours": self.target_hours, "endurance": self.endurance.as_fact(),
            "outlooks": tuple(o.as_fact() for o in self.channels),
            "supports": tuple(o.as_fact() for o in self.supports),
            "outages": self.outages, "until": self.until, "at": self.at,
        })

    def kept_fact(self) -> Fact:
        """This verdict as a fact to keep (an alert's): a :class:`DerivedFact` of this
        result, equal to :meth:`as_fact`'s, worked out when read."""
        return DerivedFact("verdict", self, ScenarioResult.as_fact)


def mains_out(active: Mapping[str, Mapping[OutageKind, Outage]]) -> dict[str, float]:
    """Sites whose mains is out now (a power outage is active), with when it began."""
    return {s: o["power"].since for s, o in active.items() if "power" in o}


def conditions(
    scenario: str,
    site: str,
    active: Mapping[str, Mapping[OutageKind, Outage]],
    now: float,
    out: Mapping[str, float] | None = None,
) -> Conditions:
    """What ``scenario`` takes away at ``site``, with the outages ``active`` now folded in.

    Args:
        scenario: one of :data:`VIEWS`.
        site: the judged site.
        active: outages active now, by site and kind.
        now: epoch seconds.
        out: :func:`mains_out` of ``active``, if already worked out.
    """
    here = active.get(site, {})
    return Conditions(
        scenario=scenario,
        now=now,
        mains_lost=scenario in ("power", "all"),
        mains_out=mains_out(active) if out is None else out,
        public_lost=scenario in ("network", "all") or "network" in here,
        public_out="network" in here,
        resupply=scenario in ("network", "now") and "road" not in here,
    )


def evaluate_site(
    inventory: Inventory,
    site: Site,
    views: Mapping[str, DeviceView],
    active: Mapping[str, Mapping[OutageKind, Outage]],
    now: float,
    out: Mapping[str, float] | None = None,
) -> dict[str, ScenarioResult]:
    """Every scenario and ``now`` for ``site``; ``{}`` for a site with nothing to judge.

    Args:
        inventory: the inventory.
        site: the site to judge.
        views: every device's view, by id.
        active: outages active now, by site and kind.
        now: epoch seconds.
        out: :func:`mains_out` of ``active``, if already worked out (once per evaluation
            rather than once per site).
    """
    out = mains_out(active) if out is None else out
    members = [inventory.devices[d] for d in inventory.devices_by_site.get(site.id, ())]
    providers: dict[ChannelName, list[Device]] = {}
    for device in members:
        if device.channel is not None:
            providers.setdefault(device.channel, []).append(device)
    supports = sorted(d.id for d in members if d.id in inventory.dependents)
    if site.role != "village" and not providers and not supports:
        return {}
    folded = _folded(inventory, site, active)
    results: dict[str, ScenarioResult] = {}
    made: dict[tuple[object, ...], Outlook] = {}  # shared by the scenarios alike for it
    for scenario in VIEWS:
        cond = conditions(scenario, site.id, active, now, out)
        judge = _Judge(inventory, views, cond, site, made)
        channels = tuple(judge.channel(c, providers[c]) for c in CHANNELS if c in providers)
        held = tuple(judge.support(d) for d in supports)
        # The outlooks alike are one object: so are the tuples of them alike.
        channels = _alike(channels, (r.channels for r in results.values()))
        held = _alike(held, (r.supports for r in results.values()))
        results[scenario] = _verdict(site, scenario, channels, held, folded, now,
                                     village=site.role == "village" or bool(providers))
    return results


class _Judge:
    """Outlooks of one site in one scenario.

    ``made`` holds the outlooks already judged in the site's other scenarios of this
    evaluation, by what of the conditions they read: a chain reads only whether mains
    is lost everywhere and whether people can bring charge (the time, the mains cuts
    now and the site are the same in every scenario), and the public channel also
    whether the public network is lost.  ``network`` and ``now`` usually judge every
    channel alike, as ``power`` and ``all`` judge every channel but the public one:
    one object each, judged once (half the outlooks of a province).
    """

    def __init__(self, inventory: Inventory, views: Mapping[str, DeviceView],
                 cond: Conditions, site: Site, made: dict[tuple[object, ...], Outlook]
                 ) -> None:
        self.inventory = inventory
        self.views = views
        self.cond = cond
        self.site = site
        self.target = site.target_hours
        self.made = made

    def channel(self, channel: ChannelName, providers: list[Device]) -> Outlook:
        cond = self.cond
        key = (channel, cond.mains_lost, cond.resupply,
               channel == "public" and cond.public_lost)
        return self._once(key, lambda: self._channel(channel, providers))

    def _channel(self, channel: ChannelName, providers: list[Device]) -> Outlook:
        if channel == "public" and self.cond.public_lost:
            endurance = lost(Fact("public_network", {"actual": self.cond.public_out}))
        else:
            endurance = most((p.id, self.chain(p)) for p in providers)
            if channel == "public" and self.cond.no_mains(self.site.id):
                endurance = least([("", endurance), (" public", self.public_backup())])
        return Outlook(channel, None, endurance, endurance.survives(self.target))

    def public_backup(self) -> Endurance:
        """What the public network lasts with mains lost at the site: the base
        stations' backup, less the time since a cut that is happening began."""
        since = self.cond.mains_out.get(self.site.id)
        actual = since is not None and not self.cond.mains_lost
        hours = self.site.public_backup_hours
        if hours is None:
            return unknown(Fact("public_backup_unknown", {"actual": actual}))
        elapsed = max(self.cond.now - since, 0.0) / 3600 if since is not None else 0.0
        remaining = max(hours - elapsed, 0.0)
        args: dict[str, float] = {"hours": hours, "remaining": remaining}
        if since is not None:
            args["since"] = since
        return Endurance(remaining, remaining, (Fact("public_backup", args),))

    def support(self, device_id: str) -> Outlook:
        key = (device_id, self.cond.mains_lost, self.cond.resupply)
        return self._once(key, lambda: self._support(device_id))

    def _once(self, key: tuple[object, ...], judge: Callable[[], Outlook]) -> Outlook:
        """The outlook ``made`` holds for ``key``, judged now if none does."""
        outlook = self.made.get(key)
        if outlook is None:
            outlook = judge()
            # One judged equal under other conditions (``network`` and ``road`` alike
            # while mains holds and no chain needs a charger): that one, not a second.
            outlook = self.made[key] = _alike(outlook, self.made.values())
        return outlook

    def _support(self, device_id: str) -> Outlook:
        endurance = self.chain(self.inventory.devices[device_id])
        return Outlook(None, device_id, endurance, endurance.survives(self.target),
                       self.inventory.dependents.get(device_id, ()))

    def chain(self, device: Device) -> Endurance:
        """What ``device`` and every link it needs last together."""
        return least((d, self.link(d)) for d in _links(self.inventory, device))

    def link(self, device_id: str) -> Endurance:
        view = self.views[device_id]
        broken = view.broken_link()
        if broken is not None:
            return broken
        power = device_endurance(self.views, device_id, self.cond)
        if not power.stages:
            return power
        return view.linked(power)


_T = TypeVar("_T")


def _alike(value: _T, made: Iterable[_T]) -> _T:
    """The first of ``made`` equal to ``value``, else ``value``: equal judgements of one
    site are kept as one object."""
    return next((m for m in made if m == value), value)


def _links(inventory: Inventory, device: Device) -> list[str]:
    """``device``, the parents it sits behind and what it depends on (with their parents)."""
    found: list[str] = []
    todo = [device.id]
    while todo:
        d = todo.pop(0)
        if d in found:
            continue
        found.append(d)
        dev = inventory.devices[d]
        todo += [p for p in (dev.parent,) if p is not None]
        if d == device.id:
            todo += list(dev.depends_on)
    return found


def _verdict(
    site: Site,
    scenario: str,
    channels: tuple[Outlook, ...],
    supports: tuple[Outlook, ...],
    folded: tuple[Fact, ...],
    now: float,
    village: bool,
) -> ScenarioResult:
    parts: list[tuple[str, Endurance]] = []
    ready = True
    if village:
        if channels:
            parts.append(("channels", most((o.channel or "", o.endurance) for o in channels)))
            ready = any(o.survives for o in channels)
        else:
            parts.append(("channels", lost(Fact("no_channels"))))
            ready = False
    if supports:
        parts.append(("supports", least((o.device or "", o.endurance) for o in supports)))
        ready = ready and all(o.survives for o in supports)
    endurance = least(parts)
    until = at = None
    if scenario == "now":
        if 0 < endurance.lower < math.inf:
            until = now + endurance.lower * 3600
        # The clock times it names: when the site stops being reachable, when each
        # channel that lasts a known time gives out, and when each support (a hub's
        # link others depend on) lasting a known time, none included, fails them.
        if until is not None or any(o.endurance.exact and 0 < o.endurance.lower < math.inf
                                    for o in channels) or any(
                o.endurance.exact and o.endurance.lower < math.inf for o in supports):
            at = now
    return ScenarioResult(scenario, ready, site.target_hours, endurance, channels, supports,
                          folded, until, at)


def _folded(
    inventory: Inventory, site: Site, active: Mapping[str, Mapping[OutageKind, Outage]]
) -> tuple[Fact, ...]:
    """The active outages that bear on ``site``: its own, and power where its chains go."""
    facts = []
    for other in inventory.reach.get(site.id, (site.id,)):
        for kind, outage in sorted(active.get(other, {}).items()):
            if other == site.id or kind == "power":
                facts.append(Fact("outage", {
                    "site": other, "site_name": inventory.sites[other].name, "outage": kind,
                    "since": outage.since}))
    return tuple(facts)
