"""A drill on injected time, through the real daemon (its evaluation loop, operations
and store) and the report's counting: the record it leaves, and real figures untouched.

The demo fleet, 2026-12-05 from 10:00, every device answering, evaluated every 10 s:

* 10:00:00 a power drill starts at v05 (石门村) for 30 minutes, by 张三.
* 10:00:10 the UPS v05-ups goes to battery (output_source battery): t+10 s.
* 10:00:40 the generator v05-genset is running: t+40 s.
* 10:06:00 the keeper's satellite test call gets through (v05-satphone): t+360 s,
  the first contact; expected within 900 s -> passed.
* 10:10 .. 10:20 v05-router does not answer, inside the drill: on the UPS and the
  generator it should not have — a network outage, not what a power drill plays, so a
  real one: counted, and its time not set apart.
* 10:30:00 the drill runs out (its ``until``); the UPS is back on mains.
* 11:00 .. 11:10 v05-router does not answer again: a real outage, after the drill.
* the daemon runs to 12:00.

Figures for v05-router over 2026-12 (monitored 10:00 .. 12:00, 7200 s):
  set apart: the drill's window 10:00-10:30 less the real outage in it 10:10-10:20
  = 1800 - 600 = 1200 s (with maintenance);
  down 10:10-10:20 and 11:00-11:10 = 1200 s; up = 7200 - 1200 - 1200 = 4800 s;
  availability = 4800 / (4800 + 1200) = 0.80.
  The power outage the drill played (10:00:10-10:30) is the drill's, not a real one;
  the two network outages are real.
The ``now`` view at the drill's end (mains lost at v05: its PDT terminal on the UPS on
the generator): the generator's tank 0.8 x 200 L = 160 L, its load not reported so the
expected 0.5 -> 1.5 L/h: 160 / 1.5 = 106.67 h >= 72 h -> the survive check passes.
At the start (the first evaluation, 10:00:00, mains still there) the ``now`` view is
unbounded.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from commsmon.config.load import load_config
from commsmon.core.drills import DrillError
from commsmon.core.types import CheckIn, Observation
from commsmon.daemon import Daemon
from commsmon.outputs.reports.figures import count
from commsmon.outputs.reports.writer import write_drill
from commsmon.outputs.wording import Wording
from commsmon.state.dutylog import Actor
from commsmon.state.store import Store
from tests.fleetharness import DEMO
from tests.pdftext import pdf_text

TZ = ZoneInfo("Asia/Shanghai")


def at(hhmm: str) -> float:
    return datetime.fromisoformat(f"2026-12-05 {hhmm}").replace(tzinfo=TZ).timestamp()


async def test_a_drill_leaves_its_record_and_the_real_figures_untouched(
        tmp_path: Path) -> None:
    config = load_config(DEMO)
    store = Store(tmp_path / "commsmon.db")
    clock = [at("10:00")]
    daemon = Daemon(config, clock=lambda: clock[0])
    daemon.store = store
    ops = daemon.operations
    while clock[0] <= at("12:00"):
        t = clock[0]
        for device in daemon.fleet.inventory.devices.values():
            if device.source == "checkin":
                continue
            router_down = device.id == "v05-router" and (
                at("10:10") <= t < at("10:20") or at("11:00") <= t < at("11:10"))
            readings: dict[str, float | str | bool] = {}
            if device.id == "v05-ups":
                readings = {"output_source": "battery" if at("10:00:10") <= t < at("10:30")
                            else "normal", "charge": 1.0}
            if device.id == "v05-genset":
                readings = {"running": at("10:00:40") <= t < at("10:30"), "fuel": 0.8}
            daemon.fleet.observe(Observation(device.id, t, not router_down, readings,
                                             conclusive=router_down))
        if t == at("10:00"):  # the fleet seen once: the drill starts
            drill = await ops.start_drill("v05", "power", at("10:30"), "月度演练",
                                          Actor("zhangsan", "127.0.0.1", "张三"))
            assert drill.id == "D20261205-1000-v05" and drill.by == "张三"
            with pytest.raises(DrillError) as refused:  # one drill at a site at a time
                await ops.start_drill("v05", "network", None, "", Actor("lisi"))
            assert refused.value.code == "running"
        if t == at("10:06"):
            await ops.record_checkin(CheckIn("v05-satphone", t, True, "王建国"),
                                     Actor("zhangsan"), "test_call")
        await daemon.evaluation._once_more()
        clock[0] += 10.0

    (record,) = await ops.drill_records(at("09:00"), at("13:00"))
    assert record.drill.stopped == at("10:30") and record.duration == 1800
    steps = [(k.offset, k.device, k.reading, k.new) for k in record.kit
             if k.reading in ("output_source", "running")]
    assert steps[:2] == [(10.0, "v05-ups", "output_source", "battery"),
                         (40.0, "v05-genset", "running", "True")]
    assert [(c.offset, c.device, c.channel, c.ok) for c in record.contacts] == [
        (360.0, "v05-satphone", "satellite", True)]
    assert record.first_contact == 360.0
    checks = {c.name: c for c in record.checks}
    assert checks["first_contact"].passed
    assert record.at_start is not None and record.at_end is not None
    assert record.at_start.at == at("10:00") and record.at_start.now_lower == float("inf")
    assert record.at_end.at == at("10:29:50")
    assert checks["survive"].actual == pytest.approx(160 / 1.5)
    assert checks["survive"].passed and record.passed

    # the drill's alerts and outages are its own; the router's real outage is counted
    report = count(store, daemon.fleet.inventory, "2026-12", TZ)
    router = report.devices["v05-router"]
    assert router.maintenance == pytest.approx(1200, abs=30)
    assert router.down == pytest.approx(1200, abs=30)
    assert router.ratio == pytest.approx(0.80, abs=0.01)
    assert [d.drill.id for d in report.drills] == [drill.id]
    real = [(o.kind, round((o.start - at("10:00")) / 60)) for o in report.outages
            if o.site == "v05"]
    assert real == [("network", 10), ("network", 60)]
    # the drill's power outage, in two: the UPS (behind the router) unseen 10:10-10:20
    assert {(o.kind, o.drill) for o in report.drill_outages} == {("power", drill.id)}
    assert checks["played"].passed and "power" in record.outages
    # the duty log has who started it and when it was stopped (ran out: nobody)
    entries = await ops.duty_entries(at("09:00"), at("13:00"))
    assert [(e.action, e.detail["id"]) for e in entries if e.action.startswith("drill")] == [
        ("drill_start", drill.id)]
    # its record as the bureau files it: PDF (read back by poppler) and XLSX
    written = write_drill(store, config, daemon.fleet.inventory, drill.id,
                          Wording("zh", TZ), ["pdf", "xlsx"], tmp_path, now=at("12:00"))
    (xlsx, _), (pdf, _) = sorted(written, key=lambda w: w[0].suffix != ".xlsx")
    text = pdf_text(pdf)
    assert f"演练记录 {drill.id}" in text and "占位村05" in text and "张三" in text
    played = next(line.split() for line in text.splitlines() if "监测到演练情景的中断" in line)
    assert played[1:] == ["断电", "断网、断电", "通过"]  # a real network outage seen too
    first = next(line.split() for line in text.splitlines() if "首次联通不超过" in line)
    assert first[1:] == ["15", "分钟", "6.0", "分钟", "通过"]
    assert "+0 分 10 秒" in text and "+6 分 00 秒" in text  # UPS on battery; the call
    assert "中断与告警" in text and "中断开始" in text
    sheets = load_workbook(xlsx)
    assert "考核要求" in sheets.sheetnames
    store.close()


async def test_a_running_drill_survives_a_restart(tmp_path: Path) -> None:
    config = load_config(DEMO)
    clock = [at("10:00")]
    first = Daemon(config, clock=lambda: clock[0])
    first.store = await first.operations.restore(tmp_path / "commsmon.db")
    drill = await first.operations.start_drill("v03", "network", None, "", Actor("api"))
    await first.evaluation._once_more()
    first.store.close()
    clock[0] = at("10:20")
    second = Daemon(config, clock=lambda: clock[0])
    second.store = await second.operations.restore(tmp_path / "commsmon.db")
    assert second.operations.drills.running(clock[0]) == {"v03": drill}
    stopped = await second.operations.stop_drill("v03", Actor("api"))
    assert stopped.stopped == at("10:20")
    (record,) = await second.operations.drill_records(0, at("11:00"), drill.id)
    assert record.duration == 1200 and not record.drill.running(clock[0])
    assert not record.passed  # nobody called from the village
    second.store.close()


async def test_a_drills_alerts_stay_its_own_until_what_it_played_clears(tmp_path: Path) -> None:
    """Power drill at v05 10:00-10:05; the UPS stays on battery to 10:07 (the kit slower
    than the plan): v05's alerts are the drill's to 10:07 and, for their resolutions,
    10 minutes more; from 10:02 to 10:03 the router is down too — a network outage, not
    what the drill plays — and while it lasts v05's alerts are real."""
    config = load_config(DEMO)
    clock = [at("10:00")]
    daemon = Daemon(config, clock=lambda: clock[0])
    daemon.store = Store(tmp_path / "commsmon.db")
    drills = daemon.operations.drills
    marked: dict[str, bool] = {}
    while clock[0] <= at("10:20"):
        t = clock[0]
        for device in daemon.fleet.inventory.devices.values():
            if device.source == "checkin":
                continue
            down = device.id == "v05-router" and at("10:02") <= t < at("10:03")
            readings: dict[str, float | str | bool] = {}
            if device.id == "v05-ups":
                readings = {"output_source": "battery" if t < at("10:07") else "normal",
                            "charge": 1.0}
            daemon.fleet.observe(Observation(device.id, t, not down, readings,
                                             conclusive=down))
        if t == at("10:00"):
            await daemon.operations.start_drill("v05", "power", None, "", Actor("api"))
        if t == at("10:05"):
            await daemon.operations.stop_drill("v05", Actor("api"))
        running = await drills.observe(daemon.evaluate())
        marked[datetime.fromtimestamp(t, TZ).strftime("%H:%M:%S")] = "v05" in running
        clock[0] += 10.0
    assert marked["10:01:00"] and marked["10:06:00"] and marked["10:16:00"]
    assert not marked["10:02:30"]  # a real network outage at the site: real alerts
    assert not marked["10:17:30"]  # 10 minutes after the power outage cleared
    (record,) = await daemon.operations.drill_records(0, at("11:00"))
    assert record.window_end == pytest.approx(at("10:07"), abs=20)
    daemon.store.close()
