"""Three-outage (三断) readiness of a site: would it keep a channel, for how long, why not.

For each scenario — ``network`` (public network down), ``road`` (no
resupply, no repair), ``power`` (mains lost at the village and at every site
its channels depend on), and ``all`` three — the site's channels are judged
with today's device states and readings:

* a channel on ``public`` is lost in ``network`` and ``all``;
* a channel whose provider, or a device it depends on, is ``down`` now stays
  lost (no repair can be counted on); ``unknown`` never counts as working;
  ``degraded`` still works;
* a working channel lasts as long as the shortest-lived of its provider and
  the devices it depends on (their power chains, :mod:`commsmon.core.power`);
  with several providers, the longest-lived one;
* it *survives* only if it certainly lasts the site's target (default 72 h);
  unknown endurance never counts.

The site is ``ready`` when a channel survives; its endurance is that of its
longest-lasting channel, even when below target.  Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo

from commsmon.core.model import Device, Inventory, Site
from commsmon.core.power import Conditions, Endurance, ReadingsOf, StateOf, device_endurance
from commsmon.core.types import WORKING, ChannelName, State

__all__ = ["CONDITIONS", "SCENARIOS", "ChannelOutlook", "ScenarioResult", "evaluate_scenarios"]

SCENARIOS = ("network", "road", "power", "all")
CONDITIONS: Mapping[str, Conditions] = {
    "network": Conditions(mains_lost=False, resupply=True, public_lost=True),
    "road": Conditions(mains_lost=False, resupply=False, public_lost=False),
    "power": Conditions(mains_lost=True, resupply=False, public_lost=False),
    "all": Conditions(mains_lost=True, resupply=False, public_lost=True),
}



@dataclass(frozen=True, slots=True)
class ChannelOutlook:
    """One channel in one scenario.

    Attributes:
        channel: its name.
        survives: it certainly lasts the target.
        endurance: how long it lasts, ``None`` when lost at once.
        reason: why it does not survive, ``None`` when it does.
        unknown: it fails for want of knowledge (a device in the chain is
            ``unknown``, or its endurance is), not for a known fault.
    """

    channel: ChannelName
    survives: bool
    endurance: Endurance | None
    reason: str | None
    unknown: bool = False


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """A site in one scenario.

    Attributes:
        scenario: ``network``, ``road``, ``power`` or ``all``.
        ready: at least one channel survives the target.
        target_hours: the target it was judged against.
        surviving: channels that survive.
        endurance_hours: hours of the longest-lasting channel (``math.inf``
            if unbounded); ``None`` when no channel works or it is unknown.
        channels: every channel's outlook.
        reason: what fails and why, in words; empty when every channel survives.
        unknown: some channel fails for want of knowledge rather than a known fault.
    """

    scenario: str
    ready: bool
    target_hours: float
    surviving: tuple[ChannelName, ...]
    endurance_hours: float | None
    channels: tuple[ChannelOutlook, ...]
    reason: str
    unknown: bool = False


def evaluate_scenarios(
    inventory: Inventory,
    site: Site,
    state: StateOf,
    since: Mapping[str, float],
    readings: ReadingsOf,
    tz: tzinfo,
) -> dict[str, ScenarioResult]:
    """Every scenario for ``site``.

    Args:
        inventory: the inventory.
        site: the site to judge.
        state: effective state of a device by id.
        since: epoch seconds each device entered its state, by id.
        readings: latest readings of a device by id.
        tz: time zone for times in reasons ("down since 09:12").
    """
    if site.role != "village":
        return {}  # the district centre is judged through the villages that depend on it
    providers: dict[ChannelName, list[Device]] = {}
    for device_id in inventory.devices_by_site.get(site.id, ()):
        device = inventory.devices[device_id]
        if device.channel is not None:
            providers.setdefault(device.channel, []).append(device)
    results = {}
    for scenario in SCENARIOS:
        cond = CONDITIONS[scenario]
        outlooks = tuple(
            _channel(inventory, channel, devices, cond, site.target_hours, state, since,
                     readings, tz)
            for channel, devices in providers.items()
        )
        results[scenario] = _summarise(scenario, site.target_hours, outlooks)
    return results


def _channel(
    inv: Inventory,
    channel: ChannelName,
    devices: list[Device],
    cond: Conditions,
    target: float,
    state: StateOf,
    since: Mapping[str, float],
    readings: ReadingsOf,
    tz: tzinfo,
) -> ChannelOutlook:
    if channel == "public" and cond.public_lost:
        return ChannelOutlook(channel, False, None, f"{channel}: lost with the public network")
    best: Endurance | None = None
    problems: list[str] = []
    unknown = False
    for provider in devices:
        chain = [provider, *(inv.devices[d] for d in provider.depends_on)]
        broken = [d for d in chain if state(d.id) not in WORKING]
        unknown = unknown or any(state(d.id) is State.UNKNOWN for d in broken)
        if broken:
            problems.extend(_not_working(d, state(d.id), since.get(d.id), tz) for d in broken)
            continue
        ends = [device_endurance(inv, d.id, cond, state, readings) for d in chain]
        low = min(ends, key=lambda e: e.lower)
        # The shortest-lived link binds; the bound is exact only if every link's is.
        endurance = Endurance(
            low.lower,
            all(e.exact for e in ends),
            low.parts,
            tuple(m for e in ends for m in e.missing),
        )
        if best is None or endurance.lower > best.lower:
            best = endurance
    if best is None:
        return ChannelOutlook(channel, False, None, f"{channel}: " + "; ".join(problems),
                              unknown)
    if best.at_least(target):
        return ChannelOutlook(channel, True, best, None)
    if best.hours is None:
        what = ", ".join(best.missing) or "unknown"
        known = f" (at least {best.lower:.1f} h)" if best.lower > 0 else ""
        return ChannelOutlook(channel, False, best,
                              f"{channel}: endurance unknown{known}: {what}", True)
    stages = " + ".join(best.parts) or "no backup power"
    reason = f"{channel}: {stages} < {target:g} h target"
    return ChannelOutlook(channel, False, best, reason)


def _not_working(device: Device, state: State, since: float | None, tz: tzinfo) -> str:
    label = f"{device.name} ({device.id})" if device.name != device.id else device.id
    if state is State.DOWN and since is not None:
        return f"{label} down since {datetime.fromtimestamp(since, tz):%m-%d %H:%M}"
    return f"{label} {state.value}"


def _summarise(
    scenario: str, target: float, outlooks: tuple[ChannelOutlook, ...]
) -> ScenarioResult:
    surviving = tuple(o.channel for o in outlooks if o.survives)
    working = [o.endurance for o in outlooks if o.endurance is not None]
    endurance: float | None = None
    if working:
        top = max(working, key=lambda e: e.lower)
        endurance = top.hours if not top.at_least(target) else top.lower
        if endurance is not None and not math.isinf(endurance):
            endurance = round(endurance, 2)
    reasons = [o.reason for o in outlooks if o.reason]
    if not outlooks:
        reasons = ["no channel to the command centre configured"]
    reason = f"{scenario}: " + "; ".join(reasons) if reasons else ""
    return ScenarioResult(scenario, bool(surviving), target, surviving, endurance, outlooks,
                          reason, any(o.unknown for o in outlooks))
