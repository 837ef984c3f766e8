"""The district centre loses mains (the readiness issue's finding 1), end to end: the
real daemon on the simulated fleet sees the centre's own outage, judges the centre by
what the villages need of it, counts ``now`` down, names the repeater in every
village's PDT outlook, and sends the centre's alert to a DingTalk robot in Chinese."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from commsmon.config.load import load_config
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from tests.fleetharness import DaemonProcess, until, value, write_config
from tests.receiverharness import RecordingReceiver

pytestmark = pytest.mark.integration

SECRET = "SECdemo0123456789"


@pytest.fixture
async def robot() -> AsyncIterator[RecordingReceiver]:
    receiver = RecordingReceiver(dingtalk_secret=SECRET)
    await receiver.start()
    yield receiver
    await receiver.close()


async def test_centre_power_cut_is_the_centres_alert_and_every_villages_pdt370(
    tmp_path: Path, robot: RecordingReceiver
) -> None:
    """Centre UPS on battery, its generator on 4 L (2 h at half load): the centre's power
    outage and its now (under 6 h) alert in Chinese; v01's pdt370 outlook names the
    repeater and the time it gives out; Prometheus' series say the same."""
    assert robot.server is not None
    alerting = {
        "group_wait": 1, "group_interval": 2, "repeat_interval": 3600,
        "rules": {"outage_active": {"for": 1}},
        "receivers": [{"name": "duty", "type": "dingtalk", "secret": SECRET, "language": "zh",
                       "url": str(robot.server.make_url("/robot/send?access_token=t"))}],
    }
    async with Mosquitto() as broker:
        path, port = write_config(tmp_path, mqtt_port=broker.port, alerting=alerting)
        config = load_config(path)
        low = {"centre-genset": 0.01}
        # 60 simulated seconds a second: the 2 h of fuel last two real minutes.
        async with SimFleet(config, telemetry_period=1.0, speed=60, fuel=low) as fleet:
            daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
            try:
                await daemon.wait_for("the repeater and the centre's UPS up", lambda s: value(
                    s, "commsmon_device_up", device="centre-rpt1") == 1 and value(
                    s, "commsmon_device_up", device="centre-ups") == 1, within=40)
                await fleet.cut_mains("centre")
                await daemon.wait_for("the centre's power outage and its now short", lambda s:
                    value(s, "commsmon_site_outage_active", site="centre", outage="power") == 1
                    and value(s, "commsmon_site_scenario_ready", site="centre",
                              scenario="now") == 0
                    and (value(s, "commsmon_site_scenario_endurance_seconds", site="centre",
                               scenario="now") or 1e9) < 6 * 3600
                    and value(s, "commsmon_site_now_outages", site="v01") == 1, within=30)
                centre = await daemon.site("centre")
                now = centre["scenarios"]["now"]
                assert now["ready"] is False and now["until"] is not None
                assert "个村的PDT 370M 集群通道约" in now["reason"], now["reason"]
                assert "中心发电机" in now["reason"] and "油量" in now["reason"]
                village = await daemon.site("v01")
                pdt = village["scenarios"]["now"]["channels"]["pdt370"]
                assert pdt["survives"] is False and "370M PDT 中继台（centre-rpt1）" in \
                    pdt["reason"], pdt
                assert "PDT 370M 集群约" in village["scenarios"]["now"]["reason"]

                def centre_message() -> str | None:
                    for got in robot.accepted:
                        text = got.body.get("markdown", {}).get("text", "")
                        if "山亭区应急指挥中心" in text and "不足 6 小时" in text:
                            return str(text)
                    return None

                await until("the centre's countdown message", lambda: centre_message()
                            is not None, within=30)
                text = centre_message() or ""
                assert "正在断电" in text and "14 个村的PDT 370M 集群通道约" in text, text
                english = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9/_.-]*", text)
                           if not re.fullmatch(r"[A-Z0-9]+|[a-z0-9]+(-[a-z0-9]+)*|L|L/h|h|kW|"
                                               r"MHz|M|dBm", w)]
                assert not english, f"English in a Chinese message: {english}\n{text}"
            finally:
                assert daemon.stop() == 0, daemon.log()[-2000:]
