"""Soak: the demo fleet for 30 minutes under random faults; the daemon must stay flat.

The real pieces on loopback, as in bench/latency.py: Mosquitto, the simulated
fleet of the demo inventory, ``commsmon run`` as a child process (2 s polls),
and a recording webhook receiver for critical alerts.  Every ``--fault-every``
seconds a random fault starts and undoes itself after 10-90 s, several at a
time, never two on one village:

network   a village's public channel cut (its router and what sits behind it)
devices   three devices of a village stop answering (SNMP dropped, MQTT offline)
black_hole one SNMP agent drops every packet
mains     a village's mains cut (UPS on battery, genset burning fuel)
broker    Mosquitto killed, started again 2-10 s later (persistence off)
agents    snmpsim restarted: every agent's sysUpTime and counters start over
receiver  the webhook answers 500
reload    SIGHUP with the same file

The daemon's RSS, open file descriptors, threads and event-loop tasks
(``commsmon_event_loop_tasks``) are read at start and end, both after the
fleet has settled (every device up again, faults over), and every minute in
between (printed as progress).  The start is taken after a 3-minute warm-up
under faults, so one-off allocations (first reconnect, first reload) are not
counted as growth.  At the end every notification must have been delivered
(outbox empty) and no village may be left isolated.

The peer is the daemon itself at start: the table prints end/start ratios,
plus the RSS trend of the minute samples (least squares, MiB per hour).

Writes bench/results/soak.json.
Run: .venv/bin/python bench/soak.py [--minutes 30] [--fault-every 20] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commsmon.config.load import load_config  # noqa: E402
from commsmon.sim.broker import Mosquitto  # noqa: E402
from commsmon.sim.fleet import SimFleet  # noqa: E402
from tests.fleetharness import DaemonProcess, Samples, value, write_config  # noqa: E402
from tests.receiverharness import RecordingReceiver, critical_to  # noqa: E402

VILLAGES = [f"v{n:02d}" for n in range(1, 15)]
FAULTS = ("network", "devices", "black_hole", "mains", "broker", "agents", "receiver",
          "reload")


def proc_figures(pid: int) -> dict[str, float]:
    """RSS and its peak (MiB), threads and open fds of a process, from /proc."""
    status = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines())
    return {
        "rss_mib": int(status["VmRSS"].split()[0]) / 1024,
        "peak_mib": int(status["VmHWM"].split()[0]) / 1024,
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


class Soak:
    """Starts random faults and undoes them; remembers what it did."""

    def __init__(self, fleet: SimFleet, broker: Mosquitto, hook: RecordingReceiver,
                 daemon: DaemonProcess, rng: random.Random) -> None:
        self.fleet, self.broker, self.hook, self.daemon, self.rng = \
            fleet, broker, hook, daemon, rng
        self.busy: set[str] = set()  # fault kinds and villages in use
        self.done: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self.tasks: set[asyncio.Task[None]] = set()

    def start_one(self) -> None:
        free = [k for k in FAULTS if k not in self.busy]
        villages = [v for v in VILLAGES if v not in self.busy]
        if not free or not villages:
            return
        kind, site = self.rng.choice(free), self.rng.choice(villages)
        task = asyncio.create_task(self._run(kind, site))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, kind: str, site: str) -> None:
        self.busy |= {kind, site}
        hold = self.rng.uniform(10, 90)
        try:
            await self._fault(kind, site, hold)
            self.done[kind] += 1
        finally:
            self.busy -= {kind, site}

    async def _fault(self, kind: str, site: str, hold: float) -> None:
        fleet, rng = self.fleet, self.rng
        undo: Callable[[], object]
        if kind == "network":
            fleet.cut_network(site)
            undo = lambda: fleet.restore_network(site)  # noqa: E731
        elif kind == "devices":
            ids = rng.sample(fleet.site_devices(site), 3)
            fleet.take_down(ids)
            undo = lambda: fleet.bring_up(ids)  # noqa: E731
        elif kind == "black_hole":
            device = rng.choice([d for d in fleet.site_devices(site) if d in fleet.links])
            fleet.links.cut(device)
            undo = lambda: fleet.links.restore(device)  # noqa: E731
        elif kind == "mains":
            await fleet.cut_mains(site)
            undo = lambda: fleet.restore_mains(site)  # noqa: E731
        elif kind == "broker":
            await self.broker.kill()
            hold = rng.uniform(2, 10)
            undo = self.broker.start
        elif kind == "agents":
            await fleet.agents.stop()
            hold = rng.uniform(1, 5)
            undo = fleet.agents.start
        elif kind == "receiver":
            self.hook.status = 500
            undo = lambda: setattr(self.hook, "status", 200)  # noqa: E731
        else:
            os.kill(self.daemon.proc.pid, signal.SIGHUP)
            return
        try:
            await asyncio.sleep(hold)
        finally:
            result = undo()
            if inspect.isawaitable(result):
                await result

    async def run_for(self, seconds: float, every: float, report: Callable[[], Awaitable[None]],
                      ) -> None:
        end = time.monotonic() + seconds
        next_report = time.monotonic() + 60
        while time.monotonic() < end:
            self.start_one()
            await asyncio.sleep(min(every, max(0.0, end - time.monotonic())))
            if time.monotonic() >= next_report:
                next_report += 60
                await report()
        if self.tasks:
            await asyncio.gather(*self.tasks)


async def settle(daemon: DaemonProcess, devices: list[str]) -> Samples:
    """Wait until every device is up, nothing is pending in the outbox and no village
    is isolated; then 20 s more."""
    def settled(s: Samples) -> bool:
        return (all(value(s, "commsmon_device_up", device=d) == 1 for d in devices)
                and value(s, "commsmon_outbox_pending") == 0
                and all(value(s, "commsmon_site_reachable", site=v) == 1 for v in VILLAGES))
    await daemon.wait_for("the fleet settled", settled, within=300)
    await asyncio.sleep(20)
    return await daemon.samples()


async def figures(daemon: DaemonProcess) -> dict[str, float]:
    s = await daemon.samples()
    return {**proc_figures(daemon.proc.pid),
            "tasks": value(s, "commsmon_event_loop_tasks") or 0.0,
            "devices_up": sum(v for (n, _), v in s.items() if n == "commsmon_device_up")}


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    return statistics.linear_regression([t for t, _ in points],
                                        [v for _, v in points]).slope * 3600


async def main(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="commsmon-soak-") as tmp:
        tmp_path = Path(tmp)
        async with Mosquitto() as broker:
            hook = RecordingReceiver()
            await hook.start()
            path, port = write_config(tmp_path, mqtt_port=broker.port, interval=args.interval,
                                      alerting=critical_to(hook))
            config = load_config(path)
            devices = [d.id for d in config.inventory().devices.values() if d.source != "checkin"]
            async with SimFleet(config, telemetry_period=5.0, speed=60.0) as fleet:
                daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
                soak = Soak(fleet, broker, hook, daemon, rng)
                trend: list[tuple[float, float]] = []
                t0 = time.monotonic()

                async def report() -> None:
                    f = await figures(daemon)
                    trend.append((time.monotonic() - t0, f["rss_mib"]))
                    print(f"  {(time.monotonic() - t0) / 60:5.1f} min  RSS {f['rss_mib']:6.1f} MiB"
                          f"  fds {f['fds']:4.0f}  threads {f['threads']:3.0f}"
                          f"  tasks {f['tasks']:4.0f}  faults so far {sum(soak.done.values())}",
                          flush=True)

                try:
                    await daemon.wait_for("every device up", lambda s: all(
                        value(s, "commsmon_device_up", device=d) == 1 for d in devices),
                        within=60)
                    print(f"warm-up: {args.warmup:.0f} s of faults", flush=True)
                    await soak.run_for(args.warmup, args.fault_every, report)
                    await settle(daemon, devices)
                    start = await figures(daemon)
                    trend.clear()
                    t0 = time.monotonic()
                    print(f"soak: {args.minutes:g} min, a fault every {args.fault_every:g} s",
                          flush=True)
                    await report()
                    await soak.run_for(args.minutes * 60, args.fault_every, report)
                    await settle(daemon, devices)
                    end = await figures(daemon)
                    log = daemon.log()
                finally:
                    code = daemon.stop()
                await hook.close()
    return {
        "minutes": args.minutes, "fault_every": args.fault_every, "seed": args.seed,
        "faults": soak.done, "start": start, "end": end,
        "rss_trend_mib_per_hour": slope_per_hour(trend), "minute_samples": trend,
        "notifications": len(hook.accepted), "exit_code": code,
        "tracebacks": log.count("Traceback"),
    }


def table(r: dict[str, Any]) -> str:
    start, end = r["start"], r["end"]
    rows = [("RSS, MiB", "rss_mib", "{:.1f}"), ("peak RSS, MiB", "peak_mib", "{:.1f}"),
            ("open fds", "fds", "{:.0f}"), ("threads", "threads", "{:.0f}"),
            ("event-loop tasks", "tasks", "{:.0f}"), ("devices up", "devices_up", "{:.0f}")]
    out = ["| | start | end | end ÷ start |", "|---|---|---|---|"]
    for label, key, fmt in rows:
        ratio = end[key] / start[key] if start[key] else float("nan")
        out.append(f"| {label} | {fmt.format(start[key])} | {fmt.format(end[key])} | "
                   f"{ratio:.2f} |")
    out.append(f"\nRSS trend over the minute samples: {r['rss_trend_mib_per_hour']:+.1f} MiB/h")
    out.append(f"faults: {r['faults']} ({sum(r['faults'].values())} in all); "
               f"notifications delivered: {r['notifications']}; "
               f"tracebacks in the log: {r['tracebacks']}; exit code: {r['exit_code']}")
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--fault-every", type=float, default=20.0, help="seconds")
    parser.add_argument("--warmup", type=float, default=180.0, help="seconds of faults first")
    parser.add_argument("--interval", type=float, default=2.0, help="SNMP poll interval, s")
    parser.add_argument("--seed", type=int, default=7)
    result = asyncio.run(main(parser.parse_args()))
    out = ROOT / "bench" / "results" / "soak.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"written to {out.relative_to(ROOT)}")
