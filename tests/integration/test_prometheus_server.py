"""A real Prometheus server scrapes the daemon on the simulated fleet and evaluates every
PromQL expression of every Grafana dashboard and every rule file: each must parse and
return data.

The fleet is driven into the states the alert rules look for (a village isolated,
another's satellite phone gone, mains cut at a village not ready for it, a stale
check-in, at last the broker gone),
because an alert's expression is empty while nothing is wrong.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ruamel.yaml import YAML

from commsmon.config.load import load_config
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from tests.fleetharness import ROOT, DaemonProcess, free_port, value, write_config
from tests.receiverharness import RecordingReceiver, critical_to

pytestmark = pytest.mark.integration

GRAFANA = ROOT / "deploy" / "grafana"
RULES = ROOT / "deploy" / "prometheus" / "commsmon-rules.yml"
VILLAGE = "v01"  # the village detail dashboard is evaluated for this one
# Grafana's variables as a dashboard would fill them.
VARIABLES = {"$__rate_interval": "30s", "$__range": "1h", "$__interval": "15s",
             "$site": VILLAGE}


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every target and query variable of every dashboard."""
    out = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                # label_values(selector, label): the selector must find series.
                selector = re.fullmatch(r"label_values\((.*), *\w+\)", var["definition"])
                assert selector, var["definition"]
                out.append((f"{path.name} variable {var['name']}", selector.group(1)))
        for panel in board["panels"]:
            for target in panel["targets"]:
                out.append((f"{path.name} panel {panel['title']!r}", target["expr"]))
    return out


def rule_queries() -> list[tuple[str, str, bool]]:
    """(name, PromQL, is_alert) of every rule."""
    groups = YAML(typ="safe").load(RULES.read_text(encoding="utf-8"))["groups"]
    return [(r.get("alert") or r["record"], r["expr"], "alert" in r)
            for g in groups for r in g["rules"]]


def _fill(expr: str) -> str:
    for name, filled in VARIABLES.items():
        expr = expr.replace(name, filled)
    assert "$" not in expr, f"unfilled variable in {expr}"
    return expr


def test_dashboards_are_generated_and_use_the_datasource_variable() -> None:
    """The JSON files are what deploy/grafana/dashboards.py writes, and no panel names a
    fixed data-source UID."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dashboards", GRAFANA / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, text in module.render().items():
        assert (GRAFANA / "dashboards" / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run .venv/bin/python deploy/grafana/dashboards.py")
        board = json.loads(text)
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}"
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    assert {b for b in module.DASHBOARDS} == {"overview", "village", "availability",
                                               "self-health"}


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


@pytest.fixture
def prometheus_binary() -> str:
    exe = shutil.which("prometheus")
    assert exe, "Debian prometheus is needed (make deps installs it)"
    return exe


class Prometheus:
    """A Prometheus server on a free port with temporary storage."""

    def __init__(self, exe: str, directory: Path, target: str | list[tuple[str, int]]) -> None:
        """``target``: one instance, or (address, shard) of several: each target is
        labelled ``shard`` as deploy/prometheus/federation.yml shows, and alerts fire
        after 1 s instead of their ``for``."""
        rules = directory / "rules.yml"
        # Recording rules every 2 s instead of 5 min, so a short test sees them.
        text = RULES.read_text(encoding="utf-8").replace("interval: 5m", "interval: 2s")
        if isinstance(target, str):
            static = f"[{{targets: ['{target}']}}]"
        else:
            text = re.sub(r"for: \d+m", "for: 1s", text)
            static = "[" + ", ".join(f"{{targets: ['{address}'], labels: {{shard: '{shard}'}}}}"
                                     for address, shard in target) + "]"
        rules.write_text(text)
        config = directory / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{rules}]\n"
            "scrape_configs:\n"
            f"  - job_name: commsmon\n    static_configs: {static}\n")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = directory / "prometheus.log"
        self.proc = subprocess.Popen(
            [exe, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address={self.url.removeprefix('http://')}"],
            stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))

    async def query(self, session: aiohttp.ClientSession, expr: str) -> dict[str, Any]:
        async with session.get(f"{self.url}/api/v1/query", params={"query": expr}) as r:
            body: dict[str, Any] = await r.json()
            return body

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


@pytest.fixture
def prometheus_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    yield directory


async def _wait_data(prom: Prometheus, session: aiohttp.ClientSession, what: str, expr: str,
                     within: float = 30.0) -> list[Any]:
    """Query until the result is non-empty; fails on a parse error at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            body = await prom.query(session, expr)
        except aiohttp.ClientConnectorError:  # still starting
            assert loop.time() < deadline, prom.log.read_text(errors="replace")[-1500:]
            await asyncio.sleep(0.2)
            continue
        assert body["status"] == "success", f"{what}: {expr}\n{body}"
        if body["data"]["result"]:
            return list(body["data"]["result"])
        if loop.time() > deadline:
            raise AssertionError(f"{what}: no data for {expr}\n"
                                 f"{prom.log.read_text(errors='replace')[-1500:]}")
        await asyncio.sleep(0.5)


async def test_every_dashboard_and_rule_query_returns_data(
    tmp_path: Path, broker: Mosquitto, prometheus_binary: str, prometheus_dir: Path
) -> None:
    hook = RecordingReceiver()
    await hook.start()
    alerting = critical_to(hook)
    path, port = write_config(tmp_path, mqtt_port=broker.port, alerting=alerting)
    # v09's kit is said to send a test trap every second and sends none: trap path down.
    data = YAML().load(path.read_text(encoding="utf-8"))
    data["traps"] = {"listen": [f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}"]}
    next(s for s in data["sites"] if s["id"] == "v09")["trap_every"] = 1
    with path.open("w", encoding="utf-8") as f:
        YAML().dump(data, f)
    config = load_config(path)
    inventory = config.inventory()
    prom: Prometheus | None = None
    try:
        # The centre's generator on a 4 L tank (2 h at half load): cut, the centre's
        # reachability falls under 6 h, as in the demo's drill.
        low = {d.id: 0.01 for d in inventory.devices.values()
               if d.site == "centre" and d.kind == "generator"}
        async with SimFleet(config, telemetry_period=1.0, speed=60.0, fuel=low) as fleet:
            daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
            try:
                await daemon.wait_for("every device up", lambda s: all(
                    value(s, "commsmon_device_up", device=d.id) == 1
                    for d in inventory.devices.values() if d.source != "checkin"), within=40)
                prom = Prometheus(prometheus_binary, prometheus_dir, f"127.0.0.1:{port}")
                async with aiohttp.ClientSession() as session:
                    await _wait_data(prom, session, "scrape", 'up{job="commsmon"} == 1')
                    # Drive the fleet into what the alert rules look for.
                    s = await daemon.samples()
                    not_ready = sorted(
                        dict(labels)["site"] for (name, labels), v in s.items()
                        if name == "commsmon_site_scenario_ready" and v == 0
                        and dict(labels)["scenario"] == "power")
                    assert not_ready, "the demo must have a village not ready for a power cut"
                    for site in dict.fromkeys([not_ready[0], "v01", "centre"]):
                        await fleet.cut_mains(site)
                    fleet.take_down(fleet.site_devices("v05"))
                    fleet.take_down([d.id for d in inventory.devices.values()  # one channel lost
                                     if d.site == "v07" and d.channel == "satellite"])
                    handheld = next(d.id for d in inventory.devices.values()
                                    if d.source == "checkin")
                    old = (datetime.datetime.now(datetime.UTC)
                           - datetime.timedelta(days=8)).isoformat()
                    async with session.post(
                        f"{daemon.url}/api/v1/checkins",
                        headers={"Authorization": f"Bearer {config.http.token.get_secret_value()}"},  # type: ignore[union-attr]
                        json={"device": handheld, "result": "ok", "at": old}) as r:
                        assert r.status == 201, await r.text()
                    for where, expr in dashboard_queries():
                        await _wait_data(prom, session, where, _fill(expr), within=60)
                    for name, expr, _ in rule_queries():
                        if name == "CommsmonStateNotWritable":
                            # A full or read-only disk is the fault suite's (tests/faults);
                            # here the series it watches must exist.
                            expr = expr.replace("== 0", ">= 0")
                        if name in ("CommsmonDeviceLost", "CommsmonReceiverRejecting",
                                    "CommsmonReceiverThrottled"):
                            # The sim's kit is always registered and the hook accepts
                            # everything within its budget (tests/outputs/alerts rejects
                            # and throttles); the series must exist.
                            expr = expr.replace("== 1", ">= 0")
                        if name == "CommsmonNotificationsFailing":
                            # Every receiver's results start at 0: the series exist.
                            expr = expr.replace("> 0", ">= 0")
                        if name == "CommsmonSiteUnwatched":
                            continue  # one instance, no shards: tests/integration/test_shards
                        if name != "CommsmonMonitorCutOff":
                            await _wait_data(prom, session, name, expr, within=60)
                    # The last alert needs the monitor cut off: the broker goes.
                    await broker.kill()
                    await _wait_data(prom, session, "CommsmonMonitorCutOff", next(
                        e for n, e, _ in rule_queries() if n == "CommsmonMonitorCutOff"))
            finally:
                assert daemon.stop() == 0, daemon.log()[-2000:]
    finally:
        if prom is not None:
            prom.stop()
        await hook.close()
