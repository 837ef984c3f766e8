"""/metrics render time and size at 1 000 and 20 000 devices.

Builds a synthetic province (commsmon.sim.scale), feeds every device an
answer with its readings, evaluates the fleet, and renders the exposition
through commsmon's renderer, five times each: a first render (a new
exposition: every block written) and a new snapshot's (a twelfth of the devices
answered again with other readings since the last render: the blocks that did
not change are reused); beside it, the same number of series rendered from plain
prometheus_client labelled gauges (what a daemon that scattered ``.set()``
calls would serve) in the same run.  Render times include the gzip a scrape
sends (the text of reused blocks is not even read again).

Prints a table with the ratio and writes bench/results/scrape.json.
Run: .venv/bin/python bench/scrape.py
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from commsmon.config.load import load_config
from commsmon.core.fleet import Fleet
from commsmon.core.snapshot import Snapshot
from commsmon.core.types import Observation
from commsmon.outputs.gzipmember import Member
from commsmon.outputs.metrics import FleetExposition
from commsmon.sim.scale import write_province

ROOT = Path(__file__).resolve().parent.parent
READINGS = {
    "uptime": 1234.5, "uplink_status": "up", "fuel": 0.8, "fuel_litres": 160.0, "load": 0.4,
    "battery_volts": 12.8, "alarms": 0.0, "running": False, "mains_present": True,
    "charge": 0.9, "signal": 4.0, "registered": True, "rssi": -85.0,
}


def measure(devices: int) -> dict[str, float]:
    villages = max(1, devices // 6)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_province(Path(tmp) / "p.yaml", villages, [("127.0.0.1", 16100, "x")])
        config = load_config(path)
    inventory = config.inventory()
    fleet = Fleet(inventory, 0.0)
    fleet.set_source("mqtt", True, 0.0)
    for d in inventory.devices:
        fleet.observe(Observation(d, 1.0, True, READINGS))
    snap = fleet.evaluate(2.0)
    body = FleetExposition(config).render(snap)
    first = [_served(FleetExposition(config), snap) for _ in range(5)]
    exposition, ids, again = FleetExposition(config), list(inventory.devices), []
    _served(exposition, snap)
    for n in range(5):
        for d in random.Random(n).sample(ids, len(ids) // 12):
            fleet.observe(Observation(d, 3.0 + n, True, {**READINGS, "rssi": -80.0 - n}))
        again.append(_served(exposition, fleet.evaluate(3.5 + n)))
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    # Peer: the same number of series as plain labelled gauges.
    plain = CollectorRegistry()
    gauge = Gauge("plain_value", "peer series", ["site", "device", "kind", "x"], registry=plain)
    for i in range(series):
        gauge.labels(f"s{i // 40}", f"d{i // 20}", "router", str(i % 20)).set(i)
    peer = []
    for _ in range(5):
        t = time.perf_counter()
        generate_latest(plain)
        peer.append(time.perf_counter() - t)
    return {"devices": len(inventory.devices), "series": series, "bytes": len(body),
            "render_s": statistics.median(first), "new_snapshot_s": statistics.median(again),
            "peer_render_s": statistics.median(peer)}


def _served(exposition: FleetExposition, snap: Snapshot) -> float:
    """Seconds to render ``snap`` as the gzip member a scrape is sent."""
    started = time.perf_counter()
    member = Member()
    for chunk in exposition.chunks(snap):
        if isinstance(chunk, bytes | bytearray):
            member.text(chunk)
        else:
            for piece in chunk:
                member.piece(piece)
    member.end()
    return time.perf_counter() - started


if __name__ == "__main__":
    rows = [measure(n) for n in (1_000, 20_000)]
    print(f"{'devices':>8} {'series':>8} {'MiB':>6} {'first s':>8} {'new s':>7} "
          f"{'peer s':>8} {'first/peer':>11}")
    for r in rows:
        print(f"{r['devices']:8.0f} {r['series']:8.0f} {r['bytes'] / 2**20:6.1f} "
              f"{r['render_s']:8.3f} {r['new_snapshot_s']:7.3f} {r['peer_render_s']:8.3f} "
              f"{r['render_s'] / r['peer_render_s']:11.2f}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scrape.json").write_text(json.dumps(rows, indent=2))
