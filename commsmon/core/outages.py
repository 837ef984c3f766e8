"""Active outages at a site, from evidence (DESIGN.md §3 "Active outages").

* ``power``: a UPS on battery (upsOutputSource), a generator running without
  mains, a repeater on battery supply (rptSupplyPowerType), or a UPS whose
  count of input out-of-tolerance events (upsInputLineBads) rose since the
  poll before (a blip the polls did not catch; it counts until the next poll);
  only fresh readings of devices that work now count, and fresh readings a
  trap told that no poll has read since (the device spoke just now, even if
  its polls fail); evidence resting on those is marked ``unconfirmed``.
* ``network``: every ``public`` provider of the site is down together while
  another of its channels still works (so it is the network, not the village).
* ``road``: declared by an operator, until it expires or is cleared.

Pure: device views and declarations in, outages with their evidence (facts) out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from commsmon.core.facts import Fact, FactArg
from commsmon.core.model import Inventory, Site
from commsmon.core.power import DeviceView
from commsmon.core.readings import (
    INPUT_LINE_BADS,
    MAINS_PRESENT,
    OUTPUT_SOURCE,
    RUNNING,
    SUPPLY_TYPE,
)
from commsmon.core.types import WORKING, State

__all__ = ["OUTAGE_KINDS", "Declaration", "Outage", "OutageKind", "evidence"]

OutageKind = Literal["power", "network", "road"]
OUTAGE_KINDS: tuple[OutageKind, ...] = ("power", "network", "road")



@dataclass(frozen=True, slots=True)
class Declaration:
    """An outage an operator declared (roads cut).

    Attributes:
        site: site id.
        kind: the outage.
        since: epoch seconds it was declared.
        until: epoch seconds it expires, ``None`` for until cleared.
        by: who declared it.
        note: free text.
    """

    site: str
    kind: OutageKind
    since: float
    until: float | None = None
    by: str = ""
    note: str = ""

    def active(self, now: float) -> bool:
        """Whether it is in force at ``now``."""
        return self.until is None or now < self.until


@dataclass(frozen=True, slots=True)
class Outage:
    """An outage in progress at a site.

    Attributes:
        kind: ``power``, ``network`` or ``road``.
        since: epoch seconds it was first seen (or declared).
        evidence: what shows it (facts).
        declared: an operator declared it.
    """

    kind: OutageKind
    since: float
    evidence: tuple[Fact, ...]
    declared: bool = False


def evidence(
    inventory: Inventory,
    site: Site,
    views: Mapping[str, DeviceView],
    channels: Mapping[str, State],
    declarations: Mapping[tuple[str, str], Declaration],
    now: float,
) -> dict[OutageKind, tuple[Fact, ...]]:
    """Evidence of each outage at ``site`` now; an outage is active if it has any.

    Args:
        inventory: the inventory.
        site: the site.
        views: every device's state and fresh readings, by id.
        channels: the site's channel states, by channel name.
        declarations: declared outages by (site, kind).
        now: epoch seconds.
    """
    found: dict[OutageKind, tuple[Fact, ...]] = {}
    members = sorted((views[d] for d in inventory.devices_by_site.get(site.id, ())),
                     key=lambda v: v.device.id)  # evidence in one order, whatever the file's
    power = tuple(p for v in members if (p := _power(v)))
    if power:
        found["power"] = power
    public = sorted(v.device.id for v in members if v.device.channel == "public")
    others_up = sorted(c for c, s in channels.items() if c != "public" and s is State.UP)
    if public and others_up and all(views[d].state is State.DOWN for d in public):
        found["network"] = (
            Fact("public_silent", {"devices": tuple(public), "working": tuple(others_up)}),
        )
    declared = declarations.get((site.id, "road"))
    if declared is not None and declared.active(now):
        found["road"] = (Fact("road_declared", {
            "by": declared.by, "until": declared.until, "note": declared.note,
            "since": declared.since}),)
    return found


def _told(v: DeviceView, *readings: str) -> dict[str, FactArg]:
    """The evidence's terms; ``unconfirmed`` when a trap told a reading it rests on and
    no poll has read it since (raised at once, pending the poll)."""
    terms: dict[str, FactArg] = dict(v.ident())
    if any(name in v.unconfirmed for name in readings):
        terms["unconfirmed"] = True
    return terms


def _power(v: DeviceView) -> Fact | None:
    r = v.values
    if v.state not in WORKING:
        r = {name: value for name, value in r.items() if name in v.unconfirmed}
        if not r:
            return None
    if r.get(OUTPUT_SOURCE) == "battery":
        return Fact("ups_on_battery", _told(v, OUTPUT_SOURCE))
    if r.get(RUNNING) is True and r.get(MAINS_PRESENT) is False:
        return Fact("generator_without_mains", _told(v, RUNNING, MAINS_PRESENT))
    if r.get(SUPPLY_TYPE) == "battery":
        return Fact("repeater_on_battery", _told(v, SUPPLY_TYPE))
    rose = v.rose.get(INPUT_LINE_BADS)
    if rose is not None and INPUT_LINE_BADS in r:
        return Fact("input_line_bad", {**v.ident(), "at": rose})
    return None
