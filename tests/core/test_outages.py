"""Active outages from evidence, and declared road outages (pure core)."""

from __future__ import annotations

from commsmon.core.facts import Fact
from commsmon.core.fleet import Fleet
from commsmon.core.model import Device, Inventory, Site
from commsmon.core.outages import Declaration
from commsmon.core.types import Observation

T0 = 1_764_400_000.0


def _fleet() -> Fleet:
    devices = [
        Device("rpt", "c", "pdt_repeater", "rpt", "snmp", "p"),
        Device("router", "v", "router", "router", "snmp", "p", channel="public"),
        Device("cam4g", "v", "camera", "cam4g", "mqtt", "p", channel="public"),
        Device("sat", "v", "satphone", "sat", "mqtt", "p", channel="satellite"),
        Device("ups", "v", "ups", "ups", "snmp", "p"),
        Device("gen", "v", "generator", "gen", "mqtt", "p"),
    ]
    inv = Inventory.build([Site("c", "C", "t", "centre"), Site("v", "V", "t")], devices)
    fleet = Fleet(inv, T0)
    fleet.set_source("mqtt", True, T0)
    for d in inv.devices:
        fleet.observe(Observation(d, T0, True))
    return fleet


def test_no_evidence_no_outage() -> None:
    """All quiet: no outage anywhere."""
    assert not _fleet().evaluate(T0 + 1).sites["v"].outages


def test_ups_on_battery_is_power_outage_with_since() -> None:
    """upsOutputSource battery starts a power outage; since stays at first sight."""
    fleet = _fleet()
    fleet.observe(Observation("ups", T0 + 10, True, {"output_source": "battery"}))
    first = fleet.evaluate(T0 + 11).sites["v"].outages["power"]
    assert first.since == T0 + 11
    assert first.evidence == (Fact("ups_on_battery", {"device": "ups", "name": "ups"}),)
    assert fleet.evaluate(T0 + 60).sites["v"].outages["power"].since == T0 + 11
    fleet.observe(Observation("ups", T0 + 70, True, {"output_source": "normal"}))
    assert "power" not in fleet.evaluate(T0 + 71).sites["v"].outages


def test_generator_running_without_mains() -> None:
    """A genset running with mains absent is evidence; running on a test run is not."""
    fleet = _fleet()
    fleet.observe(Observation("gen", T0 + 1, True, {"running": True, "mains_present": True}))
    assert "power" not in fleet.evaluate(T0 + 2).sites["v"].outages
    fleet.observe(Observation("gen", T0 + 3, True, {"running": True, "mains_present": False}))
    outage = fleet.evaluate(T0 + 4).sites["v"].outages["power"]
    assert outage.evidence == (Fact("generator_without_mains", {"device": "gen", "name": "gen"}),)


def test_repeater_on_battery_is_power_outage_at_centre() -> None:
    """rptSupplyPowerType battery shows mains lost at the repeater's site."""
    fleet = _fleet()
    fleet.observe(Observation("rpt", T0 + 1, True, {"supply_type": "battery"}))
    assert "power" in fleet.evaluate(T0 + 2).sites["c"].outages


def test_line_bads_rise_counts_until_the_next_poll() -> None:
    """upsInputLineBads rising since the poll before is a mains event until the next poll."""
    fleet = _fleet()
    fleet.observe(Observation("ups", T0 + 1, True, {"input_line_bads": 3.0}))
    assert "power" not in fleet.evaluate(T0 + 2).sites["v"].outages
    fleet.observe(Observation("ups", T0 + 61, True, {"input_line_bads": 4.0}))
    outage = fleet.evaluate(T0 + 62).sites["v"].outages["power"]
    assert outage.evidence == (Fact("input_line_bad", {"device": "ups", "name": "ups",
                                                       "at": T0 + 61}),)
    assert "power" in fleet.evaluate(T0 + 100).sites["v"].outages
    fleet.observe(Observation("ups", T0 + 121, True, {"input_line_bads": 4.0}))
    assert "power" not in fleet.evaluate(T0 + 122).sites["v"].outages


def test_stale_readings_of_a_down_device_are_not_evidence() -> None:
    """A UPS that stopped answering cannot testify: its last reading is old."""
    fleet = _fleet()
    fleet.observe(Observation("ups", T0 + 1, True, {"output_source": "battery"}))
    for i in range(3):
        fleet.observe(Observation("ups", T0 + 2 + i, False))
    assert "power" not in fleet.evaluate(T0 + 10).sites["v"].outages


def test_public_silent_while_satellite_reports_is_network_outage() -> None:
    """Every public device down while another channel works: the network is out."""
    fleet = _fleet()
    fleet.observe(Observation("cam4g", T0 + 1, False, conclusive=True))
    assert "network" not in fleet.evaluate(T0 + 2).sites["v"].outages  # router still up
    for i in range(3):
        fleet.observe(Observation("router", T0 + 3 + i, False))
    outage = fleet.evaluate(T0 + 10).sites["v"].outages["network"]
    assert outage.evidence == (Fact("public_silent", {"devices": ("cam4g", "router"),
                                                      "working": ("satellite",)}),)


def test_whole_village_silent_is_not_network_outage() -> None:
    """If nothing reports, the village is isolated; that is not evidence of 断网."""
    fleet = _fleet()
    for d in ("router", "cam4g", "sat"):
        fleet.observe(Observation(d, T0 + 1, False, conclusive=True))
    assert "network" not in fleet.evaluate(T0 + 2).sites["v"].outages


def test_declared_road_outage_expires_and_clears() -> None:
    """A declared road outage holds until its expiry, or until cleared."""
    fleet = _fleet()
    assert fleet.declare(Declaration("v", "road", T0, T0 + 3600, "duty officer", "landslide"))
    road = fleet.evaluate(T0 + 10).sites["v"].outages["road"]
    assert road.declared and road.since == T0
    assert road.evidence == (Fact("road_declared", {"by": "duty officer", "until": T0 + 3600,
                                                    "note": "landslide", "since": T0}),)
    assert "road" not in fleet.evaluate(T0 + 3600).sites["v"].outages
    fleet.declare(Declaration("v", "road", T0 + 4000))
    assert "road" in fleet.evaluate(T0 + 4001).sites["v"].outages
    assert fleet.clear("v", "road")
    assert "road" not in fleet.evaluate(T0 + 4002).sites["v"].outages
    assert not fleet.declare(Declaration("nowhere", "road", T0))
