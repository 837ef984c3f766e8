"""Receivers that reject our messages raise a fault, a gauge and a ``monitor_fault``.

Against robot stand-ins on 127.0.0.1 (real aiohttp servers): which answers are
rejections (not mere failures), the deliverer's fault and gauge, their survival
across a restart, and end to end through the daemon.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY

from commsmon.config.load import load_config
from commsmon.core.alerting import Alert, Notification
from commsmon.core.facts import Fact
from commsmon.outputs.alerts.base import Receiver
from commsmon.outputs.alerts.delivery import Deliverer
from commsmon.outputs.alerts.receivers import (
    DingTalkReceiver,
    FeishuReceiver,
    WebhookReceiver,
    WeComReceiver,
)
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from commsmon.state.outbox import Outbox
from tests.fleetharness import DaemonProcess, until, value, write_config
from tests.receiverharness import RecordingReceiver

T0 = 1_764_400_000.0
TOKEN = "t0k3n-secret-robot-token"
KEYWORDS = {"errcode": 310000, "errmsg": "keywords not in content"}


class Robot:
    """A robot stand-in answering ``status`` with ``body``."""

    def __init__(self) -> None:
        self.status, self.body = 200, {"errcode": 0, "errmsg": "ok"}
        self.url = ""

    async def handle(self, _: web.Request) -> web.Response:
        return web.json_response(self.body, status=self.status)


@pytest.fixture
async def robot() -> AsyncIterator[Robot]:
    r = Robot()
    app = web.Application()
    app.router.add_post("/{tail:.*}", r.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    r.url = str(server.make_url("/send")) + f"?access_token={TOKEN}"
    try:
        yield r
    finally:
        await server.close()


def note(key: str, receiver: str, group: str = "site:v01") -> Notification:
    alert = Alert("site_isolated", "critical", {"site": group.removeprefix("site:")}, (), T0)
    return Notification(key=key, receiver=receiver, group=group, status="firing",
                        alerts=(alert,), created_at=T0)


def _receiver(kind: str, url: str) -> Receiver:
    if kind == "dingtalk":
        return DingTalkReceiver(url, name="duty")
    if kind == "feishu":
        return FeishuReceiver(url, name="duty")
    if kind == "wecom":
        return WeComReceiver(url, name="duty")
    return WebhookReceiver(url, name="duty")


@pytest.mark.parametrize(
    ("kind", "status", "body", "code"),
    [
        ("dingtalk", 200, KEYWORDS, "310000"),
        ("dingtalk", 200, {"errcode": 310000, "errmsg": "sign not match"}, "310000"),
        ("dingtalk", 200, {"errcode": 300001, "errmsg": "token is not exist"}, "300001"),
        ("dingtalk", 200, {"errcode": 130101, "errmsg": "send too fast"}, None),
        ("dingtalk", 200, {"errcode": 460101, "errmsg": "message too long"}, None),
        ("dingtalk", 503, {"errcode": 500, "errmsg": "busy"}, None),
        ("dingtalk", 403, {"errcode": 88, "errmsg": "forbidden"}, "403"),
        ("feishu", 200, {"code": 19021, "msg": "sign match fail or timestamp is not within "
                         "one hour from current time"}, "19021"),
        ("feishu", 400, {"code": 19024, "msg": "Key Words Not Found"}, "19024"),
        ("feishu", 200, {"code": 11232, "msg": "frequency limited"}, None),
        ("feishu", 400, {"code": 9499, "msg": "Bad Request"}, None),
        ("wecom", 200, {"errcode": 93000, "errmsg": "invalid webhook url"}, "93000"),
        ("wecom", 200, {"errcode": 45009, "errmsg": "api freq out of limit"}, None),
        ("webhook", 401, {"error": "unauthorized"}, "401"),
        ("webhook", 403, {"error": "forbidden"}, "403"),
        ("webhook", 400, {"error": "bad request"}, None),
        ("webhook", 500, {"error": "down"}, None),
        ("webhook", 429, {"error": "slow down"}, None),
    ],
)
async def test_rejection_or_failure(
    robot: Robot, kind: str, status: int, body: dict[str, Any], code: str | None
) -> None:
    """Only keyword/signature/IP/key codes and HTTP 401/403 reject us; rate limits, a message
    too long, 4xx of a malformed body and 5xx are failures."""
    robot.status, robot.body = status, body
    async with aiohttp.ClientSession() as session:
        result = await _receiver(kind, robot.url).send(note("k", "duty"), session)
    assert not result.ok
    assert (result.rejection.code if result.rejection else None) == code
    if result.rejection is not None:
        assert result.permanent
        assert result.rejection.detail == str(body.get("errmsg", body.get("msg", body)))[:100] \
            or kind == "webhook"


async def test_timeout_and_refused_are_not_rejections() -> None:
    """A robot that cannot be reached is failing, not rejecting."""
    async with aiohttp.ClientSession() as session:
        result = await DingTalkReceiver("http://127.0.0.1:9/send", name="duty").send(
            note("k", "duty"), session)
    assert not result.ok and result.rejection is None


async def test_rejection_detail_names_no_secret(robot: Robot) -> None:
    """A robot echoing our token back: the rejection's detail is scrubbed."""
    robot.body = {"errcode": 310000, "errmsg": f"ip not allowed for token {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        result = await DingTalkReceiver(robot.url, name="duty").send(note("k", "duty"), session)
    assert result.rejection is not None
    assert TOKEN not in result.rejection.detail and "***" in result.rejection.detail


# --- the deliverer: fault, gauge, and their memory ----------------------------------------


def gauge(receiver: str) -> float | None:
    return REGISTRY.get_sample_value("commsmon_receiver_rejecting", {"receiver": receiver})


@pytest.fixture
async def robots() -> AsyncIterator[tuple[RecordingReceiver, RecordingReceiver]]:
    duty, other = RecordingReceiver(reply=dict(KEYWORDS)), RecordingReceiver()
    await duty.start()
    await other.start()
    yield duty, other
    await duty.close()
    await other.close()


async def test_deliverer_raises_and_clears_the_fault(
    tmp_path: Path, robots: tuple[RecordingReceiver, RecordingReceiver]
) -> None:
    """310000 from one robot: its fault and gauge are raised and the other robot is served;
    once it accepts a message again both are cleared; failures in between change nothing."""
    duty_robot, other_robot = robots
    assert duty_robot.server is not None and other_robot.server is not None
    faults: dict[str, Fact | None] = {}
    box = Outbox(tmp_path / "outbox.db")
    clock = [T0]
    receivers = {
        "duty": DingTalkReceiver(str(duty_robot.server.make_url("/robot/send")), name="duty"),
        "other": DingTalkReceiver(str(other_robot.server.make_url("/robot/send")), name="other"),
    }
    d = Deliverer(box, receivers, clock=lambda: clock[0], on_fault=faults.__setitem__)
    try:
        box.add(note("duty/site:v01/0", "duty"), T0)
        box.add(note("other/site:v01/0", "other"), T0)
        await d.deliver_due(T0)
        assert len(other_robot.accepted) == 1 and len(duty_robot.requests) == 1
        assert faults["receiver:duty"] == Fact("receiver_rejecting", {
            "receiver": "duty", "code": "310000", "detail": "keywords not in content"})
        assert faults["receiver:other"] is None
        assert (gauge("duty"), gauge("other")) == (1, 0)
        assert REGISTRY.get_sample_value("commsmon_alert_notifications_total",
                                         {"receiver": "other", "result": "given_up"}) == 0

        duty_robot.status = 503  # failing now: still rejecting as far as we know
        box.add(note("duty/site:v02/0", "duty", "site:v02"), T0 + 1)
        await d.deliver_due(T0 + 1)
        assert gauge("duty") == 1 and faults["receiver:duty"] is not None

        duty_robot.status, duty_robot.reply = 200, {"errcode": 0, "errmsg": "ok"}
        clock[0] = T0 + 700  # past the failures' backoff
        await d.deliver_due(T0 + 700)
        assert duty_robot.accepted
        assert faults["receiver:duty"] is None and gauge("duty") == 0
    finally:
        await d.close()
        box.close()


async def test_rejecting_survives_a_restart_and_a_removed_receiver_is_cleared(
    tmp_path: Path, robots: tuple[RecordingReceiver, RecordingReceiver]
) -> None:
    """The state is saved in the outbox: a restart raises the fault again at once (no false
    resolution); a receiver dropped from the configuration has its fault cleared."""
    duty_robot, other_robot = robots
    assert duty_robot.server is not None and other_robot.server is not None
    duty_url = str(duty_robot.server.make_url("/robot/send"))
    other_url = str(other_robot.server.make_url("/robot/send"))
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    first = Deliverer(box, {"duty": DingTalkReceiver(duty_url, name="duty")}, clock=lambda: T0)
    box.add(note("duty/site:v01/0", "duty"), T0)
    await first.deliver_due(T0)
    assert first.rejecting["duty"].code == "310000"
    await first.close()
    box.close()

    faults: dict[str, Fact | None] = {}
    box = Outbox(path)
    again = Deliverer(box, {"duty": DingTalkReceiver(duty_url, name="duty")},
                      clock=lambda: T0 + 1, on_fault=faults.__setitem__)
    again.restore()
    await again.deliver_due(T0 + 1)  # nothing due: the fault comes from memory
    assert len(duty_robot.requests) == 1
    fact = faults["receiver:duty"]
    assert fact is not None and fact.args["code"] == "310000" and gauge("duty") == 1
    await again.close()
    box.close()

    faults.clear()
    box = Outbox(path)
    other = Deliverer(box, {"other": DingTalkReceiver(other_url, name="other")},
                      clock=lambda: T0 + 2, on_fault=faults.__setitem__)
    other.restore()
    await other.deliver_due(T0 + 2)
    assert faults == {"receiver:duty": None, "receiver:other": None}
    assert gauge("duty") is None and gauge("other") == 0
    assert json.loads(box.get_state("rejecting") or "") == {}
    await other.close()
    box.close()


# --- end to end: the daemon, two robots --------------------------------------------------


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


def _texts(r: RecordingReceiver) -> list[str]:
    return [req.body["markdown"]["text"] for req in r.accepted]


@pytest.mark.integration
async def test_daemon_alarms_through_the_other_robot(
    tmp_path: Path, broker: Mosquitto, robots: tuple[RecordingReceiver, RecordingReceiver]
) -> None:
    """DingTalk robot ``duty`` answers 310000: the other robot still gets the village alert,
    then the monitor_fault naming ``duty`` in Chinese; /metrics shows it rejecting.  Once
    ``duty`` accepts a message again the gauge is 0 and the monitor_fault resolves."""
    duty, other = robots
    assert duty.server is not None and other.server is not None
    alerting = {
        "group_wait": 1, "group_interval": 2, "repeat_interval": 3600,
        "rules": {"site_isolated": {"for": 2}, "monitor_fault": {"for": 2}},
        "receivers": [
            {"name": "duty", "type": "dingtalk", "language": "zh",
             "url": str(duty.server.make_url("/robot/send")) + "?access_token=t0k3n"},
            {"name": "other", "type": "dingtalk", "language": "zh",
             "url": str(other.server.make_url("/robot/send")) + "?access_token=0th3r"},
        ],
        "routes": [{"match": {"severity": ["critical", "warning"]},
                    "receivers": ["duty", "other"]}],
    }
    path, port = write_config(tmp_path, mqtt_port=broker.port, interval=2.0, alerting=alerting)
    config = load_config(path)
    async with SimFleet(config, telemetry_period=1.0) as fleet:
        daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
        try:
            inventory = config.inventory()
            await daemon.wait_for("every polled device up", lambda s: all(
                value(s, "commsmon_device_up", device=d.id) == 1
                for d in inventory.devices.values() if d.source != "checkin"), within=40)
            fleet.take_down(fleet.site_devices("v05"))
            await until("the village alert at the other robot",
                        lambda: any("占位村05" in t for t in _texts(other)), within=40)
            await until("the monitor_fault at the other robot",
                        lambda: any("duty" in t and "310000" in t for t in _texts(other)),
                        within=30)
            (fault,) = [t for t in _texts(other) if "duty" in t and "310000" in t]
            print("\n" + fault)
            assert "接收端 duty 拒收" in fault and "钉钉" in fault  # in Chinese, with the hint
            assert duty.requests and not duty.accepted
            s = await daemon.samples()
            assert value(s, "commsmon_receiver_rejecting", receiver="duty") == 1
            assert value(s, "commsmon_receiver_rejecting", receiver="other") == 0

            duty.reply = {"errcode": 0, "errmsg": "ok"}  # someone fixed the robot's keyword
            fleet.take_down(fleet.site_devices("v06"))  # the next message to duty passes
            await daemon.wait_for("duty accepting", lambda s: value(
                s, "commsmon_receiver_rejecting", receiver="duty") == 0, within=40)
            assert any("占位村06" in json.dumps(r.body, ensure_ascii=False)
                       for r in duty.accepted)
            await until("the monitor_fault resolved at the other robot", lambda: sum(
                "duty" in t and "310000" in t for t in _texts(other)) >= 2, within=30)
            firing, resolved = [t for t in _texts(other) if "duty" in t and "310000" in t]
            assert firing != resolved
            print(resolved)
        finally:
            assert daemon.stop() == 0, daemon.log()[-3000:]
