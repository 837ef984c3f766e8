"""The trap and inform receiver against net-snmp's ``snmptrap`` and ``snmpinform``
(loopback only), through the real config loader.

The village: a UPS behind a router's NAT (its traps come from the router's address
but name the UPS in snmpTrapAddress.0 / the v1 agent-addr: 10.8.1.20), with a v3
engine ID for its v3 traps. What a trap means is its profile's (ups-rfc1628):
upsTrapOnBattery says output_source battery and the runtime it carries (12 min ->
720 s); the alarm-removed trap says nothing and asks for a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY
from pysnmp.proto import rfc1902

from commsmon.config.compile import Setup
from commsmon.config.load import load_config
from commsmon.config.profiles import ReadingSpec
from commsmon.core.fleet import Fleet
from commsmon.core.types import Observation
from commsmon.outputs.api import add_api_routes
from commsmon.sim.traps import encode_v2c_trap
from commsmon.sources.snmp.base import SnmpTarget
from commsmon.sources.snmp.gufo_backend import GufoClient
from commsmon.sources.snmp.poller import PollJob, SnmpPoller
from commsmon.sources.traps.receiver import TrapReceiver
from tests.snmpd import Snmpd, free_udp_port

pytestmark = pytest.mark.integration

PROFILES = Path(__file__).resolve().parents[2] / "config" / "profiles"
UPS_ENGINE = "8000000001020304"
ON_BATTERY = "1.3.6.1.2.1.33.2.1"
ALARM_REMOVED = "1.3.6.1.2.1.33.2.4"
MINUTES = "1.3.6.1.2.1.33.1.2.3.0"
TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
USER = ["-u", "upstrap", "-l", "authPriv", "-a", "SHA-256", "-A", "trap-auth-1",
        "-x", "AES", "-X", "trap-priv-1"]


def config_text(port: int, allow: str = "[]", rate: float = 50) -> str:
    return f"""
district: 测试区
profiles_dir: {PROFILES}
traps:
  listen: ["127.0.0.1:{port}"]
  communities: [trap-community]
  allow: {allow}
  rate: {rate}
  users:
    - {{name: upstrap, auth_password: trap-auth-1, priv_password: trap-priv-1,
       engine_id: "{UPS_ENGINE}"}}
sites:
  - id: v01
    name: 石门村
    town: 山城街道
    devices:
      - {{id: v01-router, kind: router, profile: router-mib2, channel: public,
         params: {{uplink_ifindex: 2}}, snmp: {{host: 127.0.0.1, port: 1161}}}}
      - {{id: v01-ups, kind: ups, profile: ups-rfc1628,
         snmp: {{host: 10.8.1.20, port: 161, trap_from: [10.8.1.20], engine_id: "{UPS_ENGINE}"}}}}
"""


class Village:
    """A receiver on an ephemeral port, with what it produced."""

    def __init__(self, port: int, state: Path) -> None:
        self.port, self.state = port, state
        self.seen: list[Observation] = []
        self.heard: list[Observation] = []
        self.polled: list[str] = []
        self.restarted: list[str] = []
        self.changed = asyncio.Event()
        self.receiver: TrapReceiver

    def sink(self, obs: Observation) -> None:
        """``heard``: every observation (a trap without readings says the path works);
        ``seen``: those with readings."""
        self.heard.append(obs)
        if obs.readings:
            self.seen.append(obs)
        self.changed.set()

    def poll_now(self, device: str, restarted: bool) -> None:
        self.polled.append(device)
        if restarted:
            self.restarted.append(device)

    async def send(self, *args: str, command: str = "snmptrap") -> int:
        proc = await asyncio.create_subprocess_exec(
            command, *args[:-1], f"127.0.0.1:{self.port}", *args[-1].split("|"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        await proc.communicate()
        return proc.returncode or 0

    async def wait_for(self, count: int) -> list[Observation]:
        """The observations once there are ``count`` (a generous 10 s bound)."""
        async with asyncio.timeout(10.0):
            while len(self.seen) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.seen


@contextlib.asynccontextmanager
async def village(tmp_path: Path, **kwargs: object) -> AsyncIterator[Village]:
    port = free_udp_port()
    path = tmp_path / "commsmon.yaml"
    path.write_text(config_text(port, **kwargs), encoding="utf-8")  # type: ignore[arg-type]
    found = Village(port, tmp_path / "state")
    found.receiver = TrapReceiver(Setup.of(load_config(path)), found.sink, found.poll_now,
                                  found.state)
    task = asyncio.create_task(found.receiver.run())
    await asyncio.sleep(0.2)  # the endpoint opens
    try:
        yield found
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture(scope="module")
def snmpd() -> Iterator[Snmpd]:
    with Snmpd() as agent:
        yield agent


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("commsmon_traps_dropped_total", {"reason": reason}) or 0.0


def on_battery_v2c(community: str = "trap-community", minutes: int = 12) -> tuple[str, ...]:
    # -v2c -c C <host> '' trapOID varbinds: through NAT, snmpTrapAddress.0 names the UPS.
    return ("-v2c", "-c", community,
            f"|{ON_BATTERY}|{MINUTES}|i|{minutes}|{TRAP_ADDRESS}|a|10.8.1.20")


async def test_on_battery_through_nat_is_a_power_outage_now_and_asks_for_a_poll(
        tmp_path: Path) -> None:
    """v2c, source 127.0.0.1 (the router), snmpTrapAddress.0 10.8.1.20: the UPS. Its
    reading says battery at once, runtime 12 min = 720 s, and a poll is asked for."""
    async with village(tmp_path) as v:
        assert await v.send(*on_battery_v2c()) == 0
        (obs,) = await v.wait_for(1)
        await asyncio.sleep(0.1)
    assert obs.device == "v01-ups" and obs.reachable
    assert obs.readings == {"output_source": "battery", "runtime": 720}
    assert v.polled == ["v01-ups"]


async def test_v1_agent_addr_names_the_device(tmp_path: Path) -> None:
    """snmptrap -v1: enterprise upsTraps, specific 1, agent-addr 10.8.1.20 -> the same."""
    async with village(tmp_path) as v:
        code = await v.send("-v1", "-c", "trap-community",
                            f"1.3.6.1.2.1.33.2|10.8.1.20|6|1||{MINUTES}|i|30")
        (obs,) = await v.wait_for(1)
    assert code == 0
    assert (obs.device, obs.readings) == ("v01-ups", {"output_source": "battery", "runtime": 1800})


async def test_a_wrong_community_is_dropped_and_counted(tmp_path: Path) -> None:
    async with village(tmp_path) as v:
        before = dropped("bad_community")
        await v.send(*on_battery_v2c(community="guess"))
        await asyncio.sleep(0.3)
    assert v.seen == [] and dropped("bad_community") == before + 1


async def test_a_source_outside_the_allow_list_is_dropped(tmp_path: Path) -> None:
    async with village(tmp_path, allow='["10.0.0.0/8"]') as v:
        before = dropped("unknown_source")
        await v.send(*on_battery_v2c())
        await asyncio.sleep(0.3)
    assert v.seen == [] and dropped("unknown_source") == before + 1


async def test_v3_traps_need_the_senders_engine_id_and_key(tmp_path: Path) -> None:
    """Right engine ID and keys: matched by the engine ID. Another engine ID:
    v3_unknown_engine. A wrong key: v3_auth. Nothing but the first is applied."""
    async with village(tmp_path) as v:
        unknown, auth = dropped("v3_unknown_engine"), dropped("v3_auth")
        await v.send("-v3", "-e", f"0x{UPS_ENGINE}", *USER, f"|{ON_BATTERY}|{MINUTES}|i|5")
        (obs,) = await v.wait_for(1)
        await v.send("-v3", "-e", "0x8000000009090909", *USER, f"|{ON_BATTERY}|{MINUTES}|i|6")
        wrong = [a if a != "trap-auth-1" else "not-the-key" for a in USER]
        await v.send("-v3", "-e", f"0x{UPS_ENGINE}", *wrong, f"|{ON_BATTERY}|{MINUTES}|i|7")
        await asyncio.sleep(0.3)
    assert obs.readings["runtime"] == 300 and len(v.seen) == 1
    assert dropped("v3_unknown_engine") == unknown + 1
    assert dropped("v3_auth") == auth + 1


async def test_a_v3_inform_is_answered(tmp_path: Path) -> None:
    """snmpinform discovers our engine ID and exits 0 only if we answered."""
    async with village(tmp_path) as v:
        code = await v.send("-v3", *USER, f"|{ON_BATTERY}|{MINUTES}|i|9|{TRAP_ADDRESS}|a|10.8.1.20",
                            command="snmpinform")
        (obs,) = await v.wait_for(1)
    assert code == 0 and obs.readings["runtime"] == 540


async def test_a_trap_never_clears_on_its_own(tmp_path: Path) -> None:
    """upsTrapAlarmEntryRemoved (on battery no more, says the UPS): no reading changes,
    the poll decides."""
    async with village(tmp_path) as v:
        await v.send("-v2c", "-c", "trap-community", f"|{ALARM_REMOVED}|{TRAP_ADDRESS}|a|10.8.1.20")
        await asyncio.sleep(0.3)
    assert v.seen == [] and v.polled == ["v01-ups"]
    # It still says the village's trap path works (an observation without readings).
    assert [(o.device, o.readings, o.unconfirmed) for o in v.heard] == [("v01-ups", {}, True)]


async def test_link_down_on_the_uplink_says_so_now_and_link_up_waits_for_the_poll(
        tmp_path: Path) -> None:
    """linkDown (IF-MIB: ifIndex, ifAdminStatus, ifOperStatus) from the router: on its
    uplink (ifIndex 2, params.uplink_ifindex) uplink_status down at once, unconfirmed;
    on another port only a poll; linkUp only a poll (the poll says it is up)."""
    link_down, link_up = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"
    async with village(tmp_path) as v:
        for oid, index, status in ((link_down, 5, 2), (link_down, 2, 2), (link_up, 2, 1)):
            await v.send("-v2c", "-c", "trap-community", f"|{oid}|1.3.6.1.2.1.2.2.1.1.{index}|i|"
                         f"{index}|1.3.6.1.2.1.2.2.1.7.{index}|i|1|"
                         f"1.3.6.1.2.1.2.2.1.8.{index}|i|{status}")
        await asyncio.sleep(0.3)
    (obs,) = v.seen
    assert obs.device == "v01-router" and obs.unconfirmed
    assert obs.readings == {"uplink_status": "down"}
    assert v.polled == ["v01-router"] * 3 and v.restarted == []


async def test_a_cold_start_drops_counter_baselines_and_polls(tmp_path: Path) -> None:
    """coldStart: the agent restarted; the poll is asked for with its counters' baselines
    dropped (no rate across the restart)."""
    async with village(tmp_path) as v:
        await v.send("-v2c", "-c", "trap-community", "|1.3.6.1.6.3.1.1.5.1")
        await asyncio.sleep(0.3)
    assert v.seen == [] and v.restarted == ["v01-router"]


async def test_identical_traps_within_5_s_are_one_and_unknown_oids_are_listed(
        tmp_path: Path) -> None:
    async with village(tmp_path) as v:
        for _ in range(2):
            await v.send(*on_battery_v2c())
        await v.send("-v2c", "-c", "trap-community",
                     f"|1.3.6.1.4.1.99999.0.7|{TRAP_ADDRESS}|a|10.8.1.20")
        await asyncio.sleep(0.3)
    assert len(v.seen) == 1
    assert [(device, oid) for _, device, oid in v.receiver.unknown] == [
        ("v01-ups", "1.3.6.1.4.1.99999.0.7")]


async def test_a_source_over_its_rate_is_dropped_but_never_on_battery(tmp_path: Path) -> None:
    """rate 0.2/s: a bucket of one. Of three alarm traps in a row the second and third
    are dropped (one poll asked for); two on-battery traps after them still arrive."""
    async with village(tmp_path, rate=0.2) as v:
        before = dropped("rate_limited")
        for n in (1, 2, 3):
            await v.send("-v2c", "-c", "trap-community",
                         f"|1.3.6.1.2.1.33.2.3|{TRAP_ADDRESS}|a|10.8.1.20|{MINUTES}|i|{n}")
        for minutes in (4, 5):
            await v.send(*on_battery_v2c(minutes=minutes))
        await v.wait_for(2)
    assert dropped("rate_limited") == before + 2
    assert [o.readings["runtime"] for o in v.seen] == [240, 300]


async def test_the_engine_id_survives_a_restart_and_boots_rise(tmp_path: Path) -> None:
    ids, boots = [], []
    for _ in range(2):
        async with village(tmp_path) as v:
            ids.append(v.receiver.engine_id)
            boots.append(json.loads((v.state / "traps-engine.json").read_text())["boots"])
    assert ids[0] == ids[1] and len(ids[0]) == 13
    assert boots == [1, 2]


async def test_on_battery_is_a_power_outage_in_the_core_before_any_poll(tmp_path: Path) -> None:
    """The trap's observation alone, before any poll: site v01 has a power outage now."""
    async with village(tmp_path) as v:
        await v.send(*on_battery_v2c())
        (obs,) = await v.wait_for(1)
    fleet = Fleet(load_config(tmp_path / "commsmon.yaml").inventory(), obs.at - 1)
    fleet.observe(obs)
    site = fleet.evaluate(obs.at + 1).sites["v01"]
    assert "power" in site.outages


def v2c_trap(oid: str, *varbinds: tuple[str, object]) -> bytes:
    return encode_v2c_trap("trap-community", oid, *varbinds)


async def test_a_storm_from_one_source_costs_a_counter_and_others_still_arrive(
        tmp_path: Path, snmpd: Snmpd) -> None:
    """50 000 alarm traps from 127.0.0.1 (the router's NAT) at about 25 000/s: its bucket
    (50/s, 250 deep) lets a few hundred through and counts the rest as rate_limited,
    before decoding; five on-battery traps from 127.0.0.2 sent during the storm all
    arrive (each source has its own bucket); a poller in the same event loop polling a
    real snmpd every 0.1 s keeps its schedule through it (at least 80 % of its slots
    answered)."""
    storm = v2c_trap("1.3.6.1.2.1.33.2.3", (TRAP_ADDRESS, rfc1902.IpAddress("10.8.1.20")))
    answered: list[Observation] = []
    reading = ReadingSpec(oid=SYS_UPTIME)
    job = PollJob("v01-ups", SnmpTarget("127.0.0.1", port=snmpd.port, community=snmpd.community),
                  0.1, {"uptime": (SYS_UPTIME, reading)})
    async with village(tmp_path) as v, GufoClient() as client:
        poller = SnmpPoller(client, [job], lambda o: answered.append(o) if o.reachable else None)
        before = dropped("rate_limited")
        polling = asyncio.create_task(poller.run())
        started = time.monotonic()

        def flood() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", 0))
                for i in range(50_000):
                    sock.sendto(storm, ("127.0.0.1", v.port))
                    if i % 250 == 0:
                        time.sleep(0.01)  # paced so the socket buffer, not the kernel, decides

        flooding = asyncio.get_running_loop().run_in_executor(None, flood)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
            other.bind(("127.0.0.2", 0))
            for minutes in range(1, 6):
                await asyncio.sleep(0.1)
                other.sendto(v2c_trap(ON_BATTERY, (MINUTES, rfc1902.Integer32(minutes)),
                                      (TRAP_ADDRESS, rfc1902.IpAddress("10.8.1.20"))),
                             ("127.0.0.1", v.port))
        await flooding
        slots = (time.monotonic() - started) / 0.1
        polls = len(answered)
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        await v.wait_for(5)
        await asyncio.sleep(0.5)
    assert polls >= 0.8 * slots - 1, (polls, slots)
    assert sorted(o.readings["runtime"] for o in v.seen) == [60, 120, 180, 240, 300]
    assert dropped("rate_limited") - before > 49_000


async def test_on_battery_repeats_that_stop_ask_for_a_poll(tmp_path: Path) -> None:
    """upsTrapOnBattery repeats every 60 s (profile `repeats: 60`). Silent for 120 s
    without the alarm-removed trap: a poll, not a conclusion. With the alarm-removed
    trap in between: nothing more is owed."""
    async with village(tmp_path) as v:
        await v.send(*on_battery_v2c())
        await v.wait_for(1)
        sent = time.monotonic()
        assert v.receiver.overdue(sent + 119) == []
        v.polled.clear()
        assert v.receiver.overdue(sent + 121) == ["v01-ups"] and v.polled == ["v01-ups"]
        await v.send(*on_battery_v2c(minutes=11))
        await v.wait_for(2)
        await v.send("-v2c", "-c", "trap-community", f"|{ALARM_REMOVED}|{TRAP_ADDRESS}|a|10.8.1.20")
        await asyncio.sleep(0.3)
        assert v.receiver.overdue(time.monotonic() + 200) == []


async def test_unknown_trap_oids_are_listed_in_the_api(tmp_path: Path) -> None:
    """GET /api/v1/traps/unknown: newest first, with the device and the OID, so the
    engineer knows what to add to the profile."""
    async with village(tmp_path) as v:
        for oid in ("1.3.6.1.4.1.99999.0.7", "1.3.6.1.4.1.99999.0.8"):
            await v.send("-v2c", "-c", "trap-community", f"|{oid}|{TRAP_ADDRESS}|a|10.8.1.20")
        await asyncio.sleep(0.3)
        app = web.Application()
        add_api_routes(app, lambda: None, None, None,  # type: ignore[arg-type]
                       time.time, ZoneInfo("Asia/Shanghai"),
                       unknown_traps=lambda: v.receiver.unknown)
        async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as s, \
                s.get(server.make_url("/api/v1/traps/unknown")) as response:
            body = await response.json()
    assert [(t["device"], t["trap_oid"]) for t in body["traps"]] == [
        ("v01-ups", "1.3.6.1.4.1.99999.0.8"), ("v01-ups", "1.3.6.1.4.1.99999.0.7")]
    assert body["traps"][0]["at"].endswith("+08:00")


async def test_an_address_that_cannot_be_bound_is_reported_and_retried(tmp_path: Path) -> None:
    """Another program holds the port: the receiver says so (commsmon_traps_listening 0,
    an error naming the address) and keeps trying, without stopping anything else."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        path = tmp_path / "commsmon.yaml"
        path.write_text(config_text(port), encoding="utf-8")
        receiver = TrapReceiver(Setup.of(load_config(path)), lambda _: None, lambda _: None,
                                tmp_path / "state")
        task = asyncio.create_task(receiver.run())
        await asyncio.sleep(0.5)
        assert not task.done()
        assert REGISTRY.get_sample_value("commsmon_traps_listening") == 0
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_a_daemon_without_a_trap_listener_loads_no_pysnmp() -> None:
    """pysnmp is about 16 MiB of RSS: the daemon imports it (through
    commsmon.sources.traps.engine) only once a listen address is set."""
    code = ("import sys, commsmon.daemon; "
            "print(sorted(m for m in sys.modules if m.startswith(('pysnmp', 'pysmi', 'pyasn1'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


async def test_a_listener_added_by_a_reload_takes_traps(tmp_path: Path) -> None:
    """Started without ``listen``: not listening, nothing bound. The reload adds the
    address: the receiver starts over, listens, and the on-battery trap arrives."""
    port = free_udp_port()
    path = tmp_path / "commsmon.yaml"
    text = config_text(port)
    path.write_text(text.replace(f'listen: ["127.0.0.1:{port}"]', "listen: []"), encoding="utf-8")
    v = Village(port, tmp_path / "state")
    listening = asyncio.Event()
    v.receiver = TrapReceiver(Setup.of(load_config(path)), v.sink, v.poll_now, v.state,
                              listening=lambda up: listening.set() if up else None)
    task = asyncio.create_task(v.receiver.run())
    try:
        await asyncio.sleep(0.2)
        assert v.receiver.listening == [] and not listening.is_set()
        path.write_text(text, encoding="utf-8")
        assert await v.receiver.reconfigure(Setup.of(load_config(path)))
        async with asyncio.timeout(10.0):
            await listening.wait()
        assert REGISTRY.get_sample_value("commsmon_traps_listening") == 1
        assert v.receiver.listening == [("127.0.0.1", port)]
        assert await v.send(*on_battery_v2c()) == 0
        (obs,) = await v.wait_for(1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert (obs.device, obs.readings) == ("v01-ups", {"output_source": "battery", "runtime": 720})


async def test_the_rate_is_per_source_across_our_listen_addresses(tmp_path: Path) -> None:
    """Two listen addresses, rate 0.2/s (a bucket of one token). The UPS sends an alarm
    trap to each, 127.0.0.1 both times: one source, one bucket; the second is dropped
    as rate_limited, whichever address it came to."""
    port, other = free_udp_port(), free_udp_port()
    path = tmp_path / "commsmon.yaml"
    path.write_text(config_text(port, rate=0.2).replace(
        f'listen: ["127.0.0.1:{port}"]', f'listen: ["127.0.0.1:{port}", "127.0.0.1:{other}"]'),
        encoding="utf-8")
    v = Village(port, tmp_path / "state")
    v.receiver = TrapReceiver(Setup.of(load_config(path)), v.sink, v.poll_now, v.state)
    task = asyncio.create_task(v.receiver.run())
    try:
        await asyncio.sleep(0.2)
        before = dropped("rate_limited")
        alarm = ("-v2c", "-c", "trap-community",
                 f"|1.3.6.1.2.1.33.2.3|{TRAP_ADDRESS}|a|10.8.1.20|{MINUTES}|i|1")
        assert await v.send(*alarm) == 0
        v.port = other
        assert await v.send(*alarm) == 0
        async with asyncio.timeout(10.0):  # the first applied, the second counted
            while not v.heard or dropped("rate_limited") < before + 1:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [o.device for o in v.heard] == ["v01-ups"]
    assert v.polled == ["v01-ups"]
    assert dropped("rate_limited") == before + 1
