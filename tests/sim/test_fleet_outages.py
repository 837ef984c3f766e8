"""SimFleet outages (三断): mains cut (UPS on battery, genset burning fuel), network cut, drill."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from commsmon.config.load import load_config
from commsmon.config.settings import Config
from commsmon.core.model import GeneratorCurve
from commsmon.errors import SnmpTimeout
from commsmon.sim.broker import Mosquitto
from commsmon.sim.demo import drill_sites, run_drill
from commsmon.sim.fleet import (
    RPT_SUPPLY_POWER_TYPE,
    UPS_ESTIMATED_MINUTES_REMAINING,
    UPS_INPUT_LINE_BADS,
    UPS_OUTPUT_SOURCE,
    UPS_SECONDS_ON_BATTERY,
    SimFleet,
)
from commsmon.sim.mqttdevices import GensetModel
from commsmon.sources.snmp.base import SnmpTarget
from commsmon.sources.snmp.pysnmp_backend import PysnmpClient
from tests.fleetharness import write_config

pytestmark = pytest.mark.integration
in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the loop of the sim fixture

SPEED = 3600.0  # an hour of outage per second
PERIOD = 0.2  # seconds between telemetry messages
WAIT = 10.0  # seconds: bound on every wait for a state to show


class Sim:
    """The running fleet with an SNMP client and MQTT helpers."""

    def __init__(self, config: Config, fleet: SimFleet, snmp: PysnmpClient) -> None:
        self.config = config
        self.fleet = fleet
        self.snmp = snmp

    def target(self, device: str) -> SnmpTarget:
        """Where to ask ``device``: through its cuttable link, community = device id."""
        return SnmpTarget(
            "127.0.0.1", self.fleet.links[device].port, community=device, timeout=0.5, retries=0
        )

    async def get(self, device: str, oid: str) -> int | None:
        """An integer value of ``device``, or None for noSuchObject/noSuchInstance."""
        got = (await self.snmp.get(self.target(device), [oid]))[oid]
        return got.value if isinstance(got.value, int) else None

    def topics(self, device: str) -> tuple[str | None, str | None]:
        site, spec = next((s, d) for s, d in self.config.devices() if d.id == device)
        return self.config.topics(site, spec)

    def client(self) -> aiomqtt.Client:
        assert self.config.mqtt is not None
        return aiomqtt.Client(self.config.mqtt.host, self.config.mqtt.port)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sim]:
    async with Mosquitto() as broker:
        path, _ = write_config(tmp_path_factory.mktemp("outages"), mqtt_port=broker.port)
        config = load_config(path)
        async with SimFleet(config, telemetry_period=PERIOD, speed=SPEED) as fleet:
            snmp = PysnmpClient()
            try:
                yield Sim(config, fleet, snmp)
            finally:
                await snmp.close()


def _site_with(config: Config, profile: str) -> str:
    return next(
        s.id
        for s in config.sites
        if s.role == "village" and any(d.profile == profile for d in s.devices)
    )


def _device(config: Config, site: str, profile: str) -> str:
    return next(d.id for s, d in config.devices() if s.id == site and d.profile == profile)


async def _next_json(messages: AsyncIterator[aiomqtt.Message]) -> dict[str, Any]:
    message = await asyncio.wait_for(anext(messages), WAIT)
    assert isinstance(message.payload, bytes)
    document: dict[str, Any] = json.loads(message.payload)
    return document


async def _until_json(messages: AsyncIterator[aiomqtt.Message], **want: Any) -> dict[str, Any]:
    """The first telemetry document whose fields include ``want`` (within WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        document = await _next_json(messages)
        if all(document.get(k) == v for k, v in want.items()):
            return document
    raise AssertionError(f"no telemetry with {want} within {WAIT} s")


async def _until_payload(messages: AsyncIterator[aiomqtt.Message], payload: bytes) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        message = await asyncio.wait_for(anext(messages), WAIT)
        if message.payload == payload:
            return
    raise AssertionError(f"no {payload!r} within {WAIT} s")


async def _until_value(sim: Sim, device: str, oid: str, check: Any) -> int | None:
    """Poll ``oid`` of ``device`` until ``check(value)`` holds (within WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    value = None
    while time.monotonic() < deadline:
        value = await sim.get(device, oid)
        if check(value):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{device} {oid} still {value} after {WAIT} s")


# --- the genset model, without services ----------------------------------------------

CURVE = GeneratorCurve(((0.5, 1.5), (1.0, 2.5)), tank_litres=200.0)


def test_genset_model_idles_on_mains() -> None:
    """On mains the set stands by at its initial fuel and burns nothing."""
    model = GensetModel(CURVE, speed=SPEED)
    first, later = model(1000.0), model(1100.0)
    assert first["fuel_pct"] == 82 and first["fuel_l"] == 164.0
    assert later == {**first, "ts": 1100.0}
    assert (later["running"], later["mains"], later["load_pct"]) == (False, True, 0)
    assert later["battery_v"] == "12.9 V" and later["alarms"] == 0


def test_genset_model_burns_at_the_interpolated_rate() -> None:
    """Without mains it runs and burns the curve's rate at its load, times speed."""
    model = GensetModel(CURVE, load=0.75, speed=3600.0)
    model(0.0)
    model.set_mains(False, 10.0)
    document = model(12.0)  # 2 s = 2 simulated hours at 2.0 L/h (0.75 between 0.5 and 1.0)
    assert (document["running"], document["mains"], document["load_pct"]) == (True, False, 75)
    assert document["fuel_l"] == pytest.approx(160.0)
    model.set_mains(True, 13.0)  # one more simulated hour, then it stops
    assert model(20.0)["fuel_l"] == pytest.approx(158.0)


def test_genset_model_runs_dry_and_stops() -> None:
    """Fuel never goes below 0; an empty set stops and raises an alarm."""
    model = GensetModel(CURVE, fuel_ratio=0.01, speed=3600.0)
    model.set_mains(False, 0.0)
    document = model(100.0)
    assert (document["fuel_l"], document["fuel_pct"], document["running"]) == (0.0, 0.0, False)
    assert document["alarms"] == 1 and document["load_pct"] == 0


def test_genset_model_default_tank() -> None:
    """Without a tank size the model assumes 50 L (82 % = 41 L)."""
    assert GensetModel(GeneratorCurve(((0.5, 1.5),)))(0.0)["fuel_l"] == 41.0


# --- mains ---------------------------------------------------------------------------


@in_module_loop
async def test_mains_cut_starts_the_genset_and_burns_fuel(sim: Sim) -> None:
    """Genset telemetry: standing by, then running with falling fuel, then standing by again."""
    site = _site_with(sim.config, "ups-rfc1628")
    genset = _device(sim.config, site, "genset-gateway")
    _, topic = sim.topics(genset)
    assert topic is not None
    async with sim.client() as client:
        await client.subscribe(topic, qos=1)
        messages = aiter(client.messages)
        await _until_json(messages, running=False, mains=True, load_pct=0)
        await sim.fleet.cut_mains(site)
        try:
            running = await _until_json(messages, running=True)
            assert running["mains"] is False and running["load_pct"] == 40
            fuel = [running["fuel_l"]]
            for _ in range(3):
                document = await _next_json(messages)
                assert document["running"] is True
                fuel.append(document["fuel_l"])
            assert all(a > b for a, b in itertools.pairwise(fuel)), fuel
        finally:
            await sim.fleet.restore_mains(site)
        stopped = await _until_json(messages, running=False)
        assert stopped["mains"] is True and stopped["load_pct"] == 0
        assert stopped["fuel_l"] <= fuel[-1]


@in_module_loop
async def test_mains_cut_puts_the_ups_on_battery(sim: Sim) -> None:
    """UPS-MIB: output source battery, seconds on battery counting, a line bad more; then back."""
    site = _site_with(sim.config, "ups-rfc1628")
    ups = _device(sim.config, site, "ups-rfc1628")
    assert await sim.get(ups, UPS_OUTPUT_SOURCE) == 3
    bads = await sim.get(ups, UPS_INPUT_LINE_BADS) or 0
    await sim.fleet.cut_mains(site)
    try:
        assert sim.fleet.mains_cut == {site}
        assert await sim.get(ups, UPS_OUTPUT_SOURCE) == 5
        assert await sim.get(ups, UPS_INPUT_LINE_BADS) == bads + 1
        minutes = await sim.get(ups, UPS_ESTIMATED_MINUTES_REMAINING)
        assert minutes is not None and 0 <= minutes <= 30
        await _until_value(sim, ups, UPS_SECONDS_ON_BATTERY, lambda v: v and v > 0)
        await sim.fleet.cut_mains(site)  # already cut: no second line bad
        assert await sim.get(ups, UPS_INPUT_LINE_BADS) == bads + 1
    finally:
        await sim.fleet.restore_mains(site)
    assert sim.fleet.mains_cut == set()
    assert await sim.get(ups, UPS_OUTPUT_SOURCE) == 3
    assert await sim.get(ups, UPS_SECONDS_ON_BATTERY) == 0
    assert await sim.get(ups, UPS_INPUT_LINE_BADS) == bads + 1


@in_module_loop
async def test_mains_cut_at_the_centre_puts_the_repeater_on_battery(sim: Sim) -> None:
    """The Hytera repeater reports battery supply; a UPS recording without the counter gains it."""
    rpt = _device(sim.config, "centre", "hytera-repeater")
    ups = _device(sim.config, "centre", "ups-rfc1628")
    recorded_minutes = await sim.get(ups, UPS_ESTIMATED_MINUTES_REMAINING)
    assert await sim.get(ups, UPS_INPUT_LINE_BADS) is None  # huawei-gse200m lacks it
    assert await sim.get(rpt, RPT_SUPPLY_POWER_TYPE) == 0
    await sim.fleet.cut_mains("centre")
    try:
        assert await sim.get(rpt, RPT_SUPPLY_POWER_TYPE) == 1
        assert await sim.get(ups, UPS_OUTPUT_SOURCE) == 5
        assert await sim.get(ups, UPS_INPUT_LINE_BADS) == 1
        assert sim.fleet.gensets["centre-genset"].running
    finally:
        await sim.fleet.restore_mains("centre")
    assert await sim.get(rpt, RPT_SUPPLY_POWER_TYPE) == 0
    assert await sim.get(ups, UPS_ESTIMATED_MINUTES_REMAINING) == recorded_minutes
    assert not sim.fleet.gensets["centre-genset"].running


@in_module_loop
async def test_unknown_site_is_refused(sim: Sim) -> None:
    """Outages on a site the configuration does not have raise KeyError."""
    with pytest.raises(KeyError):
        await sim.fleet.cut_mains("v99")
    with pytest.raises(KeyError):
        sim.fleet.cut_network("v99")


# --- network -------------------------------------------------------------------------


@in_module_loop
async def test_network_cut_silences_public_devices_and_what_is_behind_them(sim: Sim) -> None:
    """Router and its camera time out, the 4G camera goes offline; the satphone keeps on."""
    site = _site_with(sim.config, "camera-4g-presence")
    router = _device(sim.config, site, "router-mib2")
    camera = _device(sim.config, site, "hikvision-camera")
    cam4g = _device(sim.config, site, "camera-4g-presence")
    satphone = _device(sim.config, site, "satphone-dock")
    status, _ = sim.topics(cam4g)
    _, satphone_topic = sim.topics(satphone)
    assert status is not None and satphone_topic is not None
    assert await sim.get(router, "1.3.6.1.2.1.2.2.1.8.2") == 1  # ifOperStatus.2 up
    async with sim.client() as client:
        await client.subscribe(status, qos=1)
        await client.subscribe(satphone_topic, qos=1)
        messages = aiter(client.messages)
        cut = sim.fleet.cut_network(site)
        try:
            assert set(cut) == {router, camera, cam4g}
            assert sim.fleet.network_cut == {site}
            await _until_payload(messages, b"offline")
            with pytest.raises(SnmpTimeout):
                await sim.get(router, "1.3.6.1.2.1.1.3.0")
            with pytest.raises(SnmpTimeout):
                await sim.get(camera, "1.3.6.1.2.1.1.3.0")
            seen = 0
            while seen < 3:  # the satphone still reports after the cut
                message = await asyncio.wait_for(anext(messages), WAIT)
                if message.topic.matches(satphone_topic):
                    assert json.loads(message.payload)["registered"] is True
                    seen += 1
        finally:
            sim.fleet.restore_network(site)
        await _until_payload(messages, b"online")
    assert sim.fleet.network_cut == set()
    assert await sim.get(router, "1.3.6.1.2.1.2.2.1.8.2") == 1


@in_module_loop
async def test_network_cut_reaches_through_parent_chains(sim: Sim) -> None:
    """At a UPS village the UPS behind the router goes silent too; the genset does not."""
    site = _site_with(sim.config, "ups-rfc1628")
    ups = _device(sim.config, site, "ups-rfc1628")
    cut = sim.fleet.cut_network(site)
    try:
        assert ups in cut
        assert _device(sim.config, site, "genset-gateway") not in cut
        with pytest.raises(SnmpTimeout):
            await sim.get(ups, UPS_OUTPUT_SOURCE)
    finally:
        sim.fleet.restore_network(site)
    assert await sim.get(ups, UPS_OUTPUT_SOURCE) == 3


# --- the demo's drill ----------------------------------------------------------------


def test_drill_sites_are_two_villages_and_the_centre_from_the_config(sim: Sim) -> None:
    """The first village with a UPS, the first other one with a 4G camera, and the site
    holding the repeater the villages depend on."""
    assert drill_sites(sim.config) == (
        _site_with(sim.config, "ups-rfc1628"),
        _site_with(sim.config, "camera-4g-presence"),
        "centre",
    )


@in_module_loop
async def test_drill_cycle_logs_and_announces_each_step(
    sim: Sim, capsys: pytest.CaptureFixture[str]
) -> None:
    """One drill cycle: cut mains, cut network, restore both, cut the centre's mains and
    restore it, topping its generator back up; logged, printed, nothing left cut."""
    mains, network, centre = drill_sites(sim.config)
    genset = next(g for g in sim.fleet.gensets if g.startswith("centre"))
    tank = sim.fleet.gensets[genset].fuel_litres
    with capture_logs() as logs:
        await run_drill(sim.fleet, step=0.1, cycles=1)
    steps = [(e["step"], e["site"]) for e in logs if e["event"] == "drill"]
    assert steps == [
        ("cut_mains", mains),
        ("cut_network", network),
        ("restore_mains", mains),
        ("restore_network", network),
        ("cut_mains", centre),
        ("restore_mains", centre),
    ]
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 6 and all(line.startswith("演练 drill: ") for line in printed)
    assert f"mains cut at {mains}" in printed[0] and "市电" in printed[0]
    assert sim.fleet.mains_cut == set() and sim.fleet.network_cut == set()
    assert sim.fleet.gensets[genset].fuel_litres == pytest.approx(tank)


@in_module_loop
async def test_cancelled_drill_restores_what_it_cut(sim: Sim) -> None:
    """Cancelling the drill mid-cycle leaves no outage behind."""
    mains = drill_sites(sim.config).mains
    assert mains is not None
    task = asyncio.create_task(run_drill(sim.fleet, step=0.05))
    deadline = time.monotonic() + WAIT
    while mains not in sim.fleet.mains_cut:
        assert time.monotonic() < deadline, "the drill never cut the mains"
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sim.fleet.mains_cut == set() and sim.fleet.network_cut == set()
