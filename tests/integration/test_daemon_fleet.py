"""The daemon on real peers: snmpsim recordings, a real snmpd and a real Mosquitto."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from commsmon.config.load import load_config
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from tests.fleetharness import DaemonProcess, value, write_config
from tests.promtool import promtool_problems
from tests.snmpd import Snmpd

pytestmark = pytest.mark.integration

INTERVAL = 2.0  # seconds between polls in these tests
TIMEOUT = 0.5  # seconds per SNMP attempt, no retries


@pytest.fixture
def snmpd() -> object:
    with Snmpd() as agent:
        yield agent


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


@pytest.fixture
async def running(tmp_path: Path, broker: Mosquitto, snmpd: Snmpd) -> AsyncIterator[
    tuple[DaemonProcess, SimFleet]
]:
    """Sim fleet + daemon; the centre also has a router served by a real snmpd, over
    SNMPv3 authPriv (SHA-256, AES-128) with its passwords in files."""
    (tmp_path / "auth").write_text(snmpd.v3_auth + "\n")
    (tmp_path / "priv").write_text(snmpd.v3_priv + "\n")
    real_router = {
        "id": "centre-router",
        "kind": "router",
        "profile": "router-mib2",
        "params": {"uplink_ifindex": 1},
        "snmp": {"host": "127.0.0.1", "port": snmpd.port, "version": "v3",
                 "user": {"name": snmpd.v3_user, "auth_protocol": "sha256",
                          "auth_password": f"${{file:{tmp_path / 'auth'}}}",
                          "priv_protocol": "aes",
                          "priv_password": f"${{file:{tmp_path / 'priv'}}}"}},
    }
    path, http_port = write_config(
        tmp_path, mqtt_port=broker.port, interval=INTERVAL, timeout=TIMEOUT,
        extra_devices=[real_router],
    )
    config = load_config(path)
    async with SimFleet(config, telemetry_period=1.0, skip={"centre-router"}) as fleet:
        daemon = DaemonProcess(path, http_port, tmp_path / "daemon.log")
        try:
            await daemon.wait_for(
                "every device up",
                lambda s: all(
                    value(s, "commsmon_device_up", device=d.id) == 1
                    for d in config.inventory().devices.values()
                    if d.source != "checkin"  # handhelds: only through check-ins
                ),
                within=30,
            )
            yield daemon, fleet
        finally:
            assert daemon.stop() == 0, daemon.log()[-2000:]


async def test_metrics_show_decoded_readings(running: tuple[DaemonProcess, SimFleet]) -> None:
    """/metrics carries the real recordings decoded to SI values and passes promtool."""
    daemon, fleet = running
    s = await daemon.samples()
    huawei = next(d for d, r in fleet.recording.items() if r == "UPS/huawei-gse200m")
    assert value(s, "commsmon_reading_state", device=huawei, reading="output_source",
                 state="normal") == 1
    assert value(s, "commsmon_reading_state", device=huawei, reading="output_source",
                 state="battery") is None  # only the current value is exposed
    assert value(s, "commsmon_battery_charge_ratio", device=huawei) is None  # -1: not known
    assert value(s, "commsmon_battery_volts", device=huawei) == pytest.approx(538.5)
    phoenix = next(d for d, r in fleet.recording.items() if r == "UPS/phoenixtec-power")
    assert value(s, "commsmon_battery_charge_ratio", device=phoenix) == 1.0
    assert value(s, "commsmon_cpu_usage_ratio", device="v01-cam1") == pytest.approx(0.52)
    assert value(s, "commsmon_supply_volts", device="centre-rpt1") == pytest.approx(13.6, 0.01)
    assert value(s, "commsmon_signal_strength_dbm", device="centre-rpt1") == -87
    assert value(s, "commsmon_reading_state", device="centre-router", reading="uplink_status",
                 state="up") == 1
    assert (value(s, "commsmon_uptime_seconds", device="centre-router") or 0) > 0
    # The live router recording's ifHCInOctets grows 12 500 octets per second of sysUpTime.
    router = next(d for d, r in fleet.recording.items() if r == "router-live")
    rate = "commsmon_uplink_receive_bytes_per_second"
    await daemon.wait_for("an uplink rate",
                          lambda s: value(s, rate, device=router) is not None, within=30)
    assert value(await daemon.samples(), rate, device=router) == pytest.approx(12500, rel=0.02)
    assert value(s, "commsmon_generator_fuel_ratio", device="v01-genset") == pytest.approx(0.82)
    assert value(s, "commsmon_battery_volts", device="v01-genset") == pytest.approx(12.9)
    assert value(s, "commsmon_site_reachable", site="v07") == 1
    assert value(s, "commsmon_site_channel_up", site="v07", channel="pdt370") == 1
    assert (value(s, "commsmon_snmp_requests_total", result="ok") or 0) > 0
    assert (value(s, "commsmon_mqtt_messages_total", result="ok") or 0) > 0
    assert await promtool_problems(await daemon.text()) == []
    text = await daemon.text()
    for secret in (Snmpd.v3_auth, Snmpd.v3_priv):
        assert secret not in daemon.log() and secret not in text


async def test_village_down_isolates_and_recovers(
    running: tuple[DaemonProcess, SimFleet],
) -> None:
    """All of a village's devices stop: reachable 0 within 3 poll intervals, then back to 1."""
    daemon, fleet = running
    site = "v05"
    fleet.take_down(fleet.site_devices(site))
    # Three failed polls at most 3 intervals apart, one timeout, one evaluation (1 s).
    bound = 3 * INTERVAL + TIMEOUT + 1.0
    took = await daemon.wait_for(
        "v05 isolated", lambda s: value(s, "commsmon_site_reachable", site=site) == 0,
        within=bound + 5,
    )
    print(f"isolation seen after {took:.1f} s (bound {bound:.1f} s)")
    s = await daemon.samples()
    assert value(s, "commsmon_site_reachable", site="v06") == 1
    assert value(s, "commsmon_device_state", device="v05-cam1", state="unknown") == 1
    fleet.bring_up(fleet.site_devices(site))
    await daemon.wait_for(
        "v05 reachable and its router answering",
        lambda s: value(s, "commsmon_site_reachable", site=site) == 1
        and value(s, "commsmon_device_up", device="v05-router") == 1,
        within=bound + 5,
    )
    # Every line about a device names its village; each device's failure is logged once.
    lines = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
    about = [line for line in lines if "device" in line]
    assert any(line["device"] == "v05-router" for line in about)
    assert all("site" in line for line in about), [x for x in about if "site" not in x][:3]
    failures = [line for line in about if line["device"] == "v05-router"
                and line["event"] in ("snmp poll failed", "snmp device answers again")]
    assert len(failures) == 2, failures  # unreachable once, answers again once


@pytest.mark.fault
async def test_broker_restart_reconnects(
    running: tuple[DaemonProcess, SimFleet], broker: Mosquitto
) -> None:
    """Broker killed mid-run: MQTT devices go unknown (not down); on return all come back."""
    daemon, _ = running
    await broker.kill()
    await daemon.wait_for(
        "mqtt devices unknown",
        lambda s: value(s, "commsmon_mqtt_connected") == 0
        and value(s, "commsmon_device_state", device="v01-genset", state="unknown") == 1,
        within=30,
    )
    s = await daemon.samples()
    assert value(s, "commsmon_device_state", device="v01-genset", state="down") == 0
    assert value(s, "commsmon_device_up", device="v01-router") == 1  # SNMP unaffected
    await broker.start()
    await daemon.wait_for(
        "mqtt devices up again",
        lambda s: value(s, "commsmon_mqtt_connected") == 1
        and value(s, "commsmon_device_up", device="v01-genset") == 1
        and value(s, "commsmon_device_up", device="v14-pdt") == 1,
        within=40,
    )
    assert "mqtt subscribed" in daemon.log()
