"""Three sharded instances against one simulated fleet and one Mosquitto (DESIGN.md §7).

Every device is polled by exactly one instance (proved at the agents' side:
which process's socket sent each device's requests), every telemetry message
is processed exactly once across the instances, and villages owned by one
shard still see the district repeater that another shard polls.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiomqtt
import pytest
from ruamel.yaml import YAML

from commsmon.config.load import load_config
from commsmon.config.settings import Config
from commsmon.core.shard import ShardPlan
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from tests.fleetharness import DaemonProcess, Samples, free_port, value, write_config
from tests.integration.test_prometheus_server import Prometheus, _wait_data

pytestmark = pytest.mark.integration

SHARDS = 3
BURST = 600  # telemetry messages published by the test


def _udp_socket_pids(pids: list[int]) -> dict[int, int]:
    """Local UDP port -> pid, for the sockets the given processes hold (Linux /proc)."""
    inode_port: dict[str, int] = {}
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        inode_port[fields[9]] = int(fields[1].split(":")[1], 16)
    owner: dict[int, int] = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and (port := inode_port.get(target[8:-1])):
                owner[port] = pid
    return owner


def _reported(samples: Samples) -> set[str]:
    return {dict(labels)["device"] for (name, labels) in samples
            if name == "commsmon_device_info"}


@pytest.fixture
async def shards(tmp_path: Path) -> AsyncIterator[tuple[list[DaemonProcess], SimFleet, Config]]:
    async with Mosquitto() as broker:
        base, _ = write_config(tmp_path, mqtt_port=broker.port)
        yaml = YAML()
        paths = []
        for index in range(SHARDS):
            data = yaml.load(base.read_text(encoding="utf-8"))
            data["shard"] = {"index": index, "count": SHARDS}
            data["mqtt"]["share_group"] = "commsmon"
            data["mqtt"]["client_id"] = f"{data['mqtt']['client_id']}-{index}"
            data["http"]["port"] = free_port()
            data["state_dir"] = str(tmp_path / f"state-{index}")
            path = tmp_path / f"shard-{index}.yaml"
            with path.open("w", encoding="utf-8") as f:
                yaml.dump(data, f)
            paths.append((path, data["http"]["port"]))
        config = load_config(paths[0][0])
        daemons = [DaemonProcess(p, port, tmp_path / f"shard-{i}.log")
                   for i, (p, port) in enumerate(paths)]
        try:
            # Subscribed before the devices connect: their presence and their one
            # telemetry message are live news (a retained message is only the last
            # known state), then only what the test publishes.
            for d in daemons:
                await d.wait_for("mqtt subscribed",
                                 lambda s: value(s, "commsmon_mqtt_connected") == 1, within=30)
            async with SimFleet(config, telemetry_period=3600) as fleet:
                yield daemons, fleet, config
        finally:
            for d in daemons:  # 0, or killed by the test
                assert d.stop() in (0, -signal.SIGKILL), d.log()[-2000:]


async def test_three_shards_split_the_fleet(
    shards: tuple[list[DaemonProcess], SimFleet, Config], tmp_path: Path,
) -> None:
    daemons, fleet, config = shards
    inventory = config.inventory()
    watched = {d.id for d in inventory.devices.values() if d.source != "checkin"}
    plans = [ShardPlan.build(inventory, i, SHARDS) for i in range(SHARDS)]
    assert all(plans[i].sites for i in range(SHARDS)), "the demo must give every shard a site"

    # Each device is reported up by its owner, and by no one else.
    for i, daemon in enumerate(daemons):
        mine = {d for d in watched if plans[i].owns(inventory.devices[d])}
        await daemon.wait_for(
            f"shard {i}'s devices up",
            lambda s, mine=mine: all(value(s, "commsmon_device_up", device=d) == 1 for d in mine),
            within=40,
        )
    reported = [_reported(await d.samples()) for d in daemons]
    assert set().union(*reported) == set(inventory.devices)
    assert sum(len(r) for r in reported) == len(inventory.devices), "a device reported twice"

    # Polled by exactly one instance: every request a device's agent got came from
    # a socket of its owner's process.
    pids = [d.proc.pid for d in daemons]
    socket_pid = _udp_socket_pids(pids)
    for device_id in fleet.links:
        link = fleet.links[device_id]
        senders = {socket_pid.get(port) for _, port in link.clients}
        owner = next(i for i, p in enumerate(plans) if p.owns(inventory.devices[device_id]))
        assert senders == {pids[owner]}, (device_id, senders, pids)

    # The district repeater is polled by one shard; every village's PDT channel,
    # judged by its own shard, still sees it (once the owner's first poll of it has
    # come over the broker: a loaded machine may take a few seconds).
    for i, daemon in enumerate(daemons):
        villages = [s for s in plans[i].sites if inventory.sites[s].role == "village"]
        await daemon.wait_for(
            f"shard {i}'s villages see the repeater",
            lambda s, villages=villages: all(value(
                s, "commsmon_site_channel_up", site=v, channel="pdt370") == 1 for v in villages),
            within=30)

    # Every telemetry message processed exactly once, by one of the three.
    def processed(s: Samples) -> float:
        return value(s, "commsmon_mqtt_messages_total", kind="telemetry", result="ok") or 0.0

    before = [processed(await d.samples()) for d in daemons]
    terminals = sorted(
        (device.id, config.topics(site, device)[1])
        for site, device in config.devices()
        if device.profile == "pdt-terminal"
    )
    last_rssi: dict[str, int] = {}
    start_ms = int(time.time() * 1000) - BURST
    async with aiomqtt.Client("127.0.0.1", fleet.config.mqtt.port,  # type: ignore[union-attr]
                              identifier="shard-test-publisher") as client:
        for n in range(BURST):
            device_id, topic = terminals[n % len(terminals)]
            rssi = -60 - n % 40
            last_rssi[device_id] = rssi
            # The device's own clock orders its messages, whichever shard gets them.
            body = {"ts": start_ms + n, "registered": True, "rssi_dbm": rssi, "battery_pct": 100}
            await client.publish(topic, json.dumps(body), qos=1)

    async def total() -> tuple[float, list[float]]:
        counts = [processed(await d.samples()) - b for d, b in zip(daemons, before, strict=True)]
        return sum(counts), counts

    for _ in range(120):
        done, counts = await total()
        if done >= BURST:
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.0)  # anything processed twice would show by now
    done, counts = await total()
    assert done == BURST, counts
    assert all(c > 0 for c in counts), f"the shared subscription did not split: {counts}"

    # Whoever received a terminal's last message, its owner shows that value.
    for i, daemon in enumerate(daemons):
        s = await daemon.samples()
        for device_id, rssi in last_rssi.items():
            if plans[i].owns(inventory.devices[device_id]):
                assert value(s, "commsmon_signal_strength_dbm", device=device_id) == rssi
        assert (value(s, "commsmon_shard_forwarded_total", result="sent") or 0) > 0

    # One instance killed: Prometheus' rules name exactly its villages, unwatched.
    exe = shutil.which("prometheus")
    assert exe, "Debian prometheus is needed (make deps installs it)"
    directory = tmp_path / "prometheus"
    directory.mkdir()
    prom = Prometheus(exe, directory, [(d.url.removeprefix("http://"), i)
                                       for i, d in enumerate(daemons)])
    try:
        async with aiohttp.ClientSession() as session:
            await _wait_data(prom, session, "all three scraped",
                             'count(up{job="commsmon"} == 1) == 3')
            await _wait_data(prom, session, "who owns what", "commsmon_site_shard")
            daemons[1].kill()
            firing = await _wait_data(
                prom, session, "the unwatched villages",
                'ALERTS{alertname="CommsmonSiteUnwatched", alertstate="firing"}', within=60)
            await asyncio.sleep(2)  # all of them, and none of another shard's
            firing = await _wait_data(
                prom, session, "the unwatched villages",
                'ALERTS{alertname="CommsmonSiteUnwatched", alertstate="firing"}')
    finally:
        prom.stop()
    assert {a["metric"]["owner_shard"] for a in firing} == {"1"}
    assert {a["metric"]["site"] for a in firing} == set(plans[1].sites)
