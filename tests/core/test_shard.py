"""How a sharded deployment splits the inventory (pure)."""

from __future__ import annotations

import pytest

from commsmon.core.fleet import Fleet
from commsmon.core.model import Device, Inventory, PowerFeed, Site
from commsmon.core.shard import ShardPlan, shard_of
from commsmon.core.types import Observation
from commsmon.sources import peers

COUNT = 4


def _inventory(villages: int = 40) -> Inventory:
    sites = [Site("centre", "中心", "", "centre")]
    devices = [
        Device("rpt", "centre", "pdt_repeater", "中继台", "snmp", "p",
               power=PowerFeed.parse("ups:ups")),
        Device("ups", "centre", "ups", "UPS", "snmp", "p"),
    ]
    for v in range(villages):
        site = f"v{v:02d}"
        sites.append(Site(site, site, "镇"))
        devices += [
            Device(f"{site}-router", site, "router", "路由器", "snmp", "p", channel="public"),
            Device(f"{site}-cam", site, "camera", "摄像机", "snmp", "p", parent=f"{site}-router"),
            Device(f"{site}-pdt", site, "pdt_terminal", "终端", "mqtt", "p", channel="pdt370",
                   depends_on=("rpt",)),
        ]
    return Inventory.build(sites, devices)


def test_shard_of_is_stable_and_spread() -> None:
    """BLAKE2b of the site id: the same in every process; 40 villages reach all 4 shards."""
    assert shard_of("v00", 4) == shard_of("v00", 4)
    assert [shard_of(f"v{v:02d}", 4) for v in range(8)] == [
        shard_of(f"v{v:02d}", 4) for v in range(8)
    ]
    assert shard_of("centre", 1) == 0
    assert {shard_of(f"v{v:02d}", COUNT) for v in range(40)} == set(range(COUNT))


def test_every_device_has_one_owner_and_villages_stay_whole() -> None:
    inventory = _inventory()
    plans = [ShardPlan.build(inventory, i, COUNT) for i in range(COUNT)]
    for device in inventory.devices.values():
        owners = [i for i, p in enumerate(plans) if p.owns(device)]
        assert owners == [shard_of(device.site, COUNT)]
    assert set().union(*(p.sites for p in plans)) == set(inventory.sites)
    assert sum(len(p.sites) for p in plans) == len(inventory.sites)


def test_what_a_village_depends_on_is_tracked_by_its_shard() -> None:
    """The repeater and the UPS feeding it are copied to every shard with a PDT village."""
    inventory = _inventory()
    centre_owner = shard_of("centre", COUNT)
    for i in range(COUNT):
        plan = ShardPlan.build(inventory, i, COUNT)
        assert plan.tracks("rpt") and plan.tracks("ups")  # every shard has a village
        assert plan.destinations["rpt"][0] == centre_owner  # owner first
        mine = plan.inventory(inventory)
        assert set(mine.sites) == plan.sites | {"centre"}
        # Polled elsewhere, so it arrives over the broker here.
        assert mine.devices["rpt"].source == ("snmp" if i == centre_owner else "mqtt")
        assert not any(plan.tracks(f"{v}-cam") for v in inventory.sites
                       if v != "centre" and v not in plan.sites)


def test_a_village_judged_from_forwarded_repeater_observations() -> None:
    """A shard that does not own the centre sees its villages' PDT channel through copies."""
    inventory = _inventory()
    centre_owner = shard_of("centre", COUNT)
    index = next(i for i in range(COUNT) if i != centre_owner)
    plan = ShardPlan.build(inventory, index, COUNT)
    fleet = Fleet(plan.inventory(inventory), 0.0)
    fleet.set_source("mqtt", True, 0.0)
    village = sorted(s for s in plan.sites)[0]
    for t in (1.0, 2.0):
        for device in ("rpt", "ups", f"{village}-pdt"):
            wire = peers.encode(Observation(device, t, True, {"charge": 1.0, "runtime": 3600.0}))
            fleet.observe(peers.decode(wire))
    snap = plan.report(fleet.evaluate(3.0))
    assert set(snap.sites) == plan.sites  # the centre is judged by its own shard
    assert "rpt" not in snap.devices
    assert snap.sites[village].channels["pdt370"].state.value == "up"


def test_one_shard_is_the_whole_inventory() -> None:
    inventory = _inventory(3)
    plan = ShardPlan.build(inventory)
    assert plan.inventory(inventory) is inventory
    assert plan.sites == set(inventory.sites)


@pytest.mark.parametrize(("index", "count"), [(4, 4), (-1, 2), (0, 0)])
def test_bad_shard_index(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="shard index"):
        ShardPlan.build(_inventory(1), index, count)


def test_peer_encoding_round_trips_and_rejects_garbage() -> None:
    obs = Observation("d1", 1764400000.5, False, {"fuel": 0.5, "source": "battery", "ok": True},
                      conclusive=True, error="offline")
    assert peers.decode(peers.encode(obs)) == obs
    trap = Observation("d1", 2.0, True, {"source": "battery"}, unconfirmed=True)
    assert peers.decode(peers.encode(trap)) == trap
    nan = Observation("d1", 1.0, True, {"fuel": float("nan"), "load": 3.0})
    assert peers.decode(peers.encode(nan)).readings == {"load": 3.0}
    for bad in (b"[]", b'{"d": 1, "t": 1, "ok": true}', b'{"d": "x", "t": "now", "ok": true}',
                b'{"d": "x", "t": 1, "ok": true, "r": {"a": [1]}}'):
        with pytest.raises(ValueError):
            peers.decode(bad)
