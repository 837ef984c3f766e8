"""commsmon's SNMP source beside Prometheus snmp_exporter, same snmpd, same OIDs, same run.

Part 1: GETs per CPU-second. A real net-snmp snmpd on loopback; the same five
scalar OIDs (sysDescr, sysUpTime, sysContact, sysName, sysLocation) asked
``--gets`` times through commsmon's poller path (client + decoding) with
each backend, CPU measured with ``time.process_time()``; and scraped as many
times from Debian's ``prometheus-snmp-exporter`` (HTTP included, as it is
always used), its CPU read from /proc.  Prints each rate and the ratio.

Part 2 (``--fleet N``): a fleet of N targets (distinct communities on a few
snmpd instances) polled by the daemon's poller at ``--interval`` seconds for
``--cycles`` intervals: CPU % of one core, RSS, and the worst poll lateness
against the interval.

Writes bench/results/snmp.json.  Run: .venv/bin/python bench/snmp.py [--fleet 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commsmon.config.profiles import ReadingSpec  # noqa: E402
from commsmon.core.types import Observation  # noqa: E402
from commsmon.sources.snmp.base import SnmpClient, SnmpTarget  # noqa: E402
from commsmon.sources.snmp.gufo_backend import GufoClient  # noqa: E402
from commsmon.sources.snmp.poller import PollJob, SnmpPoller  # noqa: E402
from commsmon.sources.snmp.pysnmp_backend import PysnmpClient  # noqa: E402
from tests.snmpd import Snmpd, free_udp_port  # noqa: E402

OIDS = [f"1.3.6.1.2.1.1.{n}.0" for n in (1, 3, 4, 5, 6)]
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split()
    return (int(fields[13]) + int(fields[14])) / TICKS


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _job(device: str, port: int, community: str, interval: float = 60.0) -> PollJob:
    readings = {f"r{i}": (oid, ReadingSpec(oid=oid, decode="text")) for i, oid in enumerate(OIDS)}
    target = SnmpTarget("127.0.0.1", port, "v2c", community, timeout=2.0, retries=0)
    return PollJob(device, target, interval, readings)


async def commsmon_rate(client: SnmpClient, port: int, gets: int) -> float:
    seen: list[Observation] = []
    poller = SnmpPoller(client, [], seen.append)
    job = _job("d", port, "public")
    await poller.poll(job)  # warm-up: session, engine
    c0 = time.process_time()
    for _ in range(gets):
        await poller.poll(job)
    cpu = time.process_time() - c0
    assert all(o.reachable for o in seen)
    return gets / cpu


async def exporter_rate(port: int, gets: int, tmp: Path) -> float:
    exe = shutil.which("prometheus-snmp-exporter") or shutil.which("snmp_exporter")
    if exe is None:
        raise SystemExit("needs Debian prometheus-snmp-exporter (apt-get install it)")
    conf = tmp / "snmp.yml"
    metrics = "\n".join(
        f"      - {{name: m{i}, oid: {oid[:-2]}, type: DisplayString}}"
        for i, oid in enumerate(OIDS))
    conf.write_text(
        "five:\n  version: 2\n  auth: {community: public}\n  timeout: 2s\n  retries: 0\n"
        f"  get: [{', '.join(OIDS)}]\n  metrics:\n{metrics}\n")
    http = free_udp_port()
    proc = await asyncio.create_subprocess_exec(
        exe, f"--config.file={conf}", f"--web.listen-address=127.0.0.1:{http}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{http}/snmp?target=127.0.0.1:{port}&module=five"
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(100):
                try:
                    async with s.get(url) as r:
                        if r.status == 200 and "m1" in await r.text():
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            c0 = _cpu_seconds(proc.pid)
            for _ in range(gets):
                async with s.get(url) as r:
                    await r.read()
            cpu = _cpu_seconds(proc.pid) - c0
    finally:
        proc.terminate()
        await proc.wait()
    return gets / cpu


async def fleet(targets: int, interval: float, cycles: int, tmp: Path) -> dict[str, float]:
    """N targets over a few snmpd instances, each with many communities."""
    per_agent = 2000
    agents: list[Snmpd] = []
    communities = [f"c{n}" for n in range(per_agent)]
    jobs = []
    try:
        for a in range((targets + per_agent - 1) // per_agent):
            agent = Snmpd(extra_communities=communities)
            agent.start()
            agents.append(agent)
            for n in range(min(per_agent, targets - a * per_agent)):
                jobs.append(_job(f"a{a}-{n}", agent.port, communities[n], interval))
        lateness: list[float] = []
        seen = 0

        def sink(_: Observation) -> None:
            nonlocal seen
            seen += 1

        async with GufoClient() as client:
            poller = SnmpPoller(client, jobs, sink, concurrency=256)
            task = asyncio.create_task(poller.run())
            await asyncio.sleep(interval)  # first cycle spreads the start
            rss0, c0, w0 = _rss_mib(), time.process_time(), time.monotonic()
            from commsmon.selfmetrics import SNMP_LATENESS
            before = SNMP_LATENESS.collect()[0].samples
            await asyncio.sleep(interval * cycles)
            cpu, wall = time.process_time() - c0, time.monotonic() - w0
            after = SNMP_LATENESS.collect()[0].samples
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        worst = _worst_bucket(before, after)
        lateness.append(worst)
        return {"targets": targets, "interval_s": interval, "cpu_percent": 100 * cpu / wall,
                "rss_mib": _rss_mib(), "rss_growth_mib": _rss_mib() - rss0,
                "polls": seen, "worst_lateness_s": worst,
                "worst_lateness_ratio": worst / interval}
    finally:
        for agent in agents:
            agent.stop()


def _worst_bucket(before: list, after: list) -> float:  # type: ignore[type-arg]
    """The smallest bucket bound that holds every poll made in between (buckets are
    cumulative): an upper bound of the worst lateness."""
    old = {s.labels["le"]: s.value for s in before if s.name.endswith("_bucket")}
    new = {s.labels["le"]: s.value - old.get(s.labels["le"], 0)
           for s in after if s.name.endswith("_bucket")}
    total = new.get("+Inf", 0)
    return min((float(le) for le, n in new.items() if n >= total), default=float("inf"))


async def main(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp, Snmpd() as agent:
        rates = {
            "gufo": await commsmon_rate(GufoClient(), agent.port, args.gets),
            "pysnmp": await commsmon_rate(PysnmpClient(), agent.port, args.gets),
            "snmp_exporter": await exporter_rate(agent.port, args.gets, Path(tmp)),
        }
        out["gets_per_cpu_second"] = rates
        print(f"{'GETs of 5 OIDs per CPU-second':34} {'rate':>10} {'vs snmp_exporter':>17}")
        for name, rate in rates.items():
            print(f"{name:34} {rate:10.0f} {rate / rates['snmp_exporter']:16.2f}x")
        if args.fleet:
            result = await fleet(args.fleet, args.interval, args.cycles, Path(tmp))
            out["fleet"] = result
            print(json.dumps(result, indent=2))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--fleet", type=int, default=0, help="targets for part 2 (0: skip)")
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--cycles", type=int, default=2)
    result = asyncio.run(main(parser.parse_args()))
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "snmp.json").write_text(json.dumps(result, indent=2))
