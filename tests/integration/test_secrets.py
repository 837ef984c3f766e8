"""No secret value ever appears in the logs or on /metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.fleetharness import DaemonProcess, free_port, value, write_config

pytestmark = pytest.mark.integration

TOKEN = "tok-9f2c1d-secret"
ROBOT_KEY = "robotkey-77aa-secret"
ROBOT_SECRET = "SECrobot-31bb-secret"


async def test_secrets_stay_out_of_logs_and_metrics(tmp_path: Path) -> None:
    """Token and robot secrets from files; the daemon runs, rejects a bad token, tries the
    robot (nothing listens), and neither its log nor /metrics shows any secret."""
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "robot").write_text(ROBOT_SECRET)
    dead = free_port()
    alerting = {
        "group_wait": 0, "rules": {"monitor_cut_off": {"for": 0}},
        "receivers": [{"name": "duty", "type": "dingtalk",
                       "url": f"http://127.0.0.1:{dead}/robot/send?access_token={ROBOT_KEY}",
                       "secret": f"${{file:{tmp_path / 'robot'}}}"}],
    }
    path, port = write_config(tmp_path, mqtt_port=free_port(), alerting=alerting)
    text = path.read_text().replace("token: demo-token", f"token: ${{file:{tmp_path / 'token'}}}")
    path.write_text(text)
    daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
    try:
        # The broker is absent: monitor_cut_off fires and the robot is tried, and fails.
        await daemon.wait_for("a failed delivery", lambda s: (value(
            s, "commsmon_alert_notifications_total", receiver="duty", result="failed") or 0) >= 1,
            within=40)
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{daemon.url}/api/v1/checkins", json={"device": "v04-sathand",
                              "result": "ok"}, headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401
            async with s.post(f"{daemon.url}/api/v1/checkins", json={"device": "v04-sathand",
                              "result": "ok"}, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                assert r.status == 201
        metrics = await daemon.text()
        await asyncio.sleep(0.5)
    finally:
        assert daemon.stop() == 0
    log = daemon.log()
    assert "robot" in log or "duty" in log  # the failure was logged ...
    for secret in (TOKEN, ROBOT_KEY, ROBOT_SECRET):
        assert secret not in log  # ... without any secret
        assert secret not in metrics
