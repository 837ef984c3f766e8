"""The whole daemon at province scale: 20 000 devices on one machine.

A synthetic province (``commsmon.sim.scale``: per village a router, a camera
and a UPS over SNMP, a genset gateway, a satellite dock and a PDT terminal over
MQTT) of ``--devices`` devices: the SNMP half spread over net-snmp snmpd
instances with 2 000 communities each, the MQTT half as retained presence plus
one telemetry message per device per interval published by this script into
one Mosquitto.  ``commsmon run`` is a child process, measured from /proc and
its own /metrics after one interval of warm-up, over ``--cycles`` intervals:

- CPU % of one core (target < 50 %), RSS now and peak (target < 200 MiB);
- worst poll lateness against the interval (target < 10 %);
- evaluation cost (fleet state, readiness, outages, alert rules), /metrics
  scrape time and size, devices up.

Prints the table with each figure against its target, writes
bench/results/daemon.json.  Run: .venv/bin/python bench/daemon.py [--devices 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import aiomqtt
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commsmon.config.load import load_config  # noqa: E402
from commsmon.sim.broker import Mosquitto  # noqa: E402
from commsmon.sim.scale import write_province  # noqa: E402
from tests.fleetharness import free_port  # noqa: E402
from tests.snmpd import Snmpd  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PER_AGENT = 2000  # communities (targets) per snmpd
TELEMETRY = {
    "genset-gateway": lambda: {"running": False, "mains": True, "fuel_pct": 80, "fuel_l": 160,
                               "load_pct": 0, "battery_v": 13.1},
    "satphone-dock": lambda: {"registered": True, "signal_bars": 4, "battery_pct": 96},
    "pdt-terminal": lambda: {"registered": True, "rssi_dbm": random.randint(-92, -84),
                             "battery_pct": 100},
}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split()
    return (int(fields[13]) + int(fields[14])) / TICKS


def _status_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _scrape(url: str) -> tuple[dict[str, list[tuple[dict[str, str], float]]], float, int]:
    started = time.perf_counter()
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        text = await r.text()
    took = time.perf_counter() - started
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out, took, len(text.encode())


def _sum(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for lbls, v in samples.get(name, []) if labels.items() <= lbls.items())


def _worst_lateness(before: dict, after: dict) -> float:  # type: ignore[type-arg]
    """Smallest histogram bound holding every poll made in between (an upper bound)."""
    name = "commsmon_snmp_poll_lateness_seconds_bucket"
    old = {lbls["le"]: v for lbls, v in before.get(name, [])}
    new = {lbls["le"]: v - old.get(lbls["le"], 0) for lbls, v in after.get(name, [])}
    total = new.get("+Inf", 0)
    return min((float(le) for le, n in new.items() if n >= total), default=float("inf"))


async def _publish(port: int, topics: list[tuple[str, str | None, str]], interval: float,
                   stop: asyncio.Event) -> None:
    """Retained presence for every MQTT device, then its telemetry once per interval."""
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-devices",
                              max_queued_outgoing_messages=100_000) as client:
        for status, _, _ in topics:
            await client.publish(status, "online", qos=1, retain=True)
        with_telemetry = [(t, p) for _, t, p in topics if t]
        gap = interval / max(1, len(with_telemetry))
        while not stop.is_set():
            started = time.monotonic()
            for n, (topic, profile) in enumerate(with_telemetry):
                body = {"ts": round(time.time(), 3), **TELEMETRY[profile]()}
                await client.publish(topic, json.dumps(body), qos=1)
                ahead = started + (n + 1) * gap - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
                if stop.is_set():
                    return


async def main(args: argparse.Namespace) -> dict[str, object]:
    villages = max(1, args.devices // 6)
    snmp_devices = 3 * villages + 1
    agents: list[Snmpd] = []
    communities = [f"c{n}" for n in range(PER_AGENT)]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        async with Mosquitto() as broker:
            try:
                endpoints = []
                for _ in range((snmp_devices + PER_AGENT - 1) // PER_AGENT):
                    agent = Snmpd(extra_communities=communities)
                    agent.start()
                    agents.append(agent)
                    endpoints += [("127.0.0.1", agent.port, c) for c in communities]
                path = write_province(tmp / "province.yaml", villages, endpoints[:snmp_devices],
                                      mqtt_port=broker.port, interval=args.interval)
                config = load_config(path)
                http_port = free_port()
                text = path.read_text().replace("port: 9470", f"port: {http_port}")
                path.write_text(text + f"state_dir: {tmp / 'state'}\n")
                devices = len(config.inventory().devices)
                topics = [
                    (*config.topics(site, d), d.profile or "")
                    for site, d in config.devices() if d.mqtt is not None
                ]
                stop = asyncio.Event()
                publisher = asyncio.create_task(_publish(
                    broker.port, [(s, t, p) for s, t, p in topics if s], args.interval, stop))
                log = (tmp / "daemon.log").open("wb")
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "commsmon", "--log-format", "json", "run",
                    "-c", str(path), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
                url = f"http://127.0.0.1:{http_port}/metrics"
                try:
                    print(f"{devices} devices ({snmp_devices} SNMP on {len(agents)} snmpd, "
                          f"{devices - snmp_devices} MQTT); warming up {args.interval:.0f} s",
                          flush=True)
                    await asyncio.sleep(args.interval)
                    before, _, _ = await _scrape(url)
                    c0, w0 = _cpu_seconds(proc.pid), time.monotonic()
                    await asyncio.sleep(args.interval * args.cycles)
                    cpu = _cpu_seconds(proc.pid) - c0
                    wall = time.monotonic() - w0
                    after, _, size = await _scrape(url)
                    scrapes = [(await _scrape(url))[1] for _ in range(3)]
                    rss, peak = _status_mib(proc.pid, "VmRSS"), _status_mib(proc.pid, "VmHWM")
                    if proc.returncode is not None:
                        raise RuntimeError(f"daemon exited {proc.returncode}")
                finally:
                    stop.set()
                    stopping = time.monotonic()
                    proc.terminate()
                    try:
                        await asyncio.wait_for(proc.wait(), 60)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()
                    stop_s = time.monotonic() - stopping
                    await asyncio.gather(publisher, return_exceptions=True)
            finally:
                for agent in agents:
                    agent.stop()
    name = "commsmon_evaluation_duration_seconds"
    evals = _sum(after, f"{name}_count") - _sum(before, f"{name}_count")
    eval_s = (_sum(after, f"{name}_sum") - _sum(before, f"{name}_sum")) / max(evals, 1)
    up = sum(1 for _, v in after.get("commsmon_device_up", []) if v == 1)
    worst = _worst_lateness(before, after)
    result: dict[str, object] = {
        "devices": devices, "snmp_devices": snmp_devices, "interval_s": args.interval,
        "measured_s": round(wall, 1), "cpu_percent": 100 * cpu / wall,
        "rss_mib": rss, "rss_peak_mib": peak,
        "worst_poll_lateness_s": worst, "worst_poll_lateness_ratio": worst / args.interval,
        "evaluations": evals, "evaluation_s": eval_s,
        "scrape_s": sorted(scrapes)[1], "scrape_bytes": size, "devices_up": up,
        "stop_s": stop_s, "stop_code": proc.returncode,
        "snmp_ok": _sum(after, "commsmon_snmp_requests_total", result="ok")
        - _sum(before, "commsmon_snmp_requests_total", result="ok"),
        "mqtt_ok": _sum(after, "commsmon_mqtt_messages_total", result="ok")
        - _sum(before, "commsmon_mqtt_messages_total", result="ok"),
    }
    rows = [
        ("CPU, % of one core", f"{result['cpu_percent']:.1f}", "< 50", 50),
        ("RSS now / peak, MiB", f"{rss:.0f} / {peak:.0f}", "< 200", 200),
        ("worst poll lateness, s", f"≤ {worst:g}", f"< {0.1 * args.interval:g}",
         0.1 * args.interval),
        ("evaluation, s each (count)", f"{eval_s:.3f} ({evals:.0f})", "", None),
        ("/metrics scrape, s (bytes)", f"{result['scrape_s']:.3f} ({size})", "< 1", 1),
        ("devices up", f"{up} of {devices}", "", None),
        ("SIGTERM to exit, s (code)", f"{stop_s:.2f} ({proc.returncode})", "< 20", 20),
    ]
    measured = {"CPU, % of one core": result["cpu_percent"], "RSS now / peak, MiB": peak,
                "worst poll lateness, s": worst, "/metrics scrape, s (bytes)": result["scrape_s"],
                "SIGTERM to exit, s (code)": stop_s}
    print(f"{'whole daemon, ' + str(devices) + ' devices':32} {'measured':>20} {'target':>8}"
          f" {'of target':>10}")
    for label, shown, target, bound in rows:
        ratio = f"{float(measured[label]) / bound:9.2f}x" if bound else ""  # type: ignore[arg-type]
        print(f"{label:32} {shown:>20} {target:>8} {ratio:>10}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--cycles", type=int, default=2)
    result = asyncio.run(main(parser.parse_args()))
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "daemon.json").write_text(json.dumps(result, indent=2))
