"""Escalation end to end on injected time: the demo inventory through the real loader
and core, the real alert service, outbox (SQLite) and deliverer sending to real HTTP
robots on 127.0.0.1, and the ack link followed through the real console.

The timeline a duty officer works out (the policy: the officer on duty at once
through the duty robot; the deputy after 5 min; the duty leader after 15 min
through the leaders' robot, the SMS gateway taking over if that one fails;
again every 15 min; an ack holds 30 min):

* F (= 10:01:00): v05's PDT terminal goes offline: its PDT 370 MHz channel is
  lost (``site_channel_lost``, warning, ``for: 0``); 4G and satellite still
  work.  The duty robot gets the news and step 1 (张三, on duty) at once.
* F + 300 s: nobody acknowledged: step 2, the deputy 李四, through the duty robot.
* F + 400 s: 李四 opens the link from step 2 — GET shows the state and does not
  acknowledge — and presses the button: acknowledged; the link is spent.
* F + 900 s: the leader's step does not go (acknowledged: re-checked before sending).
* F + 1000 s: the satellite phone goes too — a second channel lost: the ack
  breaks, and the policy starts over: step 1 again to the duty officer; the old
  link is dead.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from commsmon.config.alerting import AlertingSpec
from commsmon.config.load import load_config
from commsmon.core.types import Observation
from commsmon.daemon import Daemon
from commsmon.outputs.alerts.service import AlertService
from commsmon.outputs.http import build_app
from commsmon.outputs.web import add_console_routes
from commsmon.outputs.web.accounts import Accounts
from tests.fleetharness import DEMO
from tests.receiverharness import RecordingReceiver

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 5, 10, 0, tzinfo=TZ).timestamp()
F = T0 + 60  # the PDT terminal goes offline
STEP = 10.0  # seconds between evaluations
Client = TestClient[web.Request, web.Application]


def _spec(duty: str, leaders: str, sms: str, also: bool = False) -> AlertingSpec:
    day = {"start": "2026-12-05T08:00:00+08:00", "end": "2026-12-06T08:00:00+08:00"}
    return AlertingSpec.model_validate({
        "group_wait": 0, "group_interval": 60, "repeat_interval": 4 * 3600,
        "rules": {"site_channel_lost": {"for": 0}, "device_down": {"for": 0},
                  "checkin_stale": {"enabled": False}, "scenario_not_ready": {"enabled": False}},
        "receivers": [{"name": "duty-robot", "type": "dingtalk", "url": duty},
                      {"name": "leaders-robot", "type": "webhook", "url": leaders},
                      {"name": "sms", "type": "webhook", "url": sms}],
        "routes": [{"receivers": ["duty-robot"]}],
        "escalation": {"ack_timeout": 1800, "policies": [{
            "name": "villages", "steps": [
                {"after": 0, "notify": "duty", "via": ["duty-robot"]},
                {"after": 300, "notify": "deputy", "via": ["duty-robot"]},
                {"after": 900, "notify": "leader", "via": ["leaders-robot"], "also": ["sms"]}
                if also else
                {"after": 900, "notify": "leader", "via": ["leaders-robot", "sms"]}],
            "repeat": 900}]},
        "roster": [{**day, "role": "duty", "name": "张三", "phone": "13800000001"},
                   {**day, "role": "deputy", "name": "李四", "phone": "13800000002"},
                   {**day, "role": "leader", "name": "王五", "phone": "13800000003"}],
    })


@dataclass
class World:
    daemon: Daemon
    service: AlertService
    console: Client
    duty: RecordingReceiver
    leaders: RecordingReceiver
    sms: RecordingReceiver
    clock: list[float]
    down: set[str]

    async def run_until(self, end: float) -> None:
        """Every STEP seconds up to ``end``: poll every device, evaluate, step the alerts
        and deliver what is due."""
        while self.clock[0] + STEP <= end:
            self.clock[0] += STEP
            now = self.clock[0]
            for device in self.daemon.fleet.inventory.devices.values():
                if device.source != "checkin":
                    ok = device.id not in self.down
                    self.daemon.fleet.observe(Observation(device.id, now, ok, conclusive=not ok))
            await self.service.step(self.daemon.evaluate())
            await self.service.deliverer.deliver_due(now)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async for w in _world(tmp_path, also=False):
        yield w


@pytest.fixture
async def world_also(tmp_path: Path) -> AsyncIterator[World]:
    async for w in _world(tmp_path, also=True):
        yield w


async def _world(tmp_path: Path, also: bool) -> AsyncIterator[World]:
    clock = [T0]
    robots = [RecordingReceiver() for _ in range(3)]
    urls = [await r.start() for r in robots]
    daemon = Daemon(load_config(DEMO), clock=lambda: clock[0])
    app = build_app(CollectorRegistry(), lambda: daemon.snapshot, lambda _: [], lambda: clock[0],
                    before=[(accounts := Accounts({}, 1800, clock=lambda: clock[0])).middleware])
    add_console_routes(app, lambda: daemon.snapshot, daemon.tz, "zh", lambda: clock[0],
                       ops=daemon.operations, accounts=accounts)
    async with TestClient(TestServer(app, host="127.0.0.1")) as console:
        service = AlertService(_spec(*urls, also=also), tmp_path / "outbox.db", TZ,
                               lambda: clock[0],
                               external_url=str(console.make_url("/")))
        service.restore()
        daemon.alerting.service = service
        yield World(daemon, service, console, *robots, clock, set())
        await service.close()
    for r in robots:
        await r.close()


def _texts(robot: RecordingReceiver) -> list[str]:
    return [r.body["markdown"]["text"] for r in robot.accepted]


def _link(text: str) -> str:
    found = re.search(r"\]\((http://[^)]+/a/[^)]+)\)", text)
    assert found is not None, text
    return found.group(1)


async def test_escalation_ack_from_the_link_and_a_broken_ack(world: World) -> None:
    w = world
    await w.run_until(F - STEP)
    assert not w.duty.accepted  # a quiet village: nothing

    w.down.add("v05-pdt")
    await w.run_until(F)
    news, step1 = _texts(w.duty)
    assert "PDT 370M 集群通道中断" in news.splitlines()[0]
    assert "【升级】" in step1 and "升级第 1 步：通知值班员 张三（13800000001）" in step1
    assert "/a/" in news and "/a/" in step1  # every message carries an ack link

    await w.run_until(F + 290)
    assert len(w.duty.accepted) == 2  # 290 < 300: the deputy not yet
    await w.run_until(F + 300)
    step2 = _texts(w.duty)[2]
    assert "升级第 2 步：通知副班 李四（13800000002）" in step2

    # F + 400: 李四 follows the link from step 2.
    await w.run_until(F + 400)
    path = _link(step2).split(str(w.console.make_url("/")).rstrip("/"), 1)[1]
    page = await (await w.console.get(path)).text()
    assert "确认告警" in page and "告警中" in page and 'id="ack-button"' in page
    assert w.service.escalation.state("site:v05", w.clock[0]) == "firing"  # GET did nothing
    nonce = re.search(r'name="nonce" value="([^"]+)"', page)
    assert nonce is not None
    r = await w.console.post(path, data={"nonce": nonce.group(1)}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].endswith("?result=ok")
    ack = w.service.escalation.ack("site:v05")
    assert ack is not None and ack.by == "李四" and ack.at == F + 400
    again = await w.console.post(path, data={"nonce": nonce.group(1)}, allow_redirects=False)
    assert again.headers["Location"].endswith("?result=used")  # single use
    page = await (await w.console.get(path)).text()
    assert "此链接已使用过" in page and 'id="ack-button"' not in page
    forged = await w.console.get(path[:-3] + "abc")
    assert "此链接无效" in await forged.text()

    # F + 900: the leader's step is not taken: acknowledged.
    await w.run_until(F + 990)
    assert len(w.duty.accepted) == 3 and not w.leaders.accepted and not w.sms.accepted
    old_link = _link(step1)

    # F + 1000: the satellite phone goes too: the ack breaks, the policy starts over.
    w.down.add("v05-satphone")
    await w.run_until(F + 1000)
    assert w.service.escalation.state("site:v05", w.clock[0]) == "firing"
    after = _texts(w.duty)[3:]
    assert any("升级第 1 步：通知值班员 张三" in t for t in after), after
    old = old_link.split(str(w.console.make_url("/")).rstrip("/"), 1)[1]
    assert "告警已加重" in await (await w.console.get(old)).text()  # the old link is dead

    # the duty log has the ack, from the link, in 李四's name
    entries = await w.daemon.operations.duty_entries(T0, F + 2000)
    (entry,) = [e for e in entries if e.action == "ack"]
    assert (entry.user, entry.subject, entry.detail["via"]) == ("link", "site:v05",
                                                               "link:deputy")


async def test_a_failing_robot_hands_the_step_to_the_next_receiver(world: World) -> None:
    """Nobody acknowledges; at F + 900 s the leaders' robot answers 500: the leader's
    step goes to the SMS gateway at the next pass instead of waiting out the backoff."""
    w = world
    w.leaders.status = 500
    await w.run_until(F - STEP)
    w.down.add("v05-pdt")
    await w.run_until(F + 900)
    assert w.leaders.requests and not w.leaders.accepted  # tried once, failed
    await w.run_until(F + 910)
    (sms,) = w.sms.accepted
    assert "升级第 3 步" in str(sms.body) and "王五" in str(sms.body)
    # the leader's repeat, 900 s later, starts at the leaders' robot again
    assert w.service.escalation.next_due_of("site:v05") == F + 1800


async def test_a_throttled_robot_hands_the_step_on(world: World) -> None:
    """The duty robot's 20 a minute are spent (DingTalk throttles a robot for 10 min
    past that): the deputy's step, which has no other receiver, waits for a token
    (never beyond the budget), and ``commsmon_receiver_throttled`` says so."""
    w = world
    await w.run_until(F - STEP)
    w.down.add("v05-pdt")
    await w.run_until(F + 290)
    window = w.service.deliverer._windows["duty-robot"]
    for _ in range(20):
        window.take(F + 290)
    await w.run_until(F + 300)
    assert len(w.duty.accepted) == 2  # the news and step 1; step 2 waits for a token
    from prometheus_client import REGISTRY
    assert REGISTRY.get_sample_value("commsmon_receiver_throttled",
                                     {"receiver": "duty-robot"}) == 1
    await w.run_until(F + 350)  # F + 290 + 60: a token is back, nothing was dropped
    assert "升级第 2 步" in _texts(w.duty)[2]
    assert REGISTRY.get_sample_value("commsmon_receiver_throttled",
                                     {"receiver": "duty-robot"}) == 0


async def test_a_step_can_tell_several_receivers_at_once(world_also: World) -> None:
    """The leader's step ``via: [leaders-robot], also: [sms]``: both get it at F + 900 s."""
    w = world_also
    await w.run_until(F - STEP)
    w.down.add("v05-pdt")
    await w.run_until(F + 900)
    (robot,), (sms,) = w.leaders.accepted, w.sms.accepted
    assert "升级第 3 步" in str(robot.body) and "升级第 3 步" in str(sms.body)
