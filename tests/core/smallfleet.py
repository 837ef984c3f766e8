"""A small inventory for the core's tests: the centre's repeater and one village with a
router, a camera behind it, a PDT terminal on the repeater and a satellite phone."""

from __future__ import annotations

from commsmon.core.model import Device, HealthRule, Inventory, Site


def small_inventory() -> Inventory:
    """Sites ``centre`` and ``v1``; devices rpt, router, cam (behind router), pdt, sat."""
    sites = [Site("centre", "Centre", "town", "centre"), Site("v1", "Village 1", "town")]
    devices = [
        Device("rpt", "centre", "pdt_repeater", "repeater", "snmp", "hytera-repeater"),
        Device("router", "v1", "router", "router", "snmp", "router-mib2", channel="public"),
        Device("cam", "v1", "camera", "camera", "snmp", "hikvision-camera", parent="router"),
        Device(
            "pdt", "v1", "pdt_terminal", "pdt", "mqtt", "pdt-terminal",
            channel="pdt370", depends_on=("rpt",), stale_after=300,
        ),
        Device(
            "sat", "v1", "satphone", "sat", "mqtt", "satphone-dock", channel="satellite",
            health=(HealthRule("battery", below=0.3, text={"zh": "电量低", "en": "battery low"}),),
            stale_after=600,
        ),
    ]
    return Inventory.build(sites, devices)
