"""An HA pair: two daemons on one inventory, a lease in a real etcd, two real
Alertmanagers peered into a cluster, and real webhook receivers.

The leader sends to the direct webhook; both push to Alertmanager (each to its own
member), whose cluster delivers one notification.  The leader is SIGKILLed while it
fails to deliver a second village's alert: the standby takes over within two leases
and sends exactly what the leader had not told — the first village's alert not again,
the second's once — and Alertmanager still delivers one of each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from commsmon.config.load import load_config
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from commsmon.sim.hapeers import AlertmanagerCluster, Etcd
from tests.fleetharness import DaemonProcess, free_port, until, value, write_config
from tests.receiverharness import RecordingReceiver

pytestmark = pytest.mark.integration

LEASE = 3  # seconds


def _direct(hook: RecordingReceiver, site: str, status: str) -> list[Any]:
    """commsmon's own webhook notifications about ``site`` with ``status``."""
    return [r.body for r in hook.accepted if r.body["groupLabels"].get("site") == site
            and r.body["status"] == status]


def _via_am(hook: RecordingReceiver, site: str, status: str = "firing") -> list[Any]:
    """Alertmanager's notifications of ``site_isolated`` at ``site`` with ``status``."""
    return [r.body for r in hook.accepted if r.body["groupLabels"].get("site") == site
            and r.body["groupLabels"].get("alertname") == "site_isolated"
            and r.body["status"] == status]


def _pair_configs(tmp_path: Path, broker: int, hook: str, etcd: str,
                  ams: list[str], lease: int = LEASE) -> list[tuple[Path, int]]:
    base, _ = write_config(tmp_path, mqtt_port=broker)
    yaml = YAML()
    out = []
    for name in ("cc-a", "cc-b"):
        data = yaml.load(base.read_text(encoding="utf-8"))
        data["ha"] = {"replica": name, "etcd": [etcd], "lease": lease}
        data["mqtt"]["client_id"] = f"{data['mqtt']['client_id']}-{name}"
        data["http"]["port"] = free_port()
        data["state_dir"] = str(tmp_path / f"state-{name}")
        data["alerting"] = {
            "group_wait": 1, "group_interval": 2, "repeat_interval": 3600,
            "rules": {"site_isolated": {"for": 2}},
            # Each replica pushes to every member, as Prometheus does: members share
            # silences and what they notified, not alerts.
            "receivers": [
                {"name": "hook", "type": "webhook", "url": hook, "language": "en"},
                *({"name": f"am{j}", "type": "alertmanager", "url": url, "language": "en",
                   "heartbeat": 1} for j, url in enumerate(ams)),
            ],
            "routes": [{"match": {"severity": ["critical"]},
                        "receivers": ["hook", *(f"am{j}" for j in range(len(ams)))]}],
        }
        path = tmp_path / f"{name}.yaml"
        with path.open("w", encoding="utf-8") as f:
            yaml.dump(data, f)
        out.append((path, data["http"]["port"]))
    return out


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[RecordingReceiver, ...]]:
    """commsmon's webhook, Alertmanager's webhook, Alertmanager's watchdog."""
    hooks = (RecordingReceiver(), RecordingReceiver(), RecordingReceiver())
    for hook in hooks:
        await hook.start()
    yield hooks
    for hook in hooks:
        await hook.close()


def _beats(watchdog: RecordingReceiver, since: float) -> int:
    return sum(1 for r in watchdog.accepted if r.at >= since and any(
        a["labels"].get("alertname") == "monitor_heartbeat" for a in r.body["alerts"]))


async def _role(daemon: DaemonProcess, role: str, within: float) -> float:
    return await daemon.wait_for(f"role {role}", lambda s: value(
        s, "commsmon_ha_role", role=role) == 1, within=within)


async def test_the_pair_pages_once_and_the_standby_takes_over(
    tmp_path: Path, receivers: tuple[RecordingReceiver, ...],
) -> None:
    direct, am_hook, watchdog = receivers
    assert direct.server and am_hook.server and watchdog.server
    async with (Mosquitto() as broker, Etcd() as etcd,
                AlertmanagerCluster(str(am_hook.server.make_url("/am")),
                                    watchdog=str(watchdog.server.make_url("/watchdog"))
                                    ) as cluster):
        (path_a, port_a), (path_b, port_b) = _pair_configs(
            tmp_path, broker.port, str(direct.server.make_url("/hook")), etcd.endpoint,
            cluster.urls)
        config = load_config(path_a)
        async with SimFleet(config, telemetry_period=1.0) as fleet:
            a = DaemonProcess(path_a, port_a, tmp_path / "cc-a.log")
            b: DaemonProcess | None = None
            try:
                await _role(a, "leader", 30)
                b = DaemonProcess(path_b, port_b, tmp_path / "cc-b.log")
                await _role(b, "standby", 30)
                polled = [d.id for d in config.inventory().devices.values()
                          if d.source != "checkin"]
                for d in (a, b):
                    await d.wait_for("every polled device up", lambda s: all(
                        value(s, "commsmon_device_up", device=i) == 1 for i in polled), 40)

                # v05 isolated: one message from the leader, one from the AM cluster.
                await until("the watchdog hears the pair", lambda: _beats(watchdog, 0), 30)
                fleet.take_down(fleet.site_devices("v05"))
                await until("v05 told directly", lambda: _direct(direct, "v05", "firing"), 40)
                await until("v05 told by Alertmanager", lambda: _via_am(am_hook, "v05"), 40)

                # v06 isolated while the receiver fails: the leader holds it, then dies.
                direct.status = 500
                fleet.take_down(fleet.site_devices("v06"))
                await until("the leader tries v06", lambda: any(
                    r.body["groupLabels"].get("site") == "v06" for r in direct.requests), 40)
                a.kill()
                killed, killed_at = time.monotonic(), time.time()
                direct.status = 200
                await _role(b, "leader", 4 * LEASE)
                takeover = time.monotonic() - killed
                # The dead man's switch: the watchdog hears the pair while one lives.
                await until("a heartbeat after the kill", lambda: _beats(
                    watchdog, killed_at) >= 1, 30)
                assert takeover < 2 * LEASE + 1, takeover  # + 1: our scrape's own poll
                await until("v06 told by the new leader", lambda: _direct(
                    direct, "v06", "firing"), 30)
                await until("v06 told by Alertmanager", lambda: _via_am(am_hook, "v06"), 40)
                assert '"group": "site:v05", "notifications": 1, "kept": 0, "event": ' \
                    '"the leader told these; dropped"' in b.log()

                # Resolution comes from the new leader, once.
                fleet.bring_up(fleet.site_devices("v05"))
                await until("v05 resolved", lambda: _direct(direct, "v05", "resolved"), 40)
                await until("v05 resolved via AM", lambda: _via_am(am_hook, "v05", "resolved"),
                            40)
                await asyncio.sleep(6)  # past a group_interval of each: a repeat would show
                assert len(_direct(direct, "v05", "firing")) == 1
                assert len(_direct(direct, "v06", "firing")) == 1
                assert len(_direct(direct, "v05", "resolved")) == 1
                assert len(_via_am(am_hook, "v05")) == 1, [
                    (r.at, r.headers, r.body) for r in am_hook.accepted]
                assert len(_via_am(am_hook, "v06")) == 1
                assert len(_via_am(am_hook, "v05", "resolved")) == 1
            finally:
                if b is not None:
                    assert b.stop() == 0, b.log()[-3000:]
                if a.proc.poll() is None:
                    a.stop()
