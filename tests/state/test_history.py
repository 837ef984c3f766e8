"""History for the reports, written by the real evaluation loop into the real store
(SQLite), recounted by the accounting rules: states as first seen, every change, the
time the daemon did not run, on injected time.

The demo fleet from 10:00: every device answers; v05's router stops answering at
10:10 and is back at 10:30; the daemon stops at 10:40 and starts again at 11:40 (an
hour without a monitor); the question is asked for 10:00 .. 12:00:
  v05-router: up 10:00-10:10 (600 s), down 10:10-10:30 (1200 s), up 10:30-12:00
  (5400 s) of which 10:40-11:40 (3600 s) the monitor did not run: cut off, apart.
  up = 600 + 5400 - 3600 = 2400 s; availability = 2400 / (2400 + 1200) = 0.6667.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from commsmon.config.load import load_config
from commsmon.core.accounting import Window, availability, spans
from commsmon.core.types import Observation
from commsmon.daemon import Daemon
from commsmon.state.store import Store
from tests.fleetharness import DEMO

TZ = ZoneInfo("Asia/Shanghai")


def at(hhmm: str) -> float:
    return datetime.fromisoformat(f"2026-12-05 {hhmm}").replace(tzinfo=TZ).timestamp()


async def _run(store: Store, start: str, end: str, down: dict[str, tuple[str, str]]) -> None:
    """A run of the daemon from ``start`` to ``end``, evaluating every 10 s; ``down``:
    device -> the (from, to) it does not answer."""
    clock = [at(start)]
    daemon = Daemon(load_config(DEMO), clock=lambda: clock[0])
    daemon.store = store
    while clock[0] <= at(end):
        for device in daemon.fleet.inventory.devices.values():
            window = down.get(device.id)
            ok = window is None or not at(window[0]) <= clock[0] < at(window[1])
            daemon.fleet.observe(Observation(device.id, clock[0], ok, conclusive=not ok))
        await daemon.evaluation._once_more()
        clock[0] += 10.0


async def test_history_is_recounted_across_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "commsmon.db")
    await _run(store, "10:00", "10:40", {"v05-router": ("10:10", "10:30")})
    await _run(store, "11:40", "12:00", {})
    start, end = at("10:00"), at("12:00")
    gaps = [Window(a, b) for a, b in store.gaps(start, end)]
    (gap,) = gaps
    assert gap.start == pytest.approx(at("10:40"), abs=60) and gap.end == at("11:40")
    router = spans(store.state_changes("device_state", "v05-router", start, end), end)
    assert [s.state for s in router] == ["up", "down", "up"]
    a = availability(router, start, end, cut_off=gaps)
    assert a.down == pytest.approx(1200, abs=10)  # hysteresis: down after its checks
    assert a.ratio == pytest.approx(2400 / 3600, abs=0.01)
    verdicts = store.state_changes("readiness", "v05/power", start, end)
    assert verdicts and verdicts[0][0] == start  # each verdict, from the first evaluation
    # the village page shows what changed, not the states a run first saw
    shown = store.events("v05", 0, end + 1, 100)
    assert {e.kind for e in shown} <= {"device_state", "site_state", "alert_firing",
                                       "alert_resolved", "outage_start", "outage_end"}
    assert all(e.old for e in shown if e.kind == "device_state")
    store.close()
