"""Alerts end to end: the daemon on the simulated fleet, real HTTP receivers, Alertmanager."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from commsmon.config.load import load_config
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from tests.fleetharness import DaemonProcess, free_port, until, value, write_config
from tests.receiverharness import RecordingReceiver

pytestmark = pytest.mark.integration

INTERVAL = 2.0
SECRET = "SECtest-dingtalk-secret"


def _alerting(hook: str, ding: str, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    receivers = [
        {"name": "hook", "type": "webhook", "url": hook, "language": "en"},
        {"name": "ding", "type": "dingtalk", "url": ding + "?access_token=t0k3n",
         "secret": SECRET, "language": "zh"},
        *(extra or []),
    ]
    return {
        "group_wait": 1, "group_interval": 2, "repeat_interval": 3600,
        "rules": {"site_isolated": {"for": 2}},
        "receivers": receivers,
        "routes": [{"match": {"severity": ["critical"]},
                    "receivers": [r["name"] for r in receivers]}],
    }


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[RecordingReceiver, RecordingReceiver]]:
    hook, ding = RecordingReceiver(), RecordingReceiver(dingtalk_secret=SECRET)
    await hook.start()
    await ding.start()
    yield hook, ding
    await hook.close()
    await ding.close()


async def _up(daemon: DaemonProcess, config_path: Path) -> None:
    inventory = load_config(config_path).inventory()
    await daemon.wait_for(
        "every polled device up",
        lambda s: all(value(s, "commsmon_device_up", device=d.id) == 1
                      for d in inventory.devices.values() if d.source != "checkin"),
        within=40,
    )


def _site_notes(r: RecordingReceiver, site: str, kind: str) -> list[dict[str, Any]]:
    """The notifications about ``site``, in the receiver's own format."""
    out = []
    for req in r.accepted:
        body = req.body
        # A robot's markdown names the village, not its id.
        name = f"占位村{site.removeprefix('v')}"
        mine = (body["groupLabels"].get("site") == site if kind == "webhook"
                else name in json.dumps(body, ensure_ascii=False))
        if mine:
            out.append(body)
    return out


async def _settle(seconds: float) -> None:
    await asyncio.sleep(seconds)  # let any duplicate show itself


async def test_isolated_village_one_critical_and_one_resolution(
    tmp_path: Path, broker: Mosquitto, receivers: tuple[RecordingReceiver, RecordingReceiver]
) -> None:
    """A village loses every channel: exactly one critical notification per receiver, naming
    the village and its lost channels, signed for DingTalk; one resolution when it recovers."""
    hook, ding = receivers
    path, port = write_config(tmp_path, mqtt_port=broker.port, interval=INTERVAL,
                              alerting=_alerting(str(hook.server.make_url("/hook")),
                                                 str(ding.server.make_url("/robot/send"))))
    config = load_config(path)
    async with SimFleet(config, telemetry_period=1.0) as fleet:
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            await _up(daemon, path)
            cut = time.time()
            fleet.take_down(fleet.site_devices("v05"))
            deadline = time.monotonic() + 40
            while not (_site_notes(hook, "v05", "webhook")
                       and _site_notes(ding, "v05", "dingtalk")):
                assert time.monotonic() < deadline, daemon.log()[-3000:]
                await asyncio.sleep(0.2)
            latency = min(r.at for r in hook.accepted) - cut
            print(f"\nvillage down -> webhook: {latency:.1f} s (poll {INTERVAL} s, down after 3, "
                  f"site_isolated for 2 s, group_wait 1 s)")
            await _settle(6)
            (firing,) = _site_notes(hook, "v05", "webhook")
            assert firing["status"] == "firing"
            assert firing["version"] == "4"
            (alert,) = firing["alerts"]
            assert alert["labels"]["alertname"] == "site_isolated"
            assert alert["labels"]["severity"] == "critical"
            text = json.dumps(firing, ensure_ascii=False)
            assert "占位村05" in text and "public" in text and "satellite" in text
            (ding_firing,) = _site_notes(ding, "v05", "dingtalk")
            markdown = ding_firing["markdown"]["text"]
            assert "占位村05" in markdown and "桑村镇" in markdown
            assert ding.bad_signatures == 0
            fleet.bring_up(fleet.site_devices("v05"))
            deadline = time.monotonic() + 40
            while len(_site_notes(hook, "v05", "webhook")) < 2 or len(
                    _site_notes(ding, "v05", "dingtalk")) < 2:
                assert time.monotonic() < deadline, daemon.log()[-3000:]
                await asyncio.sleep(0.2)
            await _settle(6)
            notes = _site_notes(hook, "v05", "webhook")
            assert [n["status"] for n in notes] == ["firing", "resolved"]
            assert len(_site_notes(ding, "v05", "dingtalk")) == 2
            s = await daemon.samples()
            assert value(s, "commsmon_alert_notifications_total", receiver="hook",
                         result="delivered") == 2
            assert value(s, "commsmon_outbox_pending") == 0
        finally:
            assert daemon.stop() == 0


async def test_sigkill_with_pending_delivers_after_restart_without_resending(
    tmp_path: Path, broker: Mosquitto, receivers: tuple[RecordingReceiver, RecordingReceiver]
) -> None:
    """kill -9 while a notification is pending: after restart it is delivered, and what had
    been delivered before is not sent again."""
    hook, ding = receivers
    path, port = write_config(tmp_path, mqtt_port=broker.port, interval=INTERVAL,
                              alerting=_alerting(str(hook.server.make_url("/hook")),
                                                 str(ding.server.make_url("/robot/send"))))
    config = load_config(path)
    async with SimFleet(config, telemetry_period=1.0) as fleet:
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            await _up(daemon, path)
            fleet.take_down(fleet.site_devices("v05"))
            await until("v05 notified", lambda: _site_notes(hook, "v05", "webhook"), within=40)
            hook.status = 500  # the receiver goes away
            fleet.take_down(fleet.site_devices("v06"))
            await until("v06 attempted", lambda: any(
                r.body["groupLabels"].get("site") == "v06" for r in hook.requests), within=40)
        finally:
            daemon.kill()
        hook.status = 200
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            await until("v06 notified", lambda: _site_notes(hook, "v06", "webhook"), within=60)
            await _settle(8)
            assert len(_site_notes(hook, "v05", "webhook")) == 1  # not re-sent
            assert len(_site_notes(hook, "v06", "webhook")) == 1
            keys = [r.headers.get("Idempotency-Key") for r in hook.accepted]
            assert len(keys) == len(set(keys))
        finally:
            assert daemon.stop() == 0


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert exe, "Debian prometheus-alertmanager is needed (make deps installs it)"
    port, cluster = free_port(), free_port()
    conf = tmp_path / "am.yml"
    conf.write_text("route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n")
    proc = subprocess.Popen(
        [exe, f"--config.file={conf}", f"--storage.path={tmp_path / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}",
         f"--cluster.listen-address=127.0.0.1:{cluster}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "am.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def test_pushes_to_a_real_alertmanager(
    tmp_path: Path, broker: Mosquitto, receivers: tuple[RecordingReceiver, RecordingReceiver],
    alertmanager: str,
) -> None:
    """The alertmanager receiver pushes to /api/v2/alerts; Alertmanager shows the alert, then
    resolves it."""
    hook, ding = receivers
    am = {"name": "am", "type": "alertmanager", "url": alertmanager, "language": "en"}
    path, port = write_config(tmp_path, mqtt_port=broker.port, interval=INTERVAL,
                              alerting=_alerting(str(hook.server.make_url("/hook")),
                                                 str(ding.server.make_url("/robot/send")), [am]))
    config = load_config(path)

    async def active() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.get(f"{alertmanager}/api/v2/alerts") as r:
            return [a for a in await r.json() if a["labels"].get("site") == "v05"]

    async with SimFleet(config, telemetry_period=1.0) as fleet:
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            await _up(daemon, path)
            fleet.take_down(fleet.site_devices("v05"))
            for _ in range(200):
                alerts = await active()
                if alerts:
                    break
                await asyncio.sleep(0.2)
            assert [a["labels"]["alertname"] for a in alerts] == ["site_isolated"], daemon.log()
            assert alerts[0]["status"]["state"] == "active"
            fleet.bring_up(fleet.site_devices("v05"))
            for _ in range(300):
                if not await active():
                    break
                await asyncio.sleep(0.2)
            assert await active() == []
        finally:
            assert daemon.stop() == 0
