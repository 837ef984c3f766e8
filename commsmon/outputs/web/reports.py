"""The console's reports page and drills: the period reports and drill records to read
(the same HTML the PDF is printed from) or download (PDF, XLSX), and drills started and
stopped from a village's page (duty role) — every one in the duty log."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from commsmon.core.drills import DRILL_SCENARIOS, DrillError
from commsmon.outputs.web.desk import (
    SNAPSHOT,
    WORDS,
    act,
    back,
    ops_of,
    refuse,
    require,
    site_of,
)
from commsmon.outputs.wording import Wording
from commsmon.state.dutylog import Actor

__all__ = ["MAX_DRILL_MINUTES", "add_report_routes", "periods"]

Ctx = Callable[[web.Request], dict[str, Any]]
_CTX: web.AppKey[Ctx] = web.AppKey("report_context")
MAX_DRILL_MINUTES = 7 * 24 * 60
_TYPES = {"pdf": "application/pdf", "html": "text/html",
          "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def add_report_routes(app: web.Application, context: Ctx) -> None:
    """Serve ``/reports``, ``/reports/<period>.<pdf|xlsx|html>``,
    ``/drills/<id>.<pdf|xlsx|html>``, ``POST /site/<id>/drill`` and
    ``POST /drills/<id>/stop``."""
    app[_CTX] = context
    app.router.add_get("/reports", _reports_page)
    app.router.add_get(r"/reports/{period}.{fmt:pdf|xlsx|html}", _report_file)
    app.router.add_get(r"/drills/{drill}.{fmt:pdf|xlsx|html}", _drill_file)
    app.router.add_post("/site/{site}/drill", _start_drill)
    app.router.add_post("/drills/{drill}/stop", _stop_drill)


def periods(today: date) -> list[str]:
    """The periods offered: this month and the eleven before, this quarter and the last,
    this year and the last — newest first in each."""
    months = []
    year, month = today.year, today.month
    for _ in range(12):
        months.append(f"{year}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    quarter = (today.month - 1) // 3 + 1
    last = (today.year, quarter - 1) if quarter > 1 else (today.year - 1, 4)
    return [*months, f"{today.year}-Q{quarter}", f"{last[0]}-Q{last[1]}", str(today.year),
            str(today.year - 1)]


async def _reports_page(request: web.Request) -> web.Response:
    require(request, "viewer")
    ops = ops_of(request)
    context = request.app[_CTX](request)
    w: Wording = context["w"]
    today = datetime.fromtimestamp(w.now or 0, w.tz).date()
    snap = request.app[SNAPSHOT]()
    names = {s: st.site.name for s, st in snap.sites.items()} if snap is not None else {}
    drills = []
    for r in reversed(await ops.drill_records(0.0, math.inf)):
        d = r.drill
        drills.append({
            "id": d.id, "site": names.get(d.site, d.site), "scenario": w.scenario_heading(
                d.scenario), "start": w.time(d.start), "minutes": f"{r.duration / 60:.0f}",
            "by": d.by, "running": d.running(w.now or 0),
            "result": w._("in progress") if d.running(w.now or 0)
            else w._("passed") if r.passed else w._("not passed"),
            "passed": r.passed, "q": quote(d.id)})
    context.update(periods=periods(today), drills=drills)
    context["t"].update(
        reports=w._("Reports"), periods=w._("Period reports"), read=w._("Read"),
        drills=w._("Drills"), drill=w._("Drill"), village=w._("Village"),
        scenario=w._("Scenario"), began=w._("Began"), minutes=w._("Minutes"),
        by=w._("Started by"), result=w._("Result"), stop=w._("Stop the drill"),
        confirm_stop=w._("Stop the drill now? Its record is kept."),
        none=w._("No drills recorded yet"),
        note=w._("Unknown and cut-off time is never counted as up.") + " "
        + w._("Drills are set apart: their alerts and outages are not in the real "
              "figures."))
    return aiohttp_jinja2.render_template("reports.html", request, context)


async def _report_file(request: web.Request) -> web.Response:
    return await _file(request, request.match_info["period"], None)


async def _drill_file(request: web.Request) -> web.Response:
    return await _file(request, None, request.match_info["drill"])


async def _file(request: web.Request, period: str | None, drill: str | None) -> web.Response:
    require(request, "viewer")
    ops = ops_of(request)
    w: Wording = request.app[WORDS](request)
    fmt = request.match_info["fmt"]
    try:
        name, body = await ops.report_file(period, drill, fmt, w)
    except ValueError as exc:
        message = w._("This period has not begun") if "has not begun" in str(exc) \
            else w._("No such period: write 2026-11, 2026-Q4 or 2026")
        raise refuse(request, 400, message, "/reports") from None
    except LookupError:
        raise refuse(request, 404, w._("No such drill in the history"), "/reports") from None
    except FileNotFoundError:
        raise refuse(request, 503, w._("The reports need the Noto CJK fonts installed "
                                       "(fonts-noto-cjk)"), "/reports") from None
    disposition = "inline" if fmt == "html" else "attachment"
    return web.Response(body=body, content_type=_TYPES[fmt],
                        charset="utf-8" if fmt == "html" else None,
                        headers={"Content-Disposition": f'{disposition}; filename="{name}"'})


async def _start_drill(request: web.Request) -> web.StreamResponse:
    """A drill at the village now: scenario, minutes (empty: until stopped), note."""
    site = site_of(request)
    account, ops, form, actor = await act(request)
    w: Wording = request.app[WORDS](request)
    scenario = form.get("scenario", "")
    if scenario not in DRILL_SCENARIOS:
        raise refuse(request, 400, w._("Choose the scenario the drill plays"))
    minutes_text = form.get("minutes", "").strip()
    minutes = -1.0
    with contextlib.suppress(ValueError):  # not a number: refused below
        minutes = float(minutes_text) if minutes_text else 0.0
    if not (minutes == 0 and not minutes_text) and not 1 <= minutes <= MAX_DRILL_MINUTES:
        raise refuse(request, 400, w._("Give the drill's length in minutes, from 1 to a "
                                       "week, or leave it empty: it then ends after 12 "
                                       "hours unless stopped"))
    now = w.now or 0.0
    try:
        await ops.start_drill(site, scenario, now + minutes * 60 if minutes else None,
                              form.get("note", "").strip()[:1000],
                              Actor(actor.user, actor.address, account.name))
    except DrillError as exc:
        raise refuse(request, 409 if exc.code == "running" else 400,
                     w._("A drill is running at this village already")
                     if exc.code == "running" else str(exc)) from None
    raise back(request, site, "drill_start")


async def _stop_drill(request: web.Request) -> web.StreamResponse:
    account, ops, _, actor = await act(request)
    w: Wording = request.app[WORDS](request)
    try:
        drill = await ops.stop_drill(request.match_info["drill"],
                                     Actor(actor.user, actor.address, account.name))
    except DrillError:
        raise refuse(request, 404, w._("This drill is not running")) from None
    raise back(request, drill.site, "drill_stop")
