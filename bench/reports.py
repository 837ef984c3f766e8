"""Reports from 400 days of history: the demo fleet (15 sites, 86 devices) with a
synthetic history written through the store's own calls, then a year's report counted
and written (XLSX and PDF), and a month's.

The history, per day over 400 days ending 2026-12-31: every polled device drops and
comes back ``--flaps`` times (default once a day, a 10-minute outage each — far more
than a healthy fleet, so the raw spans are many), its channel follows; every seventh
day a power outage at one village with its alert firing, acknowledged 4 minutes later
and resolved; a keeper's test call a week per hand-checked
device; the daemon's alive note; a 30-minute drill a month.  The peer is the least any
report must do: read every timeline row of the year once (``SELECT`` in the same
SQLite file).  Goal: the year's report in both formats under 10 s.

Run: .venv/bin/python bench/reports.py [--days 400]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commsmon.config.load import load_config  # noqa: E402
from commsmon.core.drills import Drill  # noqa: E402
from commsmon.core.types import CheckIn  # noqa: E402
from commsmon.outputs.reports.writer import write_report  # noqa: E402
from commsmon.outputs.wording import Wording  # noqa: E402
from commsmon.state.dutylog import DutyEntry, Event  # noqa: E402
from commsmon.state.store import Store  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
DAY = 86400.0
END = datetime(2027, 1, 1, tzinfo=TZ).timestamp()


def synthesise(store: Store, days: int, flaps: int = 1) -> int:
    """Write ``days`` days of the demo fleet's history, each polled device dropping
    ``flaps`` times a day; how many timeline rows."""
    config = load_config(ROOT / "config" / "demo.yaml")
    inventory = config.inventory()
    start = END - days * DAY
    polled = [d for d in inventory.devices.values() if d.source != "checkin"]
    hand = [d for d in inventory.devices.values() if d.source == "checkin"]
    rows = 0
    first = [Event(start, d.site, "device_state", d.id, "", "up") for d in polled]
    first += [Event(start, s, "site_state", s, "", "up") for s in inventory.sites]
    first += [Event(start, s, "readiness", f"{s}/{v}", "", "ready") for s in inventory.sites
              for v in ("network", "road", "power", "all", "now")]
    store.add_events(first)
    rows += len(first)
    for day in range(days):
        t0 = start + day * DAY
        events: list[Event] = []
        for n, d in enumerate(polled):
            for k in range(flaps):
                at = t0 + 3600 * (2 + 7 * k) + n * 13
                events += [Event(at, d.site, "device_state", d.id, "up", "down"),
                           Event(at + 600, d.site, "device_state", d.id, "down", "up")]
                if d.channel:
                    key = f"{d.site}/{d.channel}"
                    events += [Event(at, d.site, "channel_state", key, "up", "down"),
                               Event(at + 600, d.site, "channel_state", key, "down", "up")]
        villages = [s for s in inventory.sites if s != "centre"]
        site = villages[day % len(villages)]
        if day % 7 == 0:
            at = t0 + 15 * 3600
            events += [Event(at, site, "outage_start", "power"),
                       Event(at, site, "readiness", f"{site}/power", "ready", "not_ready"),
                       Event(at + 30, site, "alert_firing", "outage_active",
                             detail={"severity": "critical"}),
                       Event(at + 7200, site, "alert_resolved", "outage_active"),
                       Event(at + 7200, site, "readiness", f"{site}/power", "not_ready",
                             "ready"),
                       Event(at + 7200, site, "outage_end", "power")]
            store.add_duty(DutyEntry(at + 270, "zhang", "127.0.0.1", "ack", site,
                                     f"site:{site}", {}))
        if day % 7 == 3:
            for d in hand:
                store.add_checkin(CheckIn(d.id, t0 + 10 * 3600, True, "管理员"))
        if day % 30 == 10:
            at = t0 + 9 * 3600
            store.put_drill(Drill(f"D{day:04d}-{site}", site, "power", at, at + 1800, "张三",
                                  stopped=at + 1800), {"kit": []})
        store.add_events(events)
        rows += len(events)
        store.put_alive(t0 + DAY - 1)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--flaps", type=int, default=1, help="outages per device per day")
    args = parser.parse_args()
    config = load_config(ROOT / "config" / "demo.yaml")
    with tempfile.TemporaryDirectory(prefix="commsmon-bench-") as folder:
        path = Path(folder) / "commsmon.db"
        store = Store(path)
        began = time.perf_counter()
        rows = synthesise(store, args.days, args.flaps)
        written = time.perf_counter() - began
        size = path.stat().st_size
        w = Wording("zh", TZ)
        figures = {}
        for period, formats in (("2026", ["xlsx", "pdf"]), ("2026-11", ["xlsx", "pdf"]),
                                ("2026", ["xlsx"]), ("2026", ["pdf"])):
            began = time.perf_counter()
            write_report(store, config, config.inventory(), period, None, w, formats,
                         Path(folder))
            figures[f"{period} {'+'.join(formats)}"] = time.perf_counter() - began
        year = datetime(2026, 1, 1, tzinfo=TZ).timestamp()
        began = time.perf_counter()
        with sqlite3.connect(path) as db:
            scanned = sum(1 for _ in db.execute(
                "SELECT at, kind, subject, new FROM timeline WHERE at >= ? AND at < ?",
                (year, END)))
        peer = time.perf_counter() - began
        store.close()
    print(f"history: {args.days} days, {args.flaps} outage(s) per device per day, "
          f"{rows:,} timeline rows, {size / 2**20:.1f} MiB, "
          f"written in {written:.1f} s")
    print(f"peer: one SELECT of the year's {scanned:,} timeline rows: {peer:.2f} s")
    print(f"{'report':<22}{'seconds':>9}{'x peer':>9}   goal < 10 s")
    for name, seconds in figures.items():
        print(f"{name:<22}{seconds:>9.2f}{seconds / peer:>9.1f}   "
              f"{'ok' if seconds < 10 else 'OVER'}")
    out = ROOT / "bench" / "results" / "reports.json"
    out.write_text(json.dumps({"days": args.days, "flaps": args.flaps, "rows": rows, "bytes": size,
                               "peer_seconds": peer, "reports": figures}, indent=1) + "\n")


if __name__ == "__main__":
    main()
