"""The duty desk: the console's pages on the daemon's aiohttp server.

Server-rendered (aiohttp-jinja2) with htmx 2 and its SSE extension, vendored
under ``static/`` (no CDN: command-centre networks have none).  ``/`` is the
board, ``/wall`` the same board for the big screen (read-only, large type, a
full-width "数据中断" banner when the stream stops), ``/events`` the
server-sent events both listen to: the board's table every PUSH_EVERY seconds
(its ages move even when nothing else does), each one also the heartbeat the
page watches.  Chinese by default (``?lang=en`` for English), from the same
catalogs as the messages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_sse import sse_response

from commsmon.core.drills import DRILL_SCENARIOS
from commsmon.core.readiness import SCENARIOS
from commsmon.core.roster import Shift
from commsmon.core.snapshot import Snapshot
from commsmon.outputs.api import Operations, site_detail
from commsmon.outputs.web.accounts import CSRF, ROLES, Accounts, account_of
from commsmon.outputs.web.acks import add_ack_routes
from commsmon.outputs.web.board import (
    BOARD_CHANNELS,
    alert_cell,
    board_rows,
    problems_first,
    reading_texts,
    summary,
)
from commsmon.outputs.web.desk import METHODS, add_desk_routes, require
from commsmon.outputs.web.reports import add_report_routes
from commsmon.outputs.web.timeline import timeline
from commsmon.outputs.wording import Language, Wording

__all__ = ["PUSH_EVERY", "STALE_AFTER", "add_console_routes"]

PUSH_EVERY = 5.0  # seconds between the board pushes (and so heartbeats) on /events
STALE_AFTER = 30.0  # seconds without a push before the page shows the banner
RELOAD_AFTER = 15 * 60.0  # seconds without a push before the page reloads itself
RECENT_SHOWN = 20  # traps listed on a village page, newest first
TIMELINE_SHOWN = 100  # timeline lines on a village page, newest first
_ROLE_ORDER = {"duty": 0, "deputy": 1, "leader": 2}  # who is on duty, in the order of call
STATIC = Path(__file__).parent / "static"
_SNAPSHOT: web.AppKey[Callable[[], Snapshot | None]] = web.AppKey("console_snapshot")
_SETTINGS = web.AppKey("console_settings", dict[str, Any])
_STREAMS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("console_streams")


def add_console_routes(app: web.Application, snapshot: Callable[[], Snapshot | None],
                       tz: tzinfo, language: Language,
                       clock: Callable[[], float] = time.time,
                       traps: Callable[[], Iterable[tuple[float, str, str]]] = tuple,
                       ops: Operations | None = None, accounts: Accounts | None = None,
                       ) -> None:
    """Serve the console on ``app``: ``/``, ``/wall``, ``/board/table``, ``/events``,
    ``/site/<id>``, ``/static/``, and the desk's logins, actions and duty log
    (:mod:`commsmon.outputs.web.desk`).

    Args:
        snapshot: the latest evaluation, ``None`` before the first.
        tz: the district's time zone, for clock times.
        language: the default language (``?lang=`` overrides it per page).
        clock: wall clock, epoch seconds.
        traps: the latest traps received, (epoch seconds, device, the profile's name
            for it or its OID), oldest first.
        ops: what actions go through; ``None``: none.
        accounts: the console's accounts (their middleware must be on ``app``);
            ``None`` or none configured: pages open to whoever may read, no actions.
    """
    aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("commsmon.outputs.web", "templates"),
                         autoescape=jinja2.select_autoescape(default=True))
    app[_SNAPSHOT] = snapshot
    app[_SETTINGS] = {"tz": tz, "language": language, "clock": clock, "traps": traps,
                      "ops": ops, "accounts": accounts}
    app[_STREAMS] = set()
    app.on_shutdown.append(_end_streams)
    app.router.add_get("/", _board)
    app.router.add_get("/wall", _wall)
    app.router.add_get("/board/table", _table)
    app.router.add_get("/site/{site}", _site)
    app.router.add_get("/events", _events)
    app.router.add_static("/static/", STATIC, append_version=True)
    add_desk_routes(app, ops, accounts, _context, snapshot, clock, _words)
    add_ack_routes(app, _context)
    add_report_routes(app, _context)
    app[aiohttp_jinja2.static_root_key] = "/static"


def _words(request: web.Request) -> Wording:
    """The page's words: ``?lang=`` or the district's language, its time zone, now."""
    settings = request.app[_SETTINGS]
    asked = request.query.get("lang", "")
    language: Language = "en" if asked == "en" else "zh" if asked == "zh" \
        else settings["language"]
    return Wording(language, settings["tz"], settings["clock"]())


def _context(request: web.Request, wall: bool = False) -> dict[str, Any]:
    """What the templates need: the rows, the headings and words in the page's language."""
    settings = request.app[_SETTINGS]
    w = _words(request)
    language = w.language
    snap = request.app[_SNAPSHOT]()
    ops: Operations | None = settings["ops"]
    groups = None if ops is None else {g.site: g for g in ops.alert_groups() if g.site}
    drills = {s: d.id for s, d in ops.running_drills().items()} if ops is not None else {}
    rows = board_rows(snap, w, groups, drills) if snap is not None else []
    if wall:
        rows = problems_first(rows)
    holders = ops.roster_now() if ops is not None else None
    accounts: Accounts | None = settings["accounts"]
    account = account_of(request)
    return {
        "account": account, "csrf": request.get(CSRF, ""),
        "accounts_on": accounts is not None and accounts.enabled,
        "can_act": account is not None and account.may("duty")
        and settings["ops"] is not None,
        "lang_q": "?lang=en" if language == "en" else "",
        "lang": "zh-CN" if language == "zh" else "en", "language": language, "wall": wall,
        "alerts_on": groups is not None,
        "on_duty": None if holders is None or ops is None else _on_duty(holders, ops, w),
        "rows": rows, "w": w, "updated": w.time(snap.at) if snap is not None else "",
        "summary": summary(rows, w) if rows else "",
        "t": {
            "title": w._("Duty desk"),
            "board": w._("Board"),
            "duty_log": w._("Duty log"), "login": w._("Log in"), "logout": w._("Log out"),
            "roles": {r: w.role(r) for r in ROLES},
            "site": w._("Village"),
            "reachable": w._("Reachable"),
            "channels": [w.channel(c) for c in BOARD_CHANNELS],
            "now": w.scenario_heading("now"),
            "scenarios": [w.scenario_heading(s) for s in SCENARIOS],
            "checkin": w._("Last test call"),
            "outages": w._("Outages"),
            "alert": w._("Alert"), "on_duty_now": w._("On duty now"),
            "clock": w._("This computer's clock"), "ago": w._("{age} ago"),
            "nobody_on_duty": w._("Nobody on the roster now"), "roster": w._("Roster"),
            "reports_nav": w._("Reports"), "drill_badge": f"【{w._('DRILL')}】",
            "hand_over": w._("Hand over the shift"),
            "hand_over_note": w._("Handover note"),
            "confirm_hand_over": w._("Hand the shift over now?"),
            "updated": w._("Updated"),
            "starting": w._("No evaluation yet: the daemon is starting"),
            "stale": w._("Data interrupted: the board has not been updated for over "
                         "{seconds} s; reconnecting").format(seconds=int(STALE_AFTER)),
        },
        "stale_ms": int(STALE_AFTER * 1000), "reload_ms": int(RELOAD_AFTER * 1000),
        "tz_name": str(settings["tz"]),
        "events": "/events?" + urlencode({"lang": language, **_wall_query(request, wall)}),
    }


def _wall_query(request: web.Request, wall: bool) -> dict[str, str]:
    """The wall's part of its stream's address: ``wall=1`` and, when it was opened with
    its read-only token, the token (the stream is guarded like the page)."""
    if not wall:
        return {}
    token = request.query.get("token", "")
    return {"wall": "1", **({"token": token} if token else {})}


def _on_duty(holders: dict[str, Shift], ops: Operations,
             w: Wording) -> list[tuple[str, str, str, bool]]:
    """(role, name, phone, missing) of each role held now and each role a policy calls
    that nobody holds (an escalation would reach no one: said in red)."""
    roles = sorted({*holders, *ops.roles_needed()}, key=lambda r: (_ROLE_ORDER.get(r, 9), r))
    return [(w.role(r), holders[r].name, holders[r].phone, False) if r in holders
            else (w.role(r), w._("nobody"), "", True) for r in roles]


def _may_watch(request: web.Request, wall: bool) -> None:
    """Reading pages: a logged-in account (any role), or for the wall its read-only
    token (``?token=``); open to all when no accounts are configured."""
    accounts: Accounts | None = request.app[_SETTINGS]["accounts"]
    if wall and accounts is not None and accounts.wall_allowed(request.query.get("token", "")):
        return
    require(request, "viewer")


@aiohttp_jinja2.template("board.html")
async def _board(request: web.Request) -> dict[str, Any]:
    _may_watch(request, wall=False)
    context = _context(request)
    if request.query.get("done") == "handover":
        w: Wording = context["w"]
        context["done"] = w._("Saved") + w.colon + w.duty_action("handover")
    return context


@aiohttp_jinja2.template("board.html")
async def _wall(request: web.Request) -> dict[str, Any]:
    _may_watch(request, wall=True)
    return _context(request, wall=True)


@aiohttp_jinja2.template("table.html")
async def _table(request: web.Request) -> dict[str, Any]:
    wall = request.query.get("wall") == "1"
    _may_watch(request, wall)
    return _context(request, wall=wall)


async def _site(request: web.Request) -> web.Response:
    """A village's page: its verdicts with their reasons, outages, channels, and every
    device with its state, reason and readings with their ages (the API's site detail),
    kept live over ``/events?site=<id>``; for the duty role, the forms of what can be
    done there; its timeline."""
    require(request, "viewer")
    context = await _site_context(request, request.match_info["site"])
    return aiohttp_jinja2.render_template("site.html", request, context)


async def _site_context(request: web.Request, site: str, live: bool = False) -> dict[str, Any]:
    """The village page's template context (``live``: only what its pushed part shows).

    Raises:
        web.HTTPNotFound: no such village.
    """
    context = _context(request)
    snap = request.app[_SNAPSHOT]()
    w: Wording = context["w"]

    def when(ts: float | None) -> str | None:
        return None if ts is None else w.time(ts)

    detail = site_detail(snap, site, when, w) if snap else None
    if detail is None:
        raise web.HTTPNotFound(text=w._("No such village"))
    ids = {d["id"]: d["name"] for d in detail["devices"]}
    received = _collapse([(at, ids[device], w.trap(name)) for at, device, name
                          in reversed(list(request.app[_SETTINGS]["traps"]())) if device in ids],
                         w)[:RECENT_SHOWN]
    status = snap.sites[site] if snap is not None else None
    cells = {} if status is None else {
        name: w.cell(r.as_fact(), words=True) for name, r in status.scenarios.items()}
    context.update(site=detail, values=reading_texts(detail["devices"], w), traps=received,
                   cells=cells,
                   events="/events?" + urlencode({"lang": context["language"], "site": site}))
    if context["can_act"] and not live:
        _add_actions(context, request, snap, detail["id"], w)
    ops = request.app[_SETTINGS]["ops"]
    group = next((g for g in ops.alert_groups() if g.site == detail["id"]), None) \
        if ops is not None else None
    context.update(group=group, group_cell=alert_cell(group, w) if ops is not None else None)
    drill = ops.running_drills().get(detail["id"]) if ops is not None else None
    context["drill"] = None if drill is None else {
        "id": drill.id, "q": quote(drill.id), "scenario": w.scenario_heading(drill.scenario),
        "by": drill.by, "start": w.time(drill.start),
        "until": w.time(drill.until) if drill.until is not None else ""}
    if ops is not None and not live:
        events, entries = await ops.history(detail["id"], TIMELINE_SHOWN)
        context["timeline"] = timeline(events, entries, ids, w, TIMELINE_SHOWN)
    context["t"].update(drill_running=w._("Drill running"), drill_by=w._("started by"),
                        drill_until=w._("until"), stop_drill=w._("Stop the drill"),
                        confirm_stop=w._("Stop the drill now? Its record is kept."))
    context["t"].update(ack=w._("Acknowledge"), unack=w._("Withdraw the acknowledgement"),
                        escalate=w._("Escalate now"), next_step=w._("Next escalation step"))
    context["t"].update({
        "back": w._("Back to the board"), "devices": w._("Devices"),
        "device": w._("Device"), "state": w._("State"), "reason": w._("Reason"),
        "readings": w._("Readings"), "scenarios": w._("Readiness"),
        "outages_now": w._("Happening now"),
        "unconfirmed": w._("SNMP trap, awaiting a poll"), "stale_reading": w._("stale"),
        "not_available": w._("not available"), "trap_path": w._("Trap path"),
        "traps": w._("Reported by the kit (SNMP traps)"),
        "no_traps": w._("No trap received since the start"), "saved": w._("Saved"),
        "timeline": w._("Timeline"), "no_timeline": w._("Nothing recorded yet"),
        "by": w._("By"),
    })
    return context


def _collapse(traps: list[tuple[float, str, str]], w: Wording) -> list[tuple[str, str, str, int]]:
    """Traps newest first, a run of the same trap from the same device told once with
    how many (a UPS repeats upsTrapOnBattery every minute)."""
    out: list[tuple[str, str, str, int]] = []
    for at, device, what in traps:
        if out and out[-1][1:3] == (device, what):
            when, _, _, n = out[-1]
            out[-1] = (when, device, what, n + 1)
        else:
            out.append((w.time(at), device, what, 1))
    return out


def _add_actions(context: dict[str, Any], request: web.Request, snap: Snapshot | None,
                 site: str, w: Wording) -> None:
    """The village page's forms: devices to record a test call for (those checked in
    by hand first), methods, the village's silences, and what was just done."""
    assert snap is not None
    # what keepers test by hand first: handsets checked in, then phones and radios
    devices = sorted((d for d in snap.devices.values() if d.device.site == site),
                     key=lambda d: (d.device.source != "checkin",
                                    d.device.kind not in ("satphone", "pdt_terminal")))
    ops: Operations = request.app[_SETTINGS]["ops"]
    now = request.app[_SETTINGS]["clock"]()
    done = request.query.get("done", "")
    context.update(
        checkin_choices=[(d.device.id, d.device.name) for d in devices],
        methods=[(m, w.checkin_method(m)) for m in METHODS],
        silences=[{"id": s.id, "ends": w.time(s.ends_at), "comment": s.comment, "by": s.by}
                  for s in ops.silences()
                  if dict(s.matchers).get("site") == site and s.ends_at > now],
        done=w.duty_action(done) if done else "")
    context["t"].update(
        actions=w._("Actions"), record_checkin=w._("Record a test call"),
        method=w._("Method"), result=w._("Result"), result_ok=w._("got through"),
        result_failed=w._("did not get through"), battery=w._("Battery %"),
        note=w._("Note"), save=w._("Save"), road=w._("Roads"),
        declare_road=w._("Declare roads cut"), clear_road=w._("Clear the road outage"),
        for_hours=w._("For (hours)"), until_cleared=w._("until cleared"),
        silence=w._("Silence this village's alerts"),
        reason_required=w._("Reason (required)"), add_silence=w._("Silence"),
        silenced_until=w._("Silenced until"), expire=w._("Expire now"),
        confirm_clear=w._("Clear the road outage? The village's readiness counts on resupply "
                          "again."),
        start_drill=w._("Start a drill"), scenario=w._("Scenario"),
        minutes=w._("Minutes (empty: 12 hours at most, or until stopped)"),
        drill_help=w._("While it runs, the village's alerts are marked 【演练】 and its "
                       "figures are kept apart from the real ones."))
    context["scenarios_drill"] = [(s, w.scenario_heading(s)) for s in DRILL_SCENARIOS]


async def _events(request: web.Request) -> web.StreamResponse:
    """The board's table as a ``board`` event (or, with ``?site=``, the village page's
    live part as a ``site`` event) every PUSH_EVERY seconds, until the page goes away."""
    wall = request.query.get("wall") == "1"
    site = request.query.get("site")
    if site is None:
        _may_watch(request, wall)
    else:
        require(request, "viewer")
        snap = request.app[_SNAPSHOT]()
        if snap is not None and site not in snap.sites:
            raise web.HTTPNotFound(text=f"no such village {site}")
    task = asyncio.current_task()
    streams = request.app[_STREAMS]
    if task is not None:
        streams.add(task)
    try:
        async with sse_response(request) as stream:
            while stream.is_connected():
                if site is None:
                    html = aiohttp_jinja2.render_string("table.html", request,
                                                        _context(request, wall=wall))
                    await stream.send(html, event="board")
                else:
                    try:
                        context = await _site_context(request, site, True)
                    except web.HTTPNotFound:
                        break  # the village left the configuration (a reload)
                    html = aiohttp_jinja2.render_string("site_live.html", request, context)
                    await stream.send(html, event="site")
                await asyncio.sleep(PUSH_EVERY)
        return stream
    finally:
        streams.discard(task)


async def _end_streams(app: web.Application) -> None:
    """On shutdown: end the open streams now, rather than the server waiting for them
    (a wall screen never closes its page)."""
    streams: set[asyncio.Task[Any]] = app[_STREAMS]
    for task in list(streams):
        task.cancel()
