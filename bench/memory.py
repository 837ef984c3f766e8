"""Where a province's state lives: the daemon's per-device memory, by allocation site,
in one process in about 80 s.

``bench/daemon.py`` measures the whole daemon's RSS (issue 18's target: peak
< 150 MiB at 20 000 devices) but takes five minutes a run and says nothing of where
the bytes are.  This builds the same synthetic province (``commsmon.sim.scale``,
``--villages`` villages of 6 devices) and runs, in this process, what the daemon keeps
between evaluations: the fleet (``Fleet``), the alert rules (``AlertEngine`` with the
province's rule specs), the change log and the ``/metrics`` blocks kept compressed
(``FleetExposition``), through ``--minutes`` minutes of the daemon benchmark's traffic
(every device observed once a minute, the MQTT ones with fresh telemetry; evaluated
every 5 s, as a province is), with the daemon's garbage-collector settings.  Traced
with ``tracemalloc`` from before the setup is loaded (as the daemon loads it: worked
out in a child process, unpickled here), so the interpreter's and the libraries' own
are not counted.

Prints what is traced, split into the setup (settings, inventory, poll jobs, MQTT
routes, the exposition's label texts) and the state, in MiB and bytes per device;
the largest allocation sites (file:line, MiB, objects) and the same summed per file.
A diagnostic, with no peer: the daemon's RSS is more (allocator overhead and slack,
the sources' state such as poll schedules, counter baselines and the MQTT inbox, a
snapshot being scraped); ``bench/daemon.py`` measures that, against the target.

    .venv/bin/python bench/memory.py [--villages 3334] [--minutes 4] [--top 25]

Writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from evaluation import TELEMETRY  # noqa: E402

from commsmon.changelog import ChangeLog  # noqa: E402
from commsmon.config.compile import load_setup  # noqa: E402
from commsmon.core.fleet import Fleet  # noqa: E402
from commsmon.core.rules import AlertEngine  # noqa: E402
from commsmon.core.types import Observation  # noqa: E402
from commsmon.log import configure_logging  # noqa: E402
from commsmon.memory import tune_gc  # noqa: E402
from commsmon.sim.scale import write_province  # noqa: E402

T0 = 1_780_000_000.0
EVERY = 5.0  # seconds between evaluations, as a province's (commsmon.evaluation)


def _where(frame: tracemalloc.Frame) -> str:
    """``file:line``, the file relative to the repository, site-packages or the stdlib."""
    name = frame.filename
    for prefix in (str(ROOT) + "/", "/site-packages/", f"/python{sys.version_info[0]}."
                   f"{sys.version_info[1]}/"):
        if prefix in name:
            name = name.split(prefix, 1)[1]
            break
    return f"{name}:{frame.lineno}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--villages", type=int, default=3334)
    parser.add_argument("--minutes", type=int, default=4)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.minutes < 1:
        parser.error("--minutes: at least one minute of traffic")
    tune_gc()
    configure_logging("warning")  # the change log's lines: every site's first state
    with tempfile.TemporaryDirectory() as tmp:
        path = write_province(Path(tmp) / "province.yaml", args.villages,
                              [("127.0.0.1", 1161, f"c{i}") for i in range(5)])
        gc.collect()
        tracemalloc.start()
        setup = load_setup(path)  # as the daemon: worked out in a child, kept here
    inventory = setup.tracked
    devices = list(inventory.devices)
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0]
    fleet = Fleet(inventory, T0)
    alerting = setup.settings.alerting
    rules = AlertEngine(alerting.rule_specs(), tuple(alerting.countdown_hours))
    changes = ChangeLog()
    exposition = setup.exposition
    draw = random.Random(1)
    now = T0
    steps = int(60 / EVERY)
    for _ in range(args.minutes):
        order = draw.sample(devices, len(devices))
        for step in range(steps):  # each device once a minute, spread over it
            for d in order[step::steps]:
                telemetry = TELEMETRY.get(inventory.devices[d].profile or "")
                fleet.observe(Observation(d, now, True, telemetry(draw) if telemetry else {}))
            now += EVERY
            snap = fleet.evaluate(now)
            rules.update(snap)
            changes.events(snap)
        for _chunk in exposition.chunks(snap):  # a scrape a minute: its blocks kept
            pass
    del snap, _chunk
    gc.collect()
    taken = tracemalloc.take_snapshot()
    tracemalloc.stop()
    lines = taken.statistics("lineno")
    files: Counter[str] = Counter()
    for stat in lines:
        files[_where(stat.traceback[0]).rsplit(":", 1)[0]] += stat.size
    total = sum(s.size for s in lines)
    n = len(devices)
    print(f"{n} devices, {len(inventory.sites)} sites, {args.minutes} min of traffic")
    print("\n| traced | MiB | B per device |\n|---|---|---|")
    for what, size in (("setup (settings, inventory, poll jobs, MQTT routes)", kept),
                       ("state (fleet, rules, change log, kept blocks)", total - kept),
                       ("both", total)):
        print(f"| {what} | {size / 2**20:.1f} | {size / n:.0f} |")
    print("\n| allocated at | MiB | objects |\n|---|---|---|")
    for stat in lines[:args.top]:
        print(f"| {_where(stat.traceback[0])} | {stat.size / 2**20:.2f} | {stat.count} |")
    print("\n| file | MiB |\n|---|---|")
    for name, size in files.most_common(args.top):
        print(f"| {name} | {size / 2**20:.2f} |")
    out = ROOT / "bench" / "results" / "memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "devices": n, "setup_mib": kept / 2**20, "state_mib": (total - kept) / 2**20,
        "bytes_per_device": total / n,
        "lines": [(_where(s.traceback[0]), s.size, s.count) for s in lines[:args.top]],
        "files": files.most_common(args.top)}, indent=1))


if __name__ == "__main__":
    main()
