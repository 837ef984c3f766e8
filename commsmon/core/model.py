"""The inventory as the core sees it: sites, devices and their health rules.

Frozen values built from the validated configuration (``commsmon.config``);
the core never reads files.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from commsmon.core.types import ChannelName, DeviceKind, Reading

__all__ = [
    "DEFAULT_TARGET_HOURS",
    "Device",
    "GeneratorCurve",
    "HealthEffect",
    "HealthRule",
    "Inventory",
    "PowerFeed",
    "Site",
]

#: Hours a village must last on its own (the 72-hour standard) unless configured.
DEFAULT_TARGET_HOURS = 72.0


@dataclass(frozen=True, slots=True)
class PowerFeed:
    """What feeds a device (DESIGN.md §3 "Power").

    Attributes:
        kind: ``mains``; ``ups`` or ``generator`` (mains backed by that device);
            ``none`` (nothing fixed: a handheld charged by carrying it to a charger).
        ref: id of the UPS or generator for ``ups`` / ``generator``.
    """

    kind: Literal["mains", "ups", "generator", "none"] = "mains"
    ref: str | None = None

    @classmethod
    def parse(cls, text: str) -> PowerFeed:
        """``"mains"``, ``"none"``, ``"ups:<id>"`` or ``"generator:<id>"``.

        Raises:
            ValueError: any other text.
        """
        kind, _, ref = text.partition(":")
        if kind in ("mains", "none") and not ref:
            return cls(kind)  # type: ignore[arg-type]
        if kind in ("ups", "generator") and ref:
            return cls(kind, ref)  # type: ignore[arg-type]
        raise ValueError(f"{text!r}: expected mains, none, ups:<id> or generator:<id>")

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref}" if self.ref else self.kind


@dataclass(frozen=True, slots=True)
class GeneratorCurve:
    """A genset's fuel use and tank.

    Attributes:
        consumption: (load ratio 0-1, litres per hour) points, sorted by load;
            e.g. an 8 kW diesel set: (0.5, 1.5), (0.75, 2.0), (1.0, 2.6).
        tank_litres: tank capacity in litres, to turn a fuel ratio into litres.
        expected_load: load ratio assumed while the set is not running (it
            would carry the site's kit after mains loss).
    """

    consumption: tuple[tuple[float, float], ...]
    tank_litres: float | None = None
    expected_load: float = 0.5

    def litres_per_hour(self, load: float) -> float:
        """Consumption at ``load`` (ratio), interpolated linearly; outside the
        curve, its nearest end (a diesel below half load burns about its
        half-load rate)."""
        points = self.consumption
        if load <= points[0][0]:
            return points[0][1]
        for (l0, r0), (l1, r1) in itertools.pairwise(points):
            if load <= l1:
                return r0 + (r1 - r0) * (load - l0) / (l1 - l0)
        return points[-1][1]


HealthEffect = Literal["degraded", "lost"]


@dataclass(frozen=True, slots=True)
class HealthRule:
    """A condition on one reading of a device that answers.

    Exactly one of ``below``, ``above`` or ``equals`` is set.

    Attributes:
        reading: the profile's reading name.
        below: fails while the reading is a number strictly below this.
        above: fails while the reading is a number strictly above this.
        equals: fails while the reading equals one of these values.
        effect: ``degraded`` (it still carries its channel, but needs
            attention: low battery, an alarm) or ``lost`` (it answers but
            cannot carry its channel: not registered, no signal, no SIM).
        text: what is wrong, by language (``zh``, ``en``), from the profile;
            the core only hands it on.
    """

    reading: str
    below: float | None = None
    above: float | None = None
    equals: tuple[Reading, ...] = ()
    effect: HealthEffect = "degraded"
    text: Mapping[str, str] = field(default_factory=dict)

    def fails(self, value: Reading) -> bool:
        """Whether ``value`` breaks this rule (a missing reading never does)."""
        if self.equals:
            return value in self.equals
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.below is not None and value < self.below:
            return True
        return self.above is not None and value > self.above


@dataclass(frozen=True, slots=True)
class Device:
    """One piece of kit.

    Attributes:
        id: unique device id.
        site: id of the site it stands at.
        kind: what it is.
        name: a human name ("卫星电话").
        source: how it is observed.
        profile: name of its profile (readings and health rules).
        channel: the channel to the command centre it provides, if any.
        parent: device it sits behind (a camera behind a 4G router); while the
            parent is down this device is ``unknown``, not ``down``.
        depends_on: devices elsewhere its channel needs (a PDT terminal needs
            the district repeater).
        health: rules that make it ``degraded`` or ``lost``.
        down_after: consecutive failed checks before ``down``.
        up_after: consecutive good checks before a ``down`` device is ``up``.
        stale_after: seconds without any message before a pushed (MQTT)
            device counts as failed; ``None`` for presence-only devices.
        power: what feeds it.
        battery_hours: hours its own battery lasts at full charge, if it has one.
        generator: fuel curve, for a generator.
        checkin_validity: seconds a check-in stays valid (check-in devices).
        max_age: seconds each reading stays fresh, by reading name; an older
            reading counts as not known (readings not named never age).
    """

    id: str
    site: str
    kind: DeviceKind
    name: str
    source: Literal["snmp", "mqtt", "checkin"]
    profile: str
    channel: ChannelName | None = None
    parent: str | None = None
    depends_on: tuple[str, ...] = ()
    health: tuple[HealthRule, ...] = ()
    down_after: int = 3
    up_after: int = 2
    stale_after: float | None = None
    power: PowerFeed = PowerFeed()
    battery_hours: float | None = None
    generator: GeneratorCurve | None = None
    checkin_validity: float = 7 * 86400.0
    max_age: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Site:
    """A village, or the district centre holding shared infrastructure.

    Attributes:
        id: unique site id.
        name: its name ("某村").
        town: the town (镇/街道) it belongs to.
        role: ``centre`` for the district centre, else ``village``.
        latitude: degrees north (WGS-84), ``None`` if unknown.
        longitude: degrees east (WGS-84), ``None`` if unknown.
        target_hours: hours the site must last on its own in each scenario.
        trap_every: seconds between the traps or informs its kit sends anyway (a
            periodic test trap); ``None`` when its trap path is not checked.
        public_backup_hours: hours the public network serving it (the operators'
            base stations) keeps working once mains is lost there; ``None`` when
            not known — then a channel on ``public`` never counts as surviving a
            power cut.
        keeper: the village keeper's name (管理员), ``""`` when none is named.
    """

    id: str
    name: str
    town: str
    role: Literal["centre", "village"] = "village"
    latitude: float | None = None
    longitude: float | None = None
    target_hours: float = DEFAULT_TARGET_HOURS
    trap_every: float | None = None
    public_backup_hours: float | None = None
    keeper: str = ""


@dataclass(frozen=True, slots=True)
class Inventory:
    """Sites and devices, keyed by id, in configuration order, with what follows from them.

    Attributes:
        sites: every site by id.
        devices: every device by id.
        devices_by_site: device ids of each site.
        dependents: for a device that devices at *other* sites need directly
            (as ``depends_on``, ``parent`` or power feed): the (site, channel)
            pairs that need it, sorted; ``channel`` is ``""`` for a device
            that provides none.  The district repeater's entry lists every
            village whose ``pdt370`` goes through it.
        reach: for each site, the sites its devices' chains pass through
            (itself, and e.g. the centre for a village whose PDT terminal
            needs the district repeater), sorted.
    """

    sites: Mapping[str, Site]
    devices: Mapping[str, Device]
    devices_by_site: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    dependents: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    reach: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, sites: list[Site], devices: list[Device]) -> Inventory:
        """Index sites and devices.

        Raises:
            ValueError: a device names an unknown site, parent or dependency.
        """
        site_map = {s.id: s for s in sites}
        device_map = {d.id: d for d in devices}
        by_site: dict[str, list[str]] = {s.id: [] for s in sites}
        for d in devices:
            if d.site not in site_map:
                raise ValueError(f"device {d.id}: unknown site {d.site!r}")
            for ref in (d.parent, *d.depends_on, d.power.ref):
                if ref is not None and ref not in device_map:
                    raise ValueError(f"device {d.id}: unknown device {ref!r}")
            by_site[d.site].append(d.id)
        needs: dict[str, set[tuple[str, str]]] = {}
        reach: dict[str, set[str]] = {s.id: {s.id} for s in sites}
        for d in devices:
            reach[d.site].update(device_map[ref].site for ref in _needs(d, device_map))
            for ref in (d.parent, *d.depends_on, d.power.ref):
                if ref is not None and device_map[ref].site != d.site:
                    needs.setdefault(ref, set()).add((d.site, d.channel or ""))
        return cls(site_map, device_map, {k: tuple(v) for k, v in by_site.items()},
                   {k: tuple(sorted(v)) for k, v in needs.items()},
                   {k: tuple(sorted(v)) for k, v in reach.items()})


def _needs(device: Device, devices: Mapping[str, Device]) -> list[str]:
    """Every device ``device`` needs to work and keep power: its parents, what it
    depends on, their feeds, and theirs (each once, whatever loops the config has)."""
    found: list[str] = []
    todo = [device.parent, *device.depends_on, device.power.ref]
    while todo:
        ref = todo.pop()
        if ref is None or ref in found or ref == device.id:
            continue
        found.append(ref)
        other = devices[ref]
        todo += [other.parent, *other.depends_on, other.power.ref]
    return found
