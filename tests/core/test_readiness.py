"""Three-outage readiness over a small inventory (pure core); the hand-computed villages
through the real configuration loader are in ``tests/field``.

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
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from commsmon.core.facts import Fact
from commsmon.core.fleet import Fleet
from commsmon.core.model import Device, GeneratorCurve, Inventory, PowerFeed, Site
from commsmon.core.outages import Outage
from commsmon.core.readiness import ScenarioResult, conditions
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


def _answered() -> Mapping[str, ScenarioResult]:
    """v's verdicts once every device but the handheld answered twice, with READINGS."""
    fleet = Fleet(_inventory(), T0)
    fleet.set_source("mqtt", True, T0)
    for t in (T0, T0 + 1):
        for d in ("rpt", "cups", "cgen", "ups", "gen", "router", "pdt", "sat"):
            fleet.observe(Observation(d, t, True, READINGS.get(d, {})))
    return fleet.evaluate(T0 + 2).sites["v"].scenarios


def test_conditions_fold_what_is_true_now_into_every_scenario() -> None:
    """Mains out at the centre now holds in network and road too; a declared road stops
    resupply in network and now; the public network out now loses public in road."""
    power_at_centre = {"c": {"power": Outage("power", T0 - 600, ())}}
    for scenario in ("network", "road", "now"):
        cond = conditions(scenario, "v", power_at_centre, T0)
        assert cond.no_mains("c") and not cond.no_mains("v"), scenario
    road_here = {"v": {"road": Outage("road", T0, (), declared=True)}}
    assert not conditions("network", "v", road_here, T0).resupply
    assert not conditions("now", "v", road_here, T0).resupply
    assert conditions("now", "v", {}, T0).resupply
    network_here = {"v": {"network": Outage("network", T0, ())}}
    road = conditions("road", "v", network_here, T0)
    assert road.public_lost and road.public_out
    assert not conditions("now", "w", network_here, T0).public_lost


def test_scenario_verdicts_follow_the_shared_inventory() -> None:
    """Every scenario and now on the small inventory with mains lost: the village chains
    (UPS 1 h + 150 L ÷ 1.5 L/h = 101 h) carry; the docked phone's 96 % × 60 h = 57.6 h
    does not; in network and road the repeater is on mains and everything lasts."""
    results = _answered()
    # at least 101 h: the handheld, never checked in, might last longer
    assert results["power"].ready and results["power"].endurance.lower == pytest.approx(101)
    # public: how long the base stations hold without mains is not known: 0 .. 101 h
    assert results["power"].surviving == ("pdt370",)
    public = next(o for o in results["power"].channels if o.channel == "public")
    assert (public.endurance.lower, public.endurance.upper) == (0, pytest.approx(101))
    assert results["all"].surviving == ("pdt370",)
    assert results["network"].endurance.unbounded and results["road"].endurance.unbounded
    assert results["now"].ready and results["now"].endurance.unbounded
    assert results["now"].until is None and not results["now"].outages
    # nothing names a clock time: the verdicts read the same whenever they are read
    assert [r.at for r in results.values()] == [None] * 5


def test_an_outlook_judged_alike_in_two_scenarios_is_one_object() -> None:
    """Mains holds everywhere: the PDT chain (terminal on the village UPS, repeater on the
    centre's) lasts for ever whether roads are open (network) or cut (road), and so does
    the docked phone on mains, which carries the satellite channel whatever the
    handheld does: each channel's two verdicts hold one outlook (and road and now, alike
    in every channel, one tuple of them).  With mains lost
    (power) the PDT chain lasts 101 h: an outlook of its own."""
    results = _answered()

    def channel(scenario: str, name: str) -> Any:
        return next(o for o in results[scenario].channels if o.channel == name)

    assert channel("network", "pdt370") is channel("road", "pdt370")
    assert channel("network", "satellite") is channel("road", "satellite")
    # road and now (roads open) judge every channel alike: one tuple of outlooks
    assert results["road"].channels is results["now"].channels
    assert channel("network", "pdt370").endurance.unbounded
    assert channel("power", "pdt370").endurance.lower == pytest.approx(101)


def test_base_stations_backup_counts_from_the_start_of_a_power_cut() -> None:
    """Base stations holding 4 h: with mains lost hypothetically (power) public lasts
    min(101, 4) = 4 h; in a cut that began an hour ago (the UPS on battery since T0,
    judged at T0 + 3600) 4 - 1 = 3 h are left, in now and in power alike."""
    inventory = _inventory()
    sites = [replace(s, public_backup_hours=4.0) for s in inventory.sites.values()]
    fleet = Fleet(Inventory.build(sites, list(inventory.devices.values())), T0)
    fleet.set_source("mqtt", True, T0)

    def public(at: float, scenario: str) -> tuple[float, float]:
        results = fleet.evaluate(at).sites["v"].scenarios[scenario]
        e = next(o for o in results.channels if o.channel == "public").endurance
        return e.lower, e.upper

    for t in (T0 - 2, T0 - 1):
        for d in ("rpt", "cups", "cgen", "ups", "gen", "router", "pdt", "sat"):
            fleet.observe(Observation(d, t, True, READINGS.get(d, {})))
    assert public(T0, "power") == (4.0, 4.0)
    assert public(T0, "now") == (math.inf, math.inf)
    on_battery = {"runtime": 3600.0, "output_source": "battery"}
    for t in (T0, T0 + 3600):
        for d in ("rpt", "cups", "cgen", "gen", "router", "pdt", "sat"):
            fleet.observe(Observation(d, t, True, READINGS.get(d, {})))
        fleet.observe(Observation("ups", t, True, on_battery))
        fleet.evaluate(t)  # the outage is first seen at T0
    assert public(T0 + 3600, "now") == (pytest.approx(3.0), pytest.approx(3.0))
    assert public(T0 + 3600, "power") == (pytest.approx(3.0), pytest.approx(3.0))
    # now names clock times (public gives out at T0 + 3600 + 3 h): they count from the
    # evaluation; power, a hypothesis, names none
    scenarios = fleet.evaluate(T0 + 3600).sites["v"].scenarios
    assert scenarios["now"].at == T0 + 3600 and scenarios["power"].at is None


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
    assert hand.reasons == (Fact("checkin_stale", {"at": T0 - 8 * 86400, "age": 8 * 86400.0,
                                                   "validity": 7 * 86400.0}),)
    network = snap.sites["v"].scenarios["network"]
    assert not network.ready and network.unknown
    (unknown,) = network.endurance.unknowns
    assert unknown.code == "link_unknown" and unknown.facts("causes") == hand.reasons
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
    assert hand.reasons == (Fact("checkin_failed", {"at": T0, "note": "no satellite"}),)


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


def test_a_checkin_of_minus_zero_charge_lasts_zero_hours_not_minus_zero() -> None:
    """A keeper checks in a phone on a mains charger with battery -0 (the API's ge=0
    lets it through): -0 × 60 h is 0 h, told as 0, never -0, in the device's
    endurance and the power scenario (where nothing is added to it)."""
    inv = Inventory.build([Site("v", "V", "t")], [
        Device("sat", "v", "satphone", "sat", "checkin", "p", channel="satellite",
               power=PowerFeed("mains"), battery_hours=60.0)])
    fleet = Fleet(inv, T0)
    fleet.checkin(CheckIn("sat", T0, True, charge=-0.0))
    snap = fleet.evaluate(T0 + 1)
    for endurance in (snap.devices["sat"].endurance,
                      snap.sites["v"].scenarios["power"].endurance):
        assert endurance is not None
        assert math.copysign(1.0, endurance.lower) == 1.0 and endurance.lower == 0.0
