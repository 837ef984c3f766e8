"""Escalation end to end in real time: the daemon process on the simulated fleet
(snmpsim agents, MQTT devices on a real Mosquitto), real HTTP robots, and the ack link
followed over the daemon's own HTTP listener.

The policy (steps a minute apart, the least allowed): the officer on duty at once, the
deputy after 60 s, the duty leader after 120 s through the leaders' robot.  v05's PDT
terminal goes offline (its PDT channel lost) -> the duty robot gets step 1 -> nobody
acknowledges -> step 2 (the deputy) about 60 s later -> the deputy acknowledges from
the link in step 2 -> the leader's step never comes -> v05's satellite phone goes too
(a second channel lost) -> the ack breaks and step 1 comes again.  The measured
timeline is printed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from ruamel.yaml import YAML

from commsmon.config.load import load_config
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from tests.fleetharness import DaemonProcess, until, value, write_config
from tests.receiverharness import RecordingReceiver

# Two and a half minutes of real time, nearly all of it waiting for the policy's steps.
pytestmark = [pytest.mark.integration, pytest.mark.idle]

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


def _configure(path: Path, port: int, duty: str, leaders: str) -> None:
    """The written demo configuration with the escalation, the roster and the console's
    address for the links."""
    yaml = YAML()
    data = yaml.load(path.read_text(encoding="utf-8"))
    today = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    day = {"start": today.isoformat(), "end": (today + timedelta(days=2)).isoformat()}
    data["http"]["external_url"] = f"http://127.0.0.1:{port}"
    data["alerting"] = {
        "group_wait": 1, "group_interval": 2, "repeat_interval": 3600,
        "rules": {"site_channel_lost": {"for": 0}, "device_down": {"for": 0},
                  "checkin_stale": {"enabled": False}, "scenario_not_ready": {"enabled": False}},
        "receivers": [{"name": "duty-robot", "type": "dingtalk", "url": duty},
                      {"name": "leaders-robot", "type": "webhook", "url": leaders}],
        "routes": [{"receivers": ["duty-robot"]}],
        "escalation": {"policies": [{"name": "villages", "steps": [
            {"after": 0, "notify": "duty", "via": ["duty-robot"]},
            {"after": 60, "notify": "deputy", "via": ["duty-robot"]},
            {"after": 120, "notify": "leader", "via": ["leaders-robot"]}]}]},
        "roster": [{**day, "role": "duty", "name": "张三", "phone": "13800000001"},
                   {**day, "role": "deputy", "name": "李四", "phone": "13800000002"},
                   {**day, "role": "leader", "name": "王五", "phone": "13800000003"}],
    }
    with path.open("w", encoding="utf-8") as f:
        yaml.dump(data, f)


def _steps(robot: RecordingReceiver) -> list[tuple[float, str]]:
    """(arrival, text) of the escalation messages the robot accepted."""
    return [(r.at, r.body["markdown"]["text"]) for r in robot.accepted
            if "【升级】" in r.body["markdown"]["text"]]


async def test_escalation_in_the_sim(tmp_path: Path, broker: Mosquitto) -> None:
    duty, leaders = RecordingReceiver(), RecordingReceiver()
    path, port = write_config(tmp_path, mqtt_port=broker.port, interval=2.0)
    _configure(path, port, await duty.start(), await leaders.start())
    config = load_config(path)
    try:
        async with SimFleet(config, telemetry_period=1.0) as fleet:
            daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
            try:
                await daemon.wait_for("every device up", lambda s: all(
                    value(s, "commsmon_device_up", device=d.id) == 1
                    for d in config.inventory().devices.values() if d.source != "checkin"),
                    within=60)
                cut = time.time()
                fleet.take_down(["v05-pdt"])
                await until("step 1 to the officer on duty", lambda: _steps(duty), within=40)
                first, text = _steps(duty)[0]
                assert "升级第 1 步：通知值班员 张三（13800000001）" in text
                await until("step 2 to the deputy", lambda: len(_steps(duty)) >= 2, within=90)
                second, text = _steps(duty)[1]
                assert "升级第 2 步：通知副班 李四" in text
                link = re.search(r"\]\((http://127\.0\.0\.1:\d+/a/[^)]+)\)", text)
                assert link is not None, text
                jar = aiohttp.CookieJar(unsafe=True)  # cookies from an IP address, as browsers do
                async with aiohttp.ClientSession(cookie_jar=jar) as session:
                    async with session.get(link.group(1)) as r:
                        page = await r.text()
                    assert r.status == 200 and "确认告警" in page
                    nonce = re.search(r'name="nonce" value="([^"]+)"', page)
                    assert nonce is not None
                    async with session.post(link.group(1), data={"nonce": nonce.group(1)},
                                            allow_redirects=False) as r:
                        assert r.status == 303 and r.headers["Location"].endswith("result=ok")
                acked = time.time()
                await daemon.wait_for("the ack counted", lambda s: (value(
                    s, "commsmon_alert_acks_total") or 0) >= 1, within=10)
                # the leader's step was due at first + 120 s: it must not come
                await asyncio.sleep(max(0.0, first + 130 - time.time()))
                assert not leaders.accepted and len(_steps(duty)) == 2
                fleet.take_down(["v05-satphone"])  # a second channel lost
                await until("the policy starting over", lambda: len(_steps(duty)) >= 3,
                            within=40)
                again, text = _steps(duty)[2]
                assert "升级第 1 步：通知值班员 张三" in text
                s = await daemon.samples()
                assert value(s, "commsmon_alert_acks_broken_total") == 1
                print(f"\nescalation in the sim: PDT offline at 0 s; step 1 at "
                      f"{first - cut:.1f} s, step 2 at {second - cut:.1f} s "
                      f"({second - first:.1f} s after step 1), ack at {acked - cut:.1f} s, "
                      f"no leader step by {first + 130 - cut:.0f} s, second channel lost -> "
                      f"step 1 again {again - cut:.1f} s")
            finally:
                assert daemon.stop() == 0, daemon.log()[-3000:]
    finally:
        await duty.close()
        await leaders.close()
