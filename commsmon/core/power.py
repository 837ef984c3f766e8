"""Power endurance of a device along its feed chain (DESIGN.md §3 "Power").

A device lasts ``F(feed) + B`` hours once conditions bite, where ``B`` is its
own battery (charge ratio x rated hours at full charge) and ``F`` walks the
feed chain: ``mains`` lasts forever unless mains is lost, then 0; ``ups:U``
lasts forever unless mains is lost, then U's estimated runtime plus U's own
feed; ``generator:G`` lasts forever unless mains is lost, then G's fuel
litres / its consumption at the present (or expected) load; ``none`` (a
handheld) lasts forever only while people can bring charge.

A stage whose reading is missing is *unknown*: it adds nothing to the lower
bound and makes the total inexact, so unknown endurance is never reported as
0 or infinity.  Pure: readings and states come in, nothing is read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from commsmon.core.model import Device, Inventory
from commsmon.core.readings import CHARGE, FUEL, FUEL_LITRES, LOAD, RUNNING, RUNTIME
from commsmon.core.types import WORKING, Reading, State

__all__ = ["Conditions", "Endurance", "device_endurance"]



@dataclass(frozen=True, slots=True)
class Conditions:
    """What a scenario takes away.

    Attributes:
        mains_lost: mains is down at the village and every site it depends on.
        resupply: people can bring fuel and charged batteries (roads open).
        public_lost: the public network (4G, fibre) is down.
    """

    mains_lost: bool
    resupply: bool
    public_lost: bool


@dataclass(frozen=True, slots=True)
class Endurance:
    """Hours something lasts.

    Attributes:
        lower: a lower bound in hours (``math.inf`` when unbounded); exact
            when ``exact``.
        exact: every stage was known.
        parts: the stages in words ("UPS v01-ups runtime 0.5 h").
        missing: what was not known ("UPS v01-ups runtime not reported").
    """

    lower: float
    exact: bool = True
    parts: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def hours(self) -> float | None:
        """Hours if known (``math.inf`` when unbounded), else ``None``."""
        return self.lower if self.exact or math.isinf(self.lower) else None

    def __add__(self, other: Endurance) -> Endurance:
        return Endurance(
            self.lower + other.lower,
            self.exact and other.exact,
            self.parts + other.parts,
            self.missing + other.missing,
        )

    def at_least(self, target: float) -> bool:
        """Whether it certainly lasts ``target`` hours."""
        return self.lower >= target


UNBOUNDED = Endurance(math.inf)
NOTHING = Endurance(0.0)

StateOf = Callable[[str], State]
ReadingsOf = Callable[[str], Mapping[str, Reading]]


def device_endurance(
    inventory: Inventory, device_id: str, cond: Conditions, state: StateOf, readings: ReadingsOf
) -> Endurance:
    """Hours ``device_id`` keeps power under ``cond``.

    Args:
        inventory: devices and their feeds.
        device_id: the device.
        cond: the scenario's conditions.
        state: effective state of a device by id.
        readings: latest readings of a device by id.
    """
    device = inventory.devices[device_id]
    return _feed(inventory, device, cond, state, readings, depth=0) + _own_battery(
        device, cond, readings(device.id)
    )


def _own_battery(device: Device, cond: Conditions, readings: Mapping[str, Reading]) -> Endurance:
    if device.battery_hours is None:
        return NOTHING
    charge = _number(readings.get(CHARGE))
    if charge is None:
        return Endurance(0.0, False, missing=(f"{_label(device)} battery charge not reported",))
    hours = max(0.0, min(charge, 1.0)) * device.battery_hours
    part = f"{_label(device)} battery {charge * 100:.0f} % ≈ {hours:.1f} h"
    return Endurance(hours, parts=(part,))


def _feed(
    inv: Inventory,
    device: Device,
    cond: Conditions,
    state: StateOf,
    readings: ReadingsOf,
    depth: int,
) -> Endurance:
    feed = device.power
    if feed.kind == "none":
        return UNBOUNDED if cond.resupply else NOTHING
    if not cond.mains_lost:
        return UNBOUNDED
    if feed.kind == "mains" or feed.ref is None or depth > 8:
        alone = depth == 0 and device.battery_hours is None
        return Endurance(0.0, parts=("on mains only",)) if alone else NOTHING
    source = inv.devices[feed.ref]
    source_state = state(source.id)
    if source_state is State.DOWN:
        return Endurance(0.0, parts=(f"{_label(source)} down",))
    if source_state not in WORKING:
        return Endurance(0.0, False, missing=(f"{_label(source)} state unknown",))
    if feed.kind == "ups":
        stage = _ups_runtime(source, readings(source.id))
        return stage + _feed(inv, source, cond, state, readings, depth + 1)
    return _fuel(source, readings(source.id))


def _ups_runtime(ups: Device, readings: Mapping[str, Reading]) -> Endurance:
    seconds = _number(readings.get(RUNTIME))
    if seconds is None:
        return Endurance(0.0, False, missing=(f"{_label(ups)} runtime not reported",))
    hours = max(seconds, 0.0) / 3600
    return Endurance(hours, parts=(f"{_label(ups)} runtime {hours:.1f} h",))


def _fuel(genset: Device, readings: Mapping[str, Reading]) -> Endurance:
    curve = genset.generator
    if curve is None:
        return Endurance(0.0, False, missing=(f"{_label(genset)} fuel curve not configured",))
    litres = _number(readings.get(FUEL_LITRES))
    ratio = _number(readings.get(FUEL))
    if litres is None and ratio is not None and curve.tank_litres is not None:
        litres = ratio * curve.tank_litres
    if litres is None:
        return Endurance(0.0, False, missing=(f"{_label(genset)} fuel level not reported",))
    load = _number(readings.get(LOAD)) if readings.get(RUNNING) is True else None
    if load is None:
        load = curve.expected_load
    rate = curve.litres_per_hour(load)
    hours = max(litres, 0.0) / rate
    return Endurance(
        hours,
        parts=(f"{_label(genset)} fuel {litres:.0f} L ÷ {rate:.1f} L/h ≈ {hours:.1f} h",),
    )


def _number(value: Reading | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _label(device: Device) -> str:
    return f"{device.name} ({device.id})" if device.name != device.id else device.id
