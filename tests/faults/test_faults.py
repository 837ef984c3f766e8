"""The fault suite (issue 7): the whole daemon on the simulated fleet through the faults
of a disaster -- broker down at start, agent restart, a black-holing agent, SIGKILL
mid-delivery, a full or read-only state directory, the clock stepping back an hour, a
broker restart with presence-only devices, a daemon restart with stale retained
presence.

Marked ``fault`` (``pytest -m fault`` runs the suite alone); it runs in ``make test``.
Other tests carry the mark where they already are the suite's case: the broker restart
(tests/integration/test_daemon_fleet.py) and the receiver down for 10 minutes of
injected time (tests/outputs/alerts/test_delivery.py).

The state-directory cases run the daemon in a mount namespace of its own (``unshare``,
util-linux) with a small tmpfs or a read-only bind mount as its state directory; the
test reaches into it through ``/proc/<pid>/root``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from prometheus_client import CollectorRegistry

from commsmon.config.load import load_config
from commsmon.daemon import Daemon
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from commsmon.sim.ports import free_port
from tests.fleetharness import DaemonProcess, Samples, scrape, until, value, write_config
from tests.receiverharness import Received, RecordingReceiver

pytestmark = [pytest.mark.integration, pytest.mark.fault]

INTERVAL = 1.0


def alerting(hook: RecordingReceiver, *quick: str) -> dict[str, Any]:
    """Quick grouping; village isolation, monitor faults and the ``quick`` rules (each
    with a 2 s ``for``) go to ``hook``."""
    rules = ("site_isolated", "monitor_fault", "monitor_cut_off", *quick)
    return {
        "group_wait": 1, "group_interval": 2, "repeat_interval": 3600,
        "rules": {rule: {"for": 2} for rule in rules},
        "receivers": [{"name": "hook", "type": "webhook", "language": "en",
                       "url": str(hook.server.make_url("/hook"))}],
        "routes": [{"match": {"alertname": list(rules)}, "receivers": ["hook"]}],
    }


def notes(hook: RecordingReceiver, alertname: str, status: str = "firing",
          site: str | None = None) -> list[Received]:
    """Accepted webhook notifications carrying ``alertname`` in ``status``."""
    return [r for r in hook.accepted
            if r.body["status"] == status
            and any(a["labels"]["alertname"] == alertname for a in r.body["alerts"])
            and (site is None or r.body["groupLabels"].get("site") == site)]


def all_up(config_path: Path) -> Callable[[Samples], bool]:
    devices = [d.id for d in load_config(config_path).inventory().devices.values()
               if d.source != "checkin"]
    return lambda s: all(value(s, "commsmon_device_up", device=d) == 1 for d in devices)


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


@pytest.fixture
async def hook() -> AsyncIterator[RecordingReceiver]:
    receiver = RecordingReceiver()
    await receiver.start()
    yield receiver
    await receiver.close()


@asynccontextmanager
async def world(
    tmp_path: Path, broker: Mosquitto, hook: RecordingReceiver, *quick: str
) -> AsyncIterator[tuple[Path, int, SimFleet]]:
    path, port = write_config(tmp_path, mqtt_port=broker.port, interval=INTERVAL,
                              alerting=alerting(hook, *quick))
    async with SimFleet(load_config(path), telemetry_period=1.0) as fleet:
        yield path, port, fleet


@asynccontextmanager
async def quiet_world(
    tmp_path: Path, broker: Mosquitto, hook: RecordingReceiver, *quick: str
) -> AsyncIterator[tuple[Path, DaemonProcess, SimFleet]]:
    """The daemon first, then a fleet whose MQTT devices publish presence only when
    their session begins or they change (the 4G cameras): every birth is live."""
    path, port = write_config(tmp_path, mqtt_port=broker.port, interval=INTERVAL,
                              alerting=alerting(hook, *quick))
    daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
    try:
        await daemon.wait_for("mqtt subscribed",
                              lambda s: value(s, "commsmon_mqtt_connected") == 1, within=30)
        async with SimFleet(load_config(path), telemetry_period=1.0, heartbeat=False) as fleet:
            await daemon.wait_for("every device up", all_up(path), within=30)
            yield path, daemon, fleet
    finally:
        assert daemon.stop() == 0


async def test_broker_down_at_startup(tmp_path: Path, hook: RecordingReceiver) -> None:
    """No broker when the daemon starts: SNMP monitoring runs, MQTT devices are unknown
    (never down), no village is paged; when the broker comes, everything is up."""
    broker = Mosquitto(free_port())
    async with world(tmp_path, broker, hook) as (path, port, _):
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            await daemon.wait_for(
                "SNMP up, MQTT unknown",
                lambda s: value(s, "commsmon_device_up", device="v01-router") == 1
                and value(s, "commsmon_device_state", device="v01-genset", state="unknown") == 1,
                within=30)
            await asyncio.sleep(5)  # longer than every rule's `for` here
            s = await daemon.samples()
            for device in ("v01-genset", "v01-satphone", "v01-pdt", "centre-genset"):
                assert value(s, "commsmon_device_state", device=device, state="down") == 0
            assert value(s, "commsmon_mqtt_connected") == 0
            await broker.start()
            await daemon.wait_for("every device up", all_up(path), within=40)
            assert notes(hook, "site_isolated") == []
        finally:
            assert daemon.stop() == 0
            await broker.close()


#: The demo's presence-only devices: one ``online`` per session, nothing else.
CAMERAS = ("v02-cam4g", "v06-cam4g", "v09-cam4g")
VILLAGE_PAGES = ("device_down", "site_channel_lost", "outage_active")


def village_notes(hook: RecordingReceiver, start: int = 0) -> list[Received]:
    """Notifications from ``start`` on about villages (not the monitor itself)."""
    return [r for r in hook.accepted[start:]
            if any(not a["labels"]["alertname"].startswith("monitor_")
                   for a in r.body["alerts"])]


async def test_broker_restart_with_presence_only_devices(
    tmp_path: Path, broker: Mosquitto, hook: RecordingReceiver
) -> None:
    """Mosquitto restarted cleanly (SIGTERM: it publishes every client's Last Will as it
    goes, then closes our session): the Wills are dropped, not taken as deaths; the 4G
    cameras are back within their one presence message; no village is paged."""
    async with quiet_world(tmp_path, broker, hook, *VILLAGE_PAGES) as (path, daemon, _):
        # Whether mosquitto sends the Wills before or after it closes our session
        # depends on the order it walks its clients; so the last Will is sent here,
        # as the broker would send it, seen delivered, and the broker stopped at once.
        site, camera = next((s, d) for s, d in load_config(path).devices()
                            if d.id == CAMERAS[0])
        topic = load_config(path).topics(site, camera)[0] or ""

        def taken(s: Samples) -> float:
            return value(s, "commsmon_mqtt_messages_total", kind="status", result="ok") or 0

        before = taken(await daemon.samples())
        async with aiomqtt.Client(broker.host, broker.port, identifier="witness") as c:
            await c.subscribe(topic, qos=1)
            await c.publish(topic, b"offline", qos=1, retain=True)
            async with asyncio.timeout(10):
                async for message in c.messages:
                    if not message.retain and message.payload == b"offline":
                        break  # mosquitto has sent it
        # ... and the daemon has read it (it holds it will_grace, 5 s): stopped sooner, a
        # busy daemon could find the connection closed before the message in its socket.
        await daemon.wait_for("the Will read", lambda s: taken(s) > before, within=4)
        await broker.stop()
        await broker.start()
        await daemon.wait_for(
            "the cameras up again",
            lambda s: value(s, "commsmon_mqtt_connected") == 1
            and all(value(s, "commsmon_device_up", device=d) == 1 for d in CAMERAS),
            within=40)
        await asyncio.sleep(5)  # longer than every rule's `for` here
        s = await daemon.samples()
        assert (value(s, "commsmon_mqtt_messages_total", kind="status",
                      result="will_at_disconnect") or 0) > 0
        assert all(value(s, "commsmon_device_up", device=d) == 1 for d in CAMERAS)
        assert village_notes(hook) == []


async def test_daemon_restart_with_stale_retained_presence(
    tmp_path: Path, broker: Mosquitto, hook: RecordingReceiver
) -> None:
    """While the daemon is stopped, the broker comes to hold a stale retained ``online``
    for a camera that is down (its device_down firing) and a stale retained ``offline``
    for a generator gateway that works: after the restart nothing fires or resolves;
    the camera is unknown ("last known online, retained"), the gateway up from its live
    telemetry."""
    async with quiet_world(tmp_path, broker, hook, *VILLAGE_PAGES) as (path, daemon, fleet):
        config = load_config(path)
        topic = {d.id: config.topics(site, d)[0] or "" for site, d in config.devices()}
        fleet.take_down(["v02-cam4g"])
        await until("the camera's device_down", lambda: any(
            a["labels"].get("device") == "v02-cam4g" for r in notes(hook, "device_down")
            for a in r.body["alerts"]), within=30)
        assert daemon.stop() == 0
        # QoS 0: kept only as the topics' retained messages, not queued for the daemon's
        # persistent session as news (a QoS 1 one would be: it would be live, if late).
        async with aiomqtt.Client(broker.host, broker.port, identifier="stale") as c:
            await c.publish(topic["v02-cam4g"], b"online", qos=0, retain=True)
            await c.publish(topic["v01-genset"], b"offline", qos=0, retain=True)
        before = len(hook.accepted)
        again = DaemonProcess(path, int(daemon.url.rsplit(":", 1)[1]),
                              tmp_path / "daemon.log")
        try:
            await again.wait_for(
                "the gateway up from telemetry, the camera unknown",
                lambda s: value(s, "commsmon_device_up", device="v01-genset") == 1
                and value(s, "commsmon_device_state", device="v02-cam4g",
                          state="unknown") == 1,
                within=30)
            await asyncio.sleep(6)  # longer than every rule's `for` and group_wait here
            assert hook.accepted[before:] == []
            site = await again.site("v02")
            (camera,) = [d for d in site["devices"] if d["id"] == "v02-cam4g"]
            assert "最后已知在线（保留消息" in camera["reason"], camera
        finally:
            assert again.stop() == 0


async def test_agent_restart_resets_counters_without_a_negative_rate(
    tmp_path: Path, broker: Mosquitto, hook: RecordingReceiver
) -> None:
    """snmpsim restarts (every agent's sysUpTime and counters start over): uptime drops,
    the interval across the restart gives no rate, rates come back, none is negative
    or a spike, and no device goes down."""
    rate = "commsmon_uplink_receive_bytes_per_second"
    async with world(tmp_path, broker, hook) as (path, port, fleet):
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            await daemon.wait_for("every device up", all_up(path), within=30)
            await daemon.wait_for("a rate", lambda s: value(s, rate, device="v01-router")
                                  is not None, within=30)
            before = value(await daemon.samples(), "commsmon_uptime_seconds",
                           device="v01-router")
            assert before is not None
            await fleet.agents.stop()
            await fleet.agents.start()
            rates: list[float] = []
            downs: list[str] = []
            restarted = False
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                s = await daemon.samples()
                rates += [v for (n, _), v in s.items() if n == rate]
                downs += [dict(lbls)["device"] for (n, lbls), v in s.items()
                          if n == "commsmon_device_state" and ("state", "down") in lbls and v]
                uptime = value(s, "commsmon_uptime_seconds", device="v01-router") or before
                restarted = restarted or uptime < before
                if restarted and (value(s, rate, device="v01-router") or 0) > 0:
                    break
                await asyncio.sleep(0.25)
            assert restarted, "sysUpTime never fell"
            assert downs == []
            assert rates and min(rates) >= 0
            assert max(rates) < 12500 * 1.1  # no false wrap: that would be ~2**64 / s
            assert value(await daemon.samples(), rate, device="v01-router") == \
                pytest.approx(12500, rel=0.05)
        finally:
            assert daemon.stop() == 0


async def test_black_holing_agent_goes_down_alone(
    tmp_path: Path, broker: Mosquitto, hook: RecordingReceiver
) -> None:
    """An agent that drops every packet: it goes down; every other SNMP device keeps being
    polled on its interval and stays up."""
    async with world(tmp_path, broker, hook) as (path, port, fleet):
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            await daemon.wait_for("every device up", all_up(path), within=30)
            fleet.links.cut("v03-cam1")
            await daemon.wait_for(
                "the black hole down",
                lambda s: value(s, "commsmon_device_state", device="v03-cam1", state="down") == 1,
                within=30)
            others = [d for d in fleet.links if d != "v03-cam1"]
            for _ in range(8):  # a few seconds of polls with the black hole in the fleet
                s = await daemon.samples()
                now = time.time()
                for device in others:
                    assert value(s, "commsmon_device_up", device=device) == 1, device
                    seen = value(s, "commsmon_device_last_seen_timestamp_seconds", device=device)
                    # polled every second with a 0.5 s timeout; evaluated every second
                    assert seen is not None and now - seen < 4 * INTERVAL + 1, device
                await asyncio.sleep(0.5)
        finally:
            assert daemon.stop() == 0


async def test_sigkill_mid_delivery_resends_the_same_notification_once(
    tmp_path: Path, broker: Mosquitto, hook: RecordingReceiver
) -> None:
    """The daemon is killed while the receiver holds its request unanswered: after the
    restart the same notification (same Idempotency-Key) is delivered, exactly once."""
    async with world(tmp_path, broker, hook) as (path, port, fleet):
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            await daemon.wait_for("every device up", all_up(path), within=30)
            hook.hold = held = asyncio.Event()
            fleet.take_down(fleet.site_devices("v05"))
            await until("the request in flight", lambda: bool(hook.requests), within=40)
        finally:
            daemon.kill()
        (in_flight,) = hook.requests
        hook.hold = None
        await asyncio.sleep(0.5)  # the receiver's loop sees the connection end
        held.set()  # the held handler finds its sender gone and answers nobody
        await asyncio.sleep(0.5)
        assert hook.accepted == []
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            await until("the notification after restart",
                        lambda: bool(notes(hook, "site_isolated", site="v05")), within=60)
            await asyncio.sleep(5)  # let a duplicate show itself
            (delivered,) = notes(hook, "site_isolated", site="v05")
            key = in_flight.headers["Idempotency-Key"]
            assert delivered.headers["Idempotency-Key"] == key
            assert [r.headers["Idempotency-Key"] for r in hook.accepted].count(key) == 1
        finally:
            assert daemon.stop() == 0


def _namespaced(state: Path, mount: str) -> list[str]:
    """A wrapper running the daemon in its own mount namespace with ``mount`` applied
    to ``state`` first (``$0`` is the directory)."""
    return ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private",
            "sh", "-c", f'{mount} && exec "$@"', str(state)]


def _inside(daemon: DaemonProcess, path: Path) -> Path:
    """``path`` as the daemon sees it, in its mount namespace."""
    return Path(f"/proc/{daemon.proc.pid}/root") / path.relative_to("/")


def _fill(directory: Path) -> Path:
    ballast = directory / "ballast"
    with ballast.open("wb", buffering=0) as f:
        # To the last byte: a 64 KiB write that fails can leave enough room for the
        # daemon's next few pages, and the fault would then wait on a larger write.
        for chunk in (65536, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return ballast


def _delivered_keys(daemon: DaemonProcess, db: Path) -> set[str]:
    """Keys delivered according to the outbox file, read in the daemon's namespace
    (SQLite resolves /proc/<pid>/root to the host's path, and WAL needs the same file)."""
    query = ("import sqlite3, sys, json; db = sqlite3.connect(sys.argv[1]); print(json.dumps("
             "[k for (k,) in db.execute(\"SELECT key FROM outbox WHERE state = 'delivered'\")]))")
    out = subprocess.run(["nsenter", "-t", str(daemon.proc.pid), "--user", "--mount",
                          sys.executable, "-c", query, str(db)],
                         capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


async def test_state_dir_full_keeps_monitoring_alerts_and_loses_nothing(
    tmp_path: Path, broker: Mosquitto, hook: RecordingReceiver
) -> None:
    """The state directory's disk fills up while the daemon runs: monitoring goes on, the
    village alert still arrives, a monitor_fault warning says so; when space comes back
    the warning resolves and everything delivered meanwhile is in the file."""
    state = tmp_path / "state"
    state.mkdir()
    async with world(tmp_path, broker, hook) as (path, port, fleet):
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log",
                               wrap=_namespaced(state, 'mount -t tmpfs -o size=4m tmpfs "$0"'))
        try:
            await daemon.wait_for("every device up", all_up(path), within=30)
            ballast = _fill(_inside(daemon, state))
            fleet.take_down(fleet.site_devices("v05"))
            await until("v05 isolated, delivered",
                        lambda: bool(notes(hook, "site_isolated", site="v05")), within=40)
            await daemon.wait_for(
                "the outbox in memory",
                lambda s: value(s, "commsmon_state_file_writable", file="outbox") == 0,
                within=30)
            await until("the monitor fault", lambda: bool(notes(hook, "monitor_fault")),
                        within=30)
            assert "disk is full" in str(notes(hook, "monitor_fault")[0].body)
            s = await daemon.samples()
            assert value(s, "commsmon_site_reachable", site="v05") == 0
            assert value(s, "commsmon_device_up", device="v01-router") == 1
            ballast.unlink()
            await daemon.wait_for(
                "the outbox on disk again",
                lambda s: value(s, "commsmon_state_file_writable", file="outbox") == 1,
                within=30)  # tried again every 10 s
            await until("the monitor fault resolved",
                        lambda: bool(notes(hook, "monitor_fault", "resolved")), within=30)
            fleet.bring_up(fleet.site_devices("v05"))
            await until("v05 resolved",
                        lambda: bool(notes(hook, "site_isolated", "resolved", site="v05")),
                        within=40)
            await asyncio.sleep(1)
            accepted = {r.headers["Idempotency-Key"] for r in hook.accepted}
            assert accepted <= _delivered_keys(daemon, state / "outbox.db")
        finally:
            assert daemon.stop() == 0, daemon.log()[-2000:]


async def test_read_only_state_dir_at_start_restores_and_keeps_monitoring(
    tmp_path: Path, broker: Mosquitto, hook: RecordingReceiver
) -> None:
    """The daemon restarts onto a read-only state directory (an fs remounted read-only):
    it reads what the last run saved (v05's alert is not sent again), monitors, alerts on
    v06 and warns that its state directory is read-only."""
    state = tmp_path / "state"
    async with world(tmp_path, broker, hook) as (path, port, fleet):
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            await daemon.wait_for("every device up", all_up(path), within=30)
            fleet.take_down(fleet.site_devices("v05"))
            await until("v05 isolated", lambda: bool(notes(hook, "site_isolated", site="v05")),
                        within=40)
        finally:
            assert daemon.stop() == 0
        read_only = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0"'
        daemon = DaemonProcess(path, port, tmp_path / "daemon2.log",
                               wrap=_namespaced(state, read_only))
        try:
            await daemon.wait_for(
                "monitoring on a read-only state directory",
                lambda s: value(s, "commsmon_state_file_writable", file="outbox") == 0
                and value(s, "commsmon_device_up", device="v01-router") == 1, within=30)
            fleet.take_down(fleet.site_devices("v06"))
            await until("v06 isolated", lambda: bool(notes(hook, "site_isolated", site="v06")),
                        within=40)
            await until("the monitor fault", lambda: bool(notes(hook, "monitor_fault")),
                        within=30)
            await asyncio.sleep(3)
            assert len(notes(hook, "site_isolated", site="v05")) == 1  # not sent again
            assert len(notes(hook, "site_isolated", site="v06")) == 1
        finally:
            assert daemon.stop() == 0, daemon.log()[-2000:]


async def test_clock_stepping_back_an_hour(
    tmp_path: Path, broker: Mosquitto, hook: RecordingReceiver
) -> None:
    """The wall clock steps back one hour under a running daemon (its injected clock; the
    poller runs on the monotonic clock as the kernel's does): no counter goes backwards,
    no device changes state, nobody is paged; a village lost after the step is paged
    and resolved on time."""
    offset = 0.0

    def clock() -> float:
        return time.time() + offset

    async with world(tmp_path, broker, hook) as (path, port, fleet):
        daemon = Daemon(load_config(path), clock=clock, registry=CollectorRegistry())
        task = asyncio.create_task(daemon.run())
        url = f"http://127.0.0.1:{port}"
        try:
            up = all_up(path)
            latest: Samples = {}
            deadline = time.monotonic() + 30
            while not (task.done() or up(latest)) and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                with contextlib.suppress(aiohttp.ClientError):
                    latest = await scrape(url)
            assert not task.done() and up(latest)
            offset = -3600.0
            counters = {k: v for k, v in latest.items() if k[0].endswith("_total")}
            for _ in range(12):
                await asyncio.sleep(0.5)
                s = await scrape(url)
                assert up(s)
                for key, before in counters.items():
                    assert s.get(key, before) >= before, key
                counters = {k: v for k, v in s.items() if k[0].endswith("_total")}
            assert hook.accepted == []
            fleet.take_down(fleet.site_devices("v05"))
            await until("v05 isolated after the step",
                        lambda: bool(notes(hook, "site_isolated", site="v05")), within=40)
            fleet.bring_up(fleet.site_devices("v05"))
            await until("v05 resolved after the step",
                        lambda: bool(notes(hook, "site_isolated", "resolved", site="v05")),
                        within=40)
            assert not task.done()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
