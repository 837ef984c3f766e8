"""Active outages at a site, from evidence (DESIGN.md §3 "Active outages").

* ``power``: a UPS on battery (upsOutputSource), a generator running without
  mains, a repeater on battery supply (rptSupplyPowerType), or a UPS whose
  count of input out-of-tolerance events (upsInputLineBads) rose since the
  poll before (a blip the polls did not catch; it counts until the next poll);
  only readings of devices that answer now count.
* ``network``: every ``public`` provider of the site is down together while
  another of its channels still works (so it is the network, not the village).
* ``road``: declared by an operator, until it expires or is cleared.

Pure: statuses and declarations in, outages out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal

from commsmon.core.model import Device, Inventory, Site
from commsmon.core.readings import (
    INPUT_LINE_BADS,
    MAINS_PRESENT,
    OUTPUT_SOURCE,
    RUNNING,
    SUPPLY_TYPE,
)
from commsmon.core.types import WORKING, Reading, State

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
        evidence: what shows it, in words.
        declared: an operator declared it.
    """

    kind: OutageKind
    since: float
    evidence: tuple[str, ...]
    declared: bool = False


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What outage detection needs of one device."""

    device: Device
    state: State
    readings: Mapping[str, Reading]
    reading_at: Mapping[str, float]
    rose_at: Mapping[str, float]


def evidence(
    inventory: Inventory,
    site: Site,
    facts: Mapping[str, DeviceFacts],
    channels: Mapping[str, State],
    declarations: Mapping[tuple[str, str], Declaration],
    now: float,
    tz: tzinfo,
) -> dict[OutageKind, tuple[str, ...]]:
    """Evidence of each outage at ``site`` now; an outage is active if it has any.

    Args:
        inventory: the inventory.
        site: the site.
        facts: every device's state, readings and reading-rise times, by id.
        channels: the site's channel states, by channel name.
        declarations: declared outages by (site, kind).
        now: epoch seconds.
        tz: time zone for times in the evidence.
    """
    found: dict[OutageKind, tuple[str, ...]] = {}
    members = [facts[d] for d in inventory.devices_by_site.get(site.id, ())]
    power = tuple(p for f in members if (p := _power(f, now, tz)))
    if power:
        found["power"] = power
    public = [f for f in members if f.device.channel == "public"]
    others_up = [c for c, s in channels.items() if c != "public" and s is State.UP]
    if public and others_up and all(f.state is State.DOWN for f in public):
        names = ", ".join(f.device.id for f in public)
        found["network"] = (
            f"every public-network device silent ({names}) while {', '.join(others_up)} works",
        )
    declared = declarations.get((site.id, "road"))
    if declared is not None and declared.active(now):
        until = (
            f" until {datetime.fromtimestamp(declared.until, tz):%m-%d %H:%M}"
            if declared.until else ""
        )
        who = f" by {declared.by}" if declared.by else ""
        found["road"] = (f"declared{who}{until}" + (f": {declared.note}" if declared.note else ""),)
    return found


def _power(f: DeviceFacts, now: float, tz: tzinfo) -> str | None:
    if f.state not in WORKING:
        return None
    r, d = f.readings, f.device
    if r.get(OUTPUT_SOURCE) == "battery":
        return f"{d.id} on battery (upsOutputSource)"
    if r.get(RUNNING) is True and r.get(MAINS_PRESENT) is False:
        return f"{d.id} generator running without mains"
    if r.get(SUPPLY_TYPE) == "battery":
        return f"{d.id} on battery supply (rptSupplyPowerType)"
    rose = f.rose_at.get(INPUT_LINE_BADS)
    if rose is not None and rose == f.reading_at.get(INPUT_LINE_BADS):  # rose at the last poll
        at = datetime.fromtimestamp(rose, tz)
        return f"{d.id} input out of tolerance at {at:%H:%M} (upsInputLineBads rose)"
    return None
