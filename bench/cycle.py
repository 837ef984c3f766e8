"""One SNMP poll cycle of the demo inventory, and the daemon's memory.

Serves the demo fleet (snmpsim + links + Mosquitto), then
1. polls every SNMP device of config/demo.yaml once, all at once (bounded by
   the configured concurrency), five times, through each SNMP backend: wall
   seconds and CPU seconds per cycle, beside net-snmp's ``snmpget`` asking the
   same OIDs of every device (one process per device, as a shell loop would)
   in the same run;
2. runs ``commsmon run`` on the demo inventory for ``--seconds`` and reads its
   RSS from /proc.

Prints a table and writes bench/results/cycle.json.  Run: .venv/bin/python bench/cycle.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from commsmon.config.load import load_config
from commsmon.config.services import MqttSpec
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from commsmon.sources.snmp.gufo_backend import GufoClient
from commsmon.sources.snmp.poller import SnmpPoller, jobs_from_config
from commsmon.sources.snmp.pysnmp_backend import PysnmpClient

ROOT = Path(__file__).resolve().parent.parent


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (100 per second)."""
    return sum(int(x) for x in Path(f"/proc/{pid}/stat").read_text().split()[13:15])


async def main(seconds: float) -> dict[str, float]:
    config = load_config(ROOT / "config" / "demo.yaml")
    results: dict[str, float] = {}
    async with Mosquitto() as broker:
        mqtt = (config.mqtt or MqttSpec()).model_copy(update={"port": broker.port})
        config = config.model_copy(update={"mqtt": mqtt})
        async with SimFleet(config):
            jobs = jobs_from_config(config)
            oks = 0

            def sink(obs: object) -> None:
                nonlocal oks
                oks += bool(getattr(obs, "reachable", False))

            results["snmp_devices"] = len(jobs)
            for backend, client in (("gufo", GufoClient()), ("pysnmp", PysnmpClient())):
                async with client:
                    concurrency = config.defaults.snmp_concurrency
                    poller = SnmpPoller(client, jobs, sink, concurrency=concurrency)
                    await asyncio.gather(*(poller.poll(j) for j in jobs))  # warm-up
                    walls, cpus = [], []
                    for _ in range(5):
                        oks = 0
                        w0, c0 = time.perf_counter(), time.process_time()
                        await asyncio.gather(*(poller.poll(j) for j in jobs))
                        walls.append(time.perf_counter() - w0)
                        cpus.append(time.process_time() - c0)
                        assert oks == len(jobs), f"only {oks}/{len(jobs)} answered"
                results[f"cycle_wall_s_{backend}"] = statistics.median(walls)
                results[f"cycle_cpu_s_{backend}"] = statistics.median(cpus)

            # Peer: net-snmp snmpget, one process per device, same OIDs.
            w0 = time.perf_counter()
            for job in jobs:
                oids = sorted({oid for oid, _ in job.readings.values()})
                get = await asyncio.create_subprocess_exec(
                    "snmpget", "-v1" if job.target.version == "v1" else "-v2c",
                    "-c", job.target.community, "-t", "1", "-r", "1", "-Oqn",
                    f"{job.target.host}:{job.target.port}", *oids,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
                await get.wait()
            results["snmpget_sequential_wall_s"] = time.perf_counter() - w0

            # The demo config names port 1883; point the daemon at our broker instead.
            log = (ROOT / "bench" / "results" / "cycle-daemon.log").open("wb")
            tmp = ROOT / "bench" / "results" / "cycle-demo.yaml"
            text = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")
            text = text.replace("port: 1883 ", f"port: {broker.port} ", 1)
            profiles = ROOT / "config" / "profiles"
            text = text.replace("profiles_dir: profiles", f"profiles_dir: {profiles}")
            tmp.write_text(text, encoding="utf-8")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "commsmon", "run", "-c", str(tmp), "--listen-port", "0",
                stdout=log, stderr=subprocess.STDOUT,
            )
            samples = []
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                await asyncio.sleep(1)
                samples.append(_rss_mib(proc.pid))
            cpu = _cpu_ticks(proc.pid)
            proc.terminate()
            await proc.wait()
            results["daemon_rss_mib_end"] = samples[-1]
            results["daemon_rss_mib_max"] = max(samples)
            results["daemon_cpu_percent"] = 100 * cpu / 100 / seconds  # clock ticks at 100 Hz
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="daemon run, for RSS")
    args = parser.parse_args()
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    res = asyncio.run(main(args.seconds))
    print(f"{'measure':32} {'value':>10}")
    for k, v in res.items():
        print(f"{k:32} {v:10.3f}")
    for backend in ("gufo", "pysnmp"):
        print(f"ratio snmpget-sequential / commsmon {backend} cycle (wall): "
              f"{res['snmpget_sequential_wall_s'] / res[f'cycle_wall_s_{backend}']:.1f}x")
    (ROOT / "bench" / "results" / "cycle.json").write_text(json.dumps(res, indent=2))
