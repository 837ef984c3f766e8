"""Lifecycle of the daemon as systemd drives it: SIGHUP reloads, SIGTERM stops in time."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from commsmon.config.load import load_config
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from tests.fleetharness import DaemonProcess, Samples, value, write_config
from tests.receiverharness import RecordingReceiver, critical_to
from tests.snmpd import Snmpd

pytestmark = pytest.mark.integration

INTERVAL = 2.0
STOP_BOUND = 10.0  # seconds from SIGTERM to exit; the unit allows TimeoutStopSec=20


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


def _edit(path: Path, change: Any) -> None:
    yaml = YAML()
    data = yaml.load(path.read_text(encoding="utf-8"))
    change(data)
    with path.open("w", encoding="utf-8") as f:
        yaml.dump(data, f)


def _watched(path: Path) -> set[str]:
    return {d.id for d in load_config(path).inventory().devices.values() if d.source != "checkin"}


def _all_up(devices: set[str]) -> Any:
    return lambda s: all(value(s, "commsmon_device_up", device=d) == 1 for d in devices)


async def test_sighup_adds_and_removes_devices_keeping_the_others(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """A device added over SIGHUP is polled, a removed one leaves /metrics, and a device
    that stays keeps its state, its since-time and its seconds-in-state counters."""
    path, port = write_config(tmp_path, mqtt_port=broker.port, interval=INTERVAL)
    config = load_config(path)
    with Snmpd() as agent:
        async with SimFleet(config, telemetry_period=1.0):
            daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
            try:
                await daemon.wait_for("every device up", _all_up(_watched(path)), within=40)
                before = await daemon.samples()
                since = value(before, "commsmon_device_state_since_timestamp_seconds",
                              device="v01-router")
                up_seconds = value(before, "commsmon_device_state_seconds_total",
                                   device="v01-router", state="up")
                assert since is not None and up_seconds is not None

                def change(data: Any) -> None:
                    centre = data["sites"][0]["devices"]
                    centre.append({"id": "centre-router2", "kind": "router",
                                   "profile": "router-mib2", "params": {"uplink_ifindex": 1},
                                   "snmp": {"host": "127.0.0.1", "port": agent.port,
                                            "community": agent.community}})
                    v02 = next(s for s in data["sites"] if s["id"] == "v02")
                    v02["devices"] = [d for d in v02["devices"] if d["id"] != "v02-cam1"]

                _edit(path, change)
                daemon.proc.send_signal(signal.SIGHUP)

                def reloaded(s: Samples) -> bool:
                    return (value(s, "commsmon_device_up", device="centre-router2") == 1
                            and value(s, "commsmon_device_info", device="v02-cam1") is None)

                await daemon.wait_for("new device up, removed one gone", reloaded, within=30)
                after = await daemon.samples()
                assert value(after, "commsmon_config_last_reload_success") == 1
                assert value(after, "commsmon_device_state_since_timestamp_seconds",
                             device="v01-router") == since
                assert (value(after, "commsmon_device_state_seconds_total",
                              device="v01-router", state="up") or 0) > up_seconds
                assert value(after, "commsmon_device_up", device="v01-router") == 1
                assert "configuration reloaded" in daemon.log()
            finally:
                assert daemon.stop() == 0, daemon.log()[-2000:]


async def test_sighup_with_a_bad_file_keeps_the_running_configuration(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """A broken file is rejected with its located problem; the old configuration runs on,
    and a fixed file is taken on the next SIGHUP."""
    path, port = write_config(tmp_path, mqtt_port=broker.port, interval=INTERVAL)
    config = load_config(path)
    good = path.read_text(encoding="utf-8")
    watched = _watched(path)
    async with SimFleet(config, telemetry_period=1.0) as fleet:
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            await daemon.wait_for("every device up", _all_up(watched), within=40)
            assert value(await daemon.samples(), "commsmon_config_last_reload_success") == 1
            _edit(path, lambda data: data["sites"][1]["devices"][0]["snmp"].update(port=99999))
            daemon.proc.send_signal(signal.SIGHUP)
            await daemon.wait_for(
                "reload rejected",
                lambda s: value(s, "commsmon_config_last_reload_success") == 0, within=30)
            assert "configuration rejected; the running one stays" in daemon.log()
            assert "sites[1].devices[0].snmp.port: must be 1..65535" in daemon.log()
            # Still polling, with the old configuration: nothing went unknown or down.
            fleet.take_down(fleet.site_devices("v05"))
            await daemon.wait_for("v05 isolated still seen",
                                  lambda s: value(s, "commsmon_site_reachable", site="v05") == 0,
                                  within=20)
            fleet.bring_up(fleet.site_devices("v05"))
            path.write_text(good, encoding="utf-8")
            daemon.proc.send_signal(signal.SIGHUP)
            await daemon.wait_for(
                "fixed file taken",
                lambda s: value(s, "commsmon_config_last_reload_success") == 1
                and _all_up(watched)(s), within=30)
        finally:
            assert daemon.stop() == 0, daemon.log()[-2000:]


async def test_sigterm_stops_in_time_with_the_outbox_kept(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """SIGTERM while a notification waits for a receiver that is down: the daemon exits 0
    within the bound, and the notification is still pending in the outbox on disk."""
    hook = RecordingReceiver()
    await hook.start()
    hook.status = 503
    alerting = critical_to(hook)
    try:
        path, port = write_config(tmp_path, mqtt_port=broker.port, interval=INTERVAL,
                                  alerting=alerting)
        async with SimFleet(load_config(path), telemetry_period=1.0) as fleet:
            daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
            try:
                await daemon.wait_for("every device up", _all_up(_watched(path)), within=40)
                fleet.take_down(fleet.site_devices("v05"))
                while not hook.requests:  # noqa: ASYNC110 - the receiver records attempts
                    await asyncio.sleep(0.2)
            finally:
                started = time.monotonic()
                code = daemon.stop(timeout=STOP_BOUND)
                took = time.monotonic() - started
            assert code == 0, daemon.log()[-2000:]
            assert took < STOP_BOUND
            print(f"stopped {took:.2f} s after SIGTERM")
    finally:
        await hook.close()
    with sqlite3.connect(tmp_path / "state" / "outbox.db") as db:
        pending = db.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
    assert pending >= 1
    assert "commsmon stopped" in daemon.log()
