"""The whole daemon at province scale: 20 000 devices on one machine, or 100 000
over five shards.

A synthetic province (``commsmon.sim.scale``: per village a router, a camera
and a UPS over SNMP, a genset gateway, a satellite dock and a PDT terminal over
MQTT) of ``--devices`` devices: the SNMP half spread over net-snmp snmpd
instances with 2 000 communities each, the MQTT half as retained presence plus
one telemetry message per device per interval published by this script into
one Mosquitto.  ``commsmon run`` is a child process (``--shards N``: N of them,
each with ``shard: {index, count: N}`` and one MQTT share group, as
tests/integration/test_shards.py runs them), measured from /proc and its own
/metrics after one interval of warm-up, over ``--cycles`` intervals:

- CPU % of one core (issue 18's target < 15 %), RSS now and peak (< 150 MiB);
- worst poll lateness against the interval (target < 10 %);
- evaluation cost (fleet state, readiness, outages, alert rules), /metrics
  scrape time (< 0.5 s; median of three, each just after an evaluation: a new
  snapshot is rendered anew, as Prometheus, scraping less often than the daemon
  evaluates, finds it) and size, devices up.

Prints the table with each figure against its target (per shard), writes
bench/results/daemon.json.  Run: .venv/bin/python bench/daemon.py [--devices 20000]
[--shards 1]; the scale-out check: --devices 100000 --shards 5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commsmon.config.load import load_config  # noqa: E402
from commsmon.sim.broker import Mosquitto  # noqa: E402
from commsmon.sim.scale import province  # noqa: E402
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
    # Only the families read here: parsing a shard's 40 MB in Python took minutes.
    wanted = "\n".join(line for line in text.splitlines() if _wanted(line))
    for family in text_string_to_metric_families(wanted):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out, took, len(text.encode())


async def _new_snapshot_scrape(url: str, within: float = 120.0) -> float:
    """Seconds to scrape ``url`` just after the daemon evaluated again (its /healthz
    ``evaluation_age_seconds`` fell): each new snapshot is rendered anew, as every
    Prometheus scrape finds it when evaluations are more frequent than scrapes."""
    health = url.replace("/metrics", "/healthz")
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as s:
        async with s.get(health) as r:
            last = (await r.json())["evaluation_age_seconds"]
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            async with s.get(health) as r:
                age = (await r.json())["evaluation_age_seconds"]
            if age < last:
                break
            last = age
    return (await _scrape(url))[1]


FAMILIES = ("commsmon_evaluation_duration_seconds", "commsmon_snmp_poll_lateness_seconds",
            "commsmon_device_up", "commsmon_snmp_requests", "commsmon_mqtt_messages")
SUFFIXES = ("", "_bucket", "_count", "_sum", "_total", "_created")


def _wanted(line: str) -> bool:
    words = line.split(maxsplit=3)
    if line.startswith("#"):
        return len(words) > 2 and words[2] in FAMILIES
    name = line.partition("{")[0].partition(" ")[0]
    return any(name == family + suffix for family in FAMILIES for suffix in SUFFIXES)


def _sum(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for lbls, v in samples.get(name, []) if labels.items() <= lbls.items())


def _worst_lateness(before: dict, after: dict) -> float:  # type: ignore[type-arg]
    """Smallest histogram bound holding every poll made in between (an upper bound)."""
    name = "commsmon_snmp_poll_lateness_seconds_bucket"
    old = {lbls["le"]: v for lbls, v in before.get(name, [])}
    new = {lbls["le"]: v - old.get(lbls["le"], 0) for lbls, v in after.get(name, [])}
    total = new.get("+Inf", 0)
    return min((float(le) for le, n in new.items() if n >= total), default=float("inf"))


def _publisher(port: int, topics: list[tuple[str, str | None, str]], interval: float,
               stop: Any) -> None:
    """The simulated MQTT devices, in a process of their own: the measuring loop's
    scrapes must not hold their telemetry back."""
    asyncio.run(_publish(port, topics, interval, stop))


async def _publish(port: int, topics: list[tuple[str, str | None, str]], interval: float,
                   stop: Any) -> None:
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


def _shard_configs(data: dict[str, Any], shards: int, tmp: Path) -> list[tuple[Path, int]]:
    """One configuration per shard (as tests/integration/test_shards.py writes them):
    the same inventory, its own index, HTTP port, client id and state directory, one
    share group. Returns (path, HTTP port) per shard."""
    out = []
    for index in range(shards):
        port = free_port()
        shard = {**data, "http": {**data["http"], "port": port},
                 "state_dir": str(tmp / f"state-{index}")}
        if shards > 1:
            shard["shard"] = {"index": index, "count": shards}
            shard["mqtt"] = {**data["mqtt"], "share_group": "commsmon",
                             "client_id": f"commsmon-bench-{index}"}
        path = tmp / f"shard-{index}.yaml"  # JSON is YAML, and written 100x faster
        path.write_text(json.dumps(shard, ensure_ascii=False), encoding="utf-8")
        out.append((path, port))
    return out


async def _until_serving(url: str, proc: asyncio.subprocess.Process, log: Path,
                         within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            tail = await asyncio.to_thread(log.read_text, errors="replace")
            raise RuntimeError(f"daemon exited {proc.returncode}; its log ends:\n"
                               + tail[-3000:])
        try:
            async with aiohttp.ClientSession() as s, s.get(url) as r:
                await r.read()
            return
        except aiohttp.ClientError:
            await asyncio.sleep(1)
    raise RuntimeError(f"{url} did not answer within {within:.0f} s")


def _figures(before: dict, after: dict, cpu: float, wall: float,  # type: ignore[type-arg]
             interval: float) -> dict[str, float]:
    name = "commsmon_evaluation_duration_seconds"
    evals = _sum(after, f"{name}_count") - _sum(before, f"{name}_count")
    worst = _worst_lateness(before, after)
    return {
        "cpu_percent": 100 * cpu / wall,
        "worst_poll_lateness_s": worst, "worst_poll_lateness_ratio": worst / interval,
        "evaluations": evals,
        "evaluation_s": (_sum(after, f"{name}_sum") - _sum(before, f"{name}_sum"))
        / max(evals, 1),
        "devices_up": sum(1 for _, v in after.get("commsmon_device_up", []) if v == 1),
        "snmp_ok": _sum(after, "commsmon_snmp_requests_total", result="ok")
        - _sum(before, "commsmon_snmp_requests_total", result="ok"),
        "mqtt_ok": _sum(after, "commsmon_mqtt_messages_total", result="ok")
        - _sum(before, "commsmon_mqtt_messages_total", result="ok"),
    }


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
                data = province(villages, endpoints[:snmp_devices], mqtt_port=broker.port,
                                interval=args.interval)
                configs = _shard_configs(data, args.shards, tmp)
                config = load_config(configs[0][0])
                devices = len(config.inventory().devices)
                topics = [
                    (*config.topics(site, d), d.profile or "")
                    for site, d in config.devices() if d.mqtt is not None
                ]
                spawn = multiprocessing.get_context("spawn")
                stop = spawn.Event()
                publisher = spawn.Process(target=_publisher, args=(
                    broker.port, [(s, t, p) for s, t, p in topics if s], args.interval, stop))
                publisher.start()
                procs: list[asyncio.subprocess.Process] = []
                urls = []
                for index, (shard_path, port) in enumerate(configs):
                    log = (tmp / f"daemon-{index}.log").open("wb")
                    procs.append(await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "commsmon", "--log-format", "json", "run",
                        "-c", str(shard_path), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
                    urls.append(f"http://127.0.0.1:{port}/metrics")
                try:
                    print(f"{devices} devices ({snmp_devices} SNMP on {len(agents)} snmpd, "
                          f"{devices - snmp_devices} MQTT) over {args.shards} "
                          f"{'shard' if args.shards == 1 else 'shards'}; warming up "
                          f"{args.interval:.0f} s after every one serves", flush=True)
                    for n, (url, proc) in enumerate(zip(urls, procs, strict=True)):
                        await _until_serving(url, proc, tmp / f"daemon-{n}.log", 600)
                    await asyncio.sleep(args.interval)
                    before = [(await _scrape(url))[0] for url in urls]
                    c0, w0 = [_cpu_seconds(p.pid) for p in procs], time.monotonic()
                    await asyncio.sleep(args.interval * args.cycles)
                    cpu = [_cpu_seconds(p.pid) - c for p, c in zip(procs, c0, strict=True)]
                    wall = time.monotonic() - w0
                    shards: list[dict[str, float]] = []
                    for n, (url, proc) in enumerate(zip(urls, procs, strict=True)):
                        after, _, size = await _scrape(url)
                        scrapes = [await _new_snapshot_scrape(url) for _ in range(3)]
                        if proc.returncode is not None:
                            raise RuntimeError(f"daemon {n} exited {proc.returncode}")
                        shards.append({
                            **_figures(before[n], after, cpu[n], wall, args.interval),
                            "rss_mib": _status_mib(proc.pid, "VmRSS"),
                            "rss_peak_mib": _status_mib(proc.pid, "VmHWM"),
                            "scrape_s": sorted(scrapes)[1], "scrape_bytes": size})
                finally:
                    stop.set()
                    stopping = time.monotonic()
                    for proc in procs:
                        if proc.returncode is None:
                            proc.terminate()
                    codes = []
                    for proc in procs:
                        try:
                            codes.append(await asyncio.wait_for(proc.wait(), 60))
                        except TimeoutError:
                            proc.kill()
                            codes.append(await proc.wait())
                    stop_s = time.monotonic() - stopping
                    await asyncio.to_thread(publisher.join, 30)
            finally:
                for agent in agents:
                    agent.stop()
    result: dict[str, object] = {
        "devices": devices, "snmp_devices": snmp_devices, "interval_s": args.interval,
        "measured_s": round(wall, 1), "stop_s": stop_s, "stop_codes": codes,
        "shards": shards, **(shards[0] if args.shards == 1 else {})}
    _print(devices, args.interval, shards, stop_s, codes)
    return result


def _print(devices: int, interval: float, shards: list[dict[str, float]], stop_s: float,
           codes: list[int]) -> None:
    rows = [  # label, shown, target, measured against the target
        ("CPU, % of one core", lambda f: f"{f['cpu_percent']:.1f}", 15, "cpu_percent"),
        ("RSS now / peak, MiB", lambda f: f"{f['rss_mib']:.0f} / {f['rss_peak_mib']:.0f}",
         150, "rss_peak_mib"),
        ("worst poll lateness, s", lambda f: f"≤ {f['worst_poll_lateness_s']:g}",
         0.1 * interval, "worst_poll_lateness_s"),
        ("evaluation, s each (count)",
         lambda f: f"{f['evaluation_s']:.3f} ({f['evaluations']:.0f})", None, ""),
        ("new snapshot scrape, s (MB)",
         lambda f: f"{f['scrape_s']:.3f} ({f['scrape_bytes'] / 1e6:.1f})", 0.5, "scrape_s"),
        ("devices up", lambda f: f"{f['devices_up']:.0f}", None, ""),
    ]
    print(f"whole daemon, {devices} devices in all, {len(shards)} "
          f"{'instance' if len(shards) == 1 else 'shards'}")
    head = "".join(f"{'shard ' + str(n) if len(shards) > 1 else 'measured':>20}"
                   for n in range(len(shards)))
    print(f"{'':28}{head} {'target':>8} {'worst of target':>16}")
    for label, shown, bound, key in rows:
        cells = "".join(f"{shown(f):>20}" for f in shards)
        ratio = f"{max(f[key] for f in shards) / bound:15.2f}x" if bound else ""
        target = f"< {bound:g}" if bound else ""
        print(f"{label:28}{cells} {target:>8} {ratio:>16}")
    print(f"{'devices up, all shards':28}{sum(f['devices_up'] for f in shards):>20.0f}"
          f" of {devices}")
    print(f"{'SIGTERM to exit, s (codes)':28}{stop_s:>20.2f} {codes}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--shards", type=int, default=1,
                        help="split the province over this many instances (shard: index/count)")
    result = asyncio.run(main(parser.parse_args()))
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "daemon.json").write_text(json.dumps(result, indent=2))
