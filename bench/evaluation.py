"""The core's evaluation of a province, incremental against full, in one process.

A synthetic province (``commsmon.sim.scale``, ``--villages`` villages of 6
devices, 20 005 devices by default) every device of which has answered; then:

- a steady evaluation (nothing changed since the last) — incremental
  (``Fleet``, judgements kept while what they read is unchanged) against full
  (``Fleet(incremental=False)``, the peer: every site's scenarios and every
  device's endurance judged again);
- evaluations after ``k`` devices (villages' routers, taken down) changed, for
  k in 1, 10, 100, 1000: the cost per changed device above the steady cost;
- churn: two thirds of the devices observed again between evaluations, the MQTT
  ones with fresh telemetry (a PDT terminal's RSSI varies), as in
  ``bench/daemon.py``'s minute — incremental against full.

CPU seconds (``time.process_time``), median of ``--repeat`` runs, with the
garbage collector as the daemon sets it (``commsmon.memory.tune_gc``) and
collected before each timed run: what an evaluation leaves for the collector
is part of its cost (with CPython's defaults it was half of the daemon's).

    .venv/bin/python bench/evaluation.py [--villages 3334] [--repeat 5]

Writes bench/results/evaluation.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commsmon.config.load import load_config  # noqa: E402
from commsmon.core.fleet import Fleet  # noqa: E402
from commsmon.core.model import Inventory  # noqa: E402
from commsmon.core.types import Observation, Reading  # noqa: E402
from commsmon.memory import tune_gc  # noqa: E402
from commsmon.sim.scale import write_province  # noqa: E402

T0 = 1_780_000_000.0


def _answered(inventory: Inventory, incremental: bool) -> tuple[Fleet, float]:
    fleet = Fleet(inventory, T0, incremental=incremental)
    for at in (T0, T0 + 1):  # up_after: 2 answers
        for device in inventory.devices:
            fleet.observe(Observation(device, at, True, {}))
        fleet.evaluate(at + 0.5)
    return fleet, T0 + 2


TELEMETRY: dict[str, Callable[[random.Random], dict[str, Reading]]] = {
    # bench/daemon.py's payloads, as the profiles decode them (reading names, scaled)
    "pdt-terminal": lambda r: {"registered": True, "rssi": float(r.randint(-92, -84)),
                               "charge": 1.0},
    "genset-gateway": lambda r: {"running": False, "mains_present": True, "fuel": 0.8,
                                 "fuel_litres": 160.0, "load": 0.0, "battery_volts": 13.1},
    "satphone-dock": lambda r: {"registered": True, "signal": 4.0, "charge": 0.96},
}


def _churned(inventory: Inventory, incremental: bool, repeat: int) -> float:
    """Median CPU s of an evaluation 40 s after the last, two thirds of the devices
    having been observed in between (the same draws for both kinds of fleet)."""
    draw = random.Random(1)
    fleet, now = _answered(inventory, incremental)
    devices = list(inventory.devices)
    runs = []
    for _ in range(repeat):
        now += 40.0
        for d in draw.sample(devices, len(devices) * 2 // 3):
            telemetry = TELEMETRY.get(inventory.devices[d].profile or "")
            fleet.observe(Observation(d, now - 1, True, telemetry(draw) if telemetry else {}))
        runs.append(_timed(fleet, now))
    return statistics.median(runs)


def _timed(fleet: Fleet, now: float) -> float:
    gc.collect()  # what earlier runs left is not this one's cost
    start = time.process_time()
    fleet.evaluate(now)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--villages", type=int, default=3334)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tune_gc()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_province(Path(tmp) / "province.yaml", args.villages,
                              [("127.0.0.1", 1161, f"c{i}") for i in range(5)])
        inventory = load_config(path).inventory()
    routers = [d for d, dev in inventory.devices.items() if dev.kind == "router"]
    print(f"{len(inventory.devices)} devices, {len(inventory.sites)} sites")
    steady = {}
    for name, incremental in (("full", False), ("incremental", True)):
        fleet, now = _answered(inventory, incremental)
        runs = []
        for _ in range(args.repeat):
            now += 1.0
            runs.append(_timed(fleet, now))
        steady[name] = statistics.median(runs)
    changed = {}
    for k in (1, 10, 100, 1000):
        runs = []
        for r in range(args.repeat):
            fleet, now = _answered(inventory, True)
            fleet.evaluate(now)
            for device in routers[r * k % len(routers):][:k]:
                fleet.observe(Observation(device, now + 1, False, {}, conclusive=True))
            runs.append(_timed(fleet, now + 1.5))
        changed[k] = statistics.median(runs)
    churn = {name: _churned(inventory, incremental, args.repeat)
             for name, incremental in (("full", False), ("incremental", True))}
    print("\n| evaluation | CPU s | vs full |\n|---|---|---|")
    print(f"| full, nothing changed (peer) | {steady['full']:.3f} | 1.00 |")
    print(f"| incremental, nothing changed | {steady['incremental']:.3f} | "
          f"{steady['incremental'] / steady['full']:.2f} |")
    for k, cost in changed.items():
        per = (cost - steady["incremental"]) / k * 1000
        print(f"| incremental, {k} routers down | {cost:.3f} | {cost / steady['full']:.2f} | "
              f"{per:.2f} ms per changed device")
    print(f"| full, 2/3 of the devices observed again | {churn['full']:.3f} | 1.00 |")
    print(f"| incremental, 2/3 of the devices observed again | {churn['incremental']:.3f} | "
          f"{churn['incremental'] / churn['full']:.2f} |")
    out = ROOT / "bench" / "results" / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"devices": len(inventory.devices), "steady": steady,
                               "changed": changed, "churn": churn}, indent=1))


if __name__ == "__main__":
    main()
