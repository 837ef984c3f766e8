"""Three-outage readiness: hand-computed cases over a small inventory (pure core).

The inventory: a centre with repeater ``rpt`` on UPS ``cups`` backed by a 10 kW
genset ``cgen``; village ``v`` with a router (public) and a PDT terminal
(pdt370, needs ``rpt``) on UPS ``ups`` backed by an 8 kW genset ``gen``
(1.5 L/h at half load), and a satellite phone in a dock on a wall socket
with a 60 h battery.  Default readings give, with mains lost:
  router / pdt: ups 1.0 h + gen 150 L / 1.5 L/h = 100 h  -> 101 h
  repeater:     cups 0.5 h + cgen 300 L / 2.0 L/h = 150 h -> 150.5 h
  satellite:    battery 96 % x 60 h = 57.6 h
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import pytest

from commsmon.core.fleet import Fleet
from commsmon.core.model import Device, GeneratorCurve, Inventory, PowerFeed, Site
from commsmon.core.readiness import evaluate_scenarios
from commsmon.core.types import CheckIn, Observation, State

T0 = 1_764_400_000.0
CURVE8 = GeneratorCurve(((0.5, 1.5), (0.75, 2.0), (1.0, 2.6)), tank_litres=200)
CURVE10 = GeneratorCurve(((0.5, 2.0), (0.75, 2.5), (1.0, 3.3)), tank_litres=400)


def _inventory(with_channels: bool = True) -> Inventory:
    ups_feed = PowerFeed("ups", "ups")
    devices = [
        Device("rpt", "c", "pdt_repeater", "repeater", "snmp", "p", power=PowerFeed("ups", "cups")),
        Device("cups", "c", "ups", "cups", "snmp", "p", power=PowerFeed("generator", "cgen")),
        Device("cgen", "c", "generator", "cgen", "mqtt", "p", generator=CURVE10),
        Device("ups", "v", "ups", "ups", "snmp", "p", power=PowerFeed("generator", "gen")),
        Device("gen", "v", "generator", "gen", "mqtt", "p", generator=CURVE8),
    ]
    if with_channels:
        devices += [
            Device("router", "v", "router", "router", "snmp", "p", channel="public",
                   power=ups_feed),
            Device("pdt", "v", "pdt_terminal", "pdt", "mqtt", "p", channel="pdt370",
                   depends_on=("rpt",), power=ups_feed),
            Device("sat", "v", "satphone", "sat", "mqtt", "p", channel="satellite",
                   battery_hours=60),
            Device("hand", "v", "satphone", "hand", "checkin", "p", channel="satellite",
                   power=PowerFeed("none"), battery_hours=72),
        ]
    return Inventory.build([Site("c", "Centre", "t", "centre"), Site("v", "V", "t")], devices)


READINGS: dict[str, dict[str, Any]] = {
    "cups": {"runtime": 1800.0},
    "cgen": {"fuel_litres": 300.0, "running": False},
    "ups": {"runtime": 3600.0},
    "gen": {"fuel_litres": 150.0, "running": False},
    "sat": {"charge": 0.96},
}


@dataclass
class Case:
    name: str
    scenario: str
    ready: bool
    endurance: float | None
    surviving: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    states: dict[str, State] = field(default_factory=dict)
    readings: dict[str, dict[str, Any]] = field(default_factory=dict)


CASES = [
    Case("network: public lost, rest on mains", "network", True, math.inf,
         ("pdt370", "satellite"), ("public: lost with the public network",)),
    Case("road: mains stays, everything unbounded", "road", True, math.inf,
         ("public", "pdt370", "satellite")),
    Case("power: UPS + genset chains outlast 72 h; the phone does not", "power", True, 101.0,
         ("public", "pdt370"), ("satellite", "battery 96 %", "57.6 h", "< 72 h target")),
    Case("all: public lost too; pdt370 carries it", "all", True, 101.0, ("pdt370",),
         ("public: lost with the public network", "satellite")),
    Case("power: 100 L of fuel is not 72 h", "power", False, 67.67, (),
         ("100 L", "1.5 L/h", "< 72 h target"), readings={"gen": {"fuel_litres": 100.0}}),
    Case("72 h boundary: 71.9 h is not ready", "power", False, 71.9, (), ("< 72 h",),
         readings={"ups": {"runtime": 0.0}, "gen": {"fuel_litres": 107.85}}),
    Case("72 h boundary: 72.0 h is ready", "power", True, 72.0, ("public", "pdt370"),
         readings={"ups": {"runtime": 0.0}, "gen": {"fuel_litres": 108.0}}),
    Case("UPS runtime unknown, fuel alone clears the target", "power", True, 100.0,
         ("public", "pdt370"), readings={"ups": {}}),
    Case("UPS runtime unknown and fuel short: unknown, never 0", "power", False, 57.6, (),
         ("endurance unknown", "at least 40.0 h", "runtime not reported"),
         readings={"ups": {}, "gen": {"fuel_litres": 60.0}}),
    Case("no fuel reading: unknown endurance", "power", False, 57.6, (),
         ("fuel level not reported",), readings={"gen": {"running": False}}),
    Case("fuel ratio x tank when litres are missing", "power", False, 67.67, (),
         ("100 L",), readings={"gen": {"fuel": 0.5}}),
    Case("running at full load burns 2.6 L/h", "power", False, 58.69, (),
         ("2.6 L/h",), readings={"gen": {"fuel_litres": 150.0, "running": True, "load": 1.0}}),
    Case("repeater down takes pdt370 in every scenario (network)", "network", True, math.inf,
         ("satellite",), ("pdt370", "repeater (rpt) down since"), states={"rpt": State.DOWN}),
    Case("repeater down (power): public still carries", "power", True, 101.0, ("public",),
         ("pdt370", "repeater (rpt) down"), states={"rpt": State.DOWN}),
    Case("centre genset short: pdt370 bound by the repeater chain", "power", True, 101.0,
         ("public",), ("pdt370", "cups runtime 0.5 h + cgen fuel 60 L ÷ 2.0 L/h ≈ 30.0 h"),
         readings={"cgen": {"fuel_litres": 60.0}}),
    Case("village UPS down: its devices lose power at once", "power", False, 57.6, (),
         ("ups down",), states={"ups": State.DOWN}),
    Case("village genset down: only the UPS minutes", "power", False, 57.6, (),
         ("gen down", "ups runtime 1.0 h"), states={"gen": State.DOWN}),
    Case("genset unknown: endurance unknown", "power", False, 57.6, (),
         ("gen state unknown",), states={"gen": State.UNKNOWN}),
    Case("a degraded device still works", "network", True, math.inf, ("pdt370", "satellite"),
         states={"sat": State.DEGRADED}),
    Case("an unknown provider never counts", "network", True, math.inf, ("pdt370",),
         ("satellite", "sat unknown"), states={"sat": State.UNKNOWN}),
    Case("every provider down: not ready, no endurance", "road", False, None, (),
         ("router down", "pdt down", "sat down"),
         states={"router": State.DOWN, "pdt": State.DOWN, "sat": State.DOWN}),
    Case("handheld with 50 % charge in road: 36 h", "road", True, math.inf,
         ("public", "pdt370", "satellite"), states={"hand": State.UP},
         readings={"hand": {"charge": 0.5}}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_scenario_table(case: Case) -> None:
    """Each hand-computed case gives its ready, endurance, surviving channels and reason."""
    inventory = _inventory()
    states = {d: State.UP for d in inventory.devices}
    states["hand"] = State.UNKNOWN
    states.update(case.states)
    readings = {d: dict(READINGS.get(d, {})) for d in inventory.devices}
    for d, values in case.readings.items():
        readings[d] = dict(values)
    results = evaluate_scenarios(
        inventory, inventory.sites["v"], states.__getitem__, dict.fromkeys(states, T0),
        readings.__getitem__, UTC,
    )
    result = results[case.scenario]
    assert result.ready is case.ready, result.reason
    if case.endurance is None:
        assert result.endurance_hours is None
    else:
        assert result.endurance_hours == pytest.approx(case.endurance, abs=0.01), result.reason
    assert set(result.surviving) == set(case.surviving), result.reason
    for word in case.keywords:
        assert word in result.reason, f"{word!r} not in {result.reason!r}"
    if result.surviving == ("public", "pdt370", "satellite"):
        assert result.reason == ""


def test_handheld_charge_bounds_road_endurance() -> None:
    """A handheld (power: none) in road lasts its charge x rated hours: 50 % x 72 h = 36 h."""
    inventory = _inventory()
    states = {d: State.DOWN for d in inventory.devices} | {"hand": State.UP}
    readings: dict[str, dict[str, Any]] = {d: {} for d in inventory.devices}
    readings["hand"] = {"charge": 0.5}
    result = evaluate_scenarios(
        inventory, inventory.sites["v"], states.__getitem__, dict.fromkeys(states, T0),
        readings.__getitem__, UTC,
    )["road"]
    assert not result.ready
    assert result.endurance_hours == pytest.approx(36.0)
    assert "hand battery 50 % ≈ 36.0 h" in result.reason


def test_no_channels_is_never_ready() -> None:
    """A site without any channel is not ready, and says so."""
    inventory = _inventory(with_channels=False)
    result = evaluate_scenarios(
        inventory, inventory.sites["v"], lambda _: State.UP, {}, lambda _: {}, UTC
    )["network"]
    assert not result.ready
    assert "no channel" in result.reason


def test_stale_checkin_makes_handheld_unknown_and_readiness_says_so() -> None:
    """A check-in older than its validity (7 d) makes the handheld unknown."""
    fleet = Fleet(_inventory(), T0)
    fleet.set_source("mqtt", True, T0)
    for d in ("router", "pdt", "sat"):
        fleet.observe(Observation(d, T0, False, conclusive=True))
    fleet.checkin(CheckIn("hand", T0 - 8 * 86400, True, "keeper", charge=0.9))
    snap = fleet.evaluate(T0)
    hand = snap.devices["hand"]
    assert hand.state is State.UNKNOWN
    assert hand.reason is not None and "8.0 d ago, older than 7 d" in hand.reason
    network = snap.sites["v"].scenarios["network"]
    assert not network.ready
    assert "hand unknown" in network.reason
    fleet.checkin(CheckIn("hand", T0 - 3600, True, "keeper", charge=0.9))
    snap = fleet.evaluate(T0)
    assert snap.devices["hand"].state is State.UP
    assert snap.sites["v"].scenarios["network"].surviving == ("satellite",)


def test_failed_checkin_takes_device_down() -> None:
    """A failed test call is conclusive: the handheld is down at once."""
    fleet = Fleet(_inventory(), T0)
    fleet.checkin(CheckIn("hand", T0, False, "keeper", note="no satellite"))
    hand = fleet.evaluate(T0 + 1).devices["hand"]
    assert hand.state is State.DOWN
    assert hand.reason == "check-in failed: no satellite"


def test_village_with_only_a_stale_handheld_left_is_isolated() -> None:
    """Every polled channel down, the handheld's check-in stale: no channel works, so the
    village is isolated — an unobservable handheld is no sign the monitor is blind."""
    fleet = Fleet(_inventory(), T0)
    fleet.set_source("mqtt", True, T0)
    for d in ("router", "pdt", "sat"):
        fleet.observe(Observation(d, T0, False, conclusive=True))
    for i in range(3):
        fleet.observe(Observation("router", T0 + i, False))
    snap = fleet.evaluate(T0 + 5)
    assert snap.devices["hand"].state is State.UNKNOWN
    assert snap.sites["v"].reachable is False
    assert snap.sites["v"].channels["satellite"].state is State.UNKNOWN
