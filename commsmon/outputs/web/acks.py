"""Acknowledging at the duty desk: ack links from robot messages, the village page's
ack / withdraw / escalate buttons, the duty roster (值班表) and handing over a shift.

``GET /a/<token>`` only shows a confirmation page with the alert's current state
(chat apps and link scanners fetch URLs by themselves); ``POST /a/<token>``
acknowledges, once (:mod:`commsmon.outputs.alerts.links`).  The link itself is
the credential: an officer on a phone need not log in; the ack is recorded in
the name of the role's holder on the roster (or the logged-in officer), from the
phone's address.  The POST also carries the page's nonce (double submit), so a
page elsewhere cannot post it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from commsmon.operations.record import GroupAction
from commsmon.operations.roster import RosterError
from commsmon.outputs.alerts.messages import alert_description
from commsmon.outputs.web.accounts import account_of, csrf_ok
from commsmon.outputs.web.desk import (
    SNAPSHOT,
    WORDS,
    act,
    back,
    form_of,
    ops_of,
    refuse,
    require,
    site_of,
)
from commsmon.outputs.wording import Wording
from commsmon.state.dutylog import Actor

__all__ = ["add_ack_routes"]

Ctx = Callable[[web.Request], dict[str, Any]]
_CTX: web.AppKey[Ctx] = web.AppKey("ack_context")
NONCE_COOKIE = "commsmon_ack"
MAX_ROSTER_BYTES = 1_000_000


def add_ack_routes(app: web.Application, context: Ctx) -> None:
    """Serve ``/a/<token>``, ``/site/<id>/{ack,unack,escalate}``, ``/roster`` and
    ``/handover``."""
    app[_CTX] = context
    app.router.add_get("/a/{token}", _link_page)
    app.router.add_post("/a/{token}", _link_ack)
    app.router.add_post("/site/{site}/ack", _ack)
    app.router.add_post("/site/{site}/unack", _unack)
    app.router.add_post("/site/{site}/escalate", _escalate)
    app.router.add_get("/roster", _roster_page)
    app.router.add_post("/roster", _roster_upload)
    app.router.add_post("/handover", _hand_over)


def _problems(w: Wording) -> dict[str, str]:
    return {
        "forged": w._("This link is not one of ours."),
        "unknown": w._("This link is not known (sent by another installation?)."),
        "off": w._("Acknowledging is not available: the alert service is not running."),
        "expired": w._("This link has expired: open the console to acknowledge."),
        "used": w._("This link has been used already."),
        "resolved": w._("The alert has resolved since this message: nothing to acknowledge."),
        "worse": w._("The alert has got worse since this message: see the newer message or "
                     "the console before acknowledging."),
    }


async def _link_page(request: web.Request) -> web.Response:
    """What the link acknowledges, as it is now, and a button (a POST) to do it."""
    ops = ops_of(request)
    context = request.app[_CTX](request)
    w: Wording = context["w"]
    token = request.match_info["token"]
    link, problem = await ops.read_link(token)
    alerts = ops.alerts_of(link.group) if link is not None else []
    group = next((g for g in ops.alert_groups() if link and g.group == link.group), None)
    site = link.group.removeprefix("site:") if link is not None else ""
    snap = request.app[SNAPSHOT]()
    status = snap.sites.get(site) if snap is not None else None
    nonce = request.cookies.get(NONCE_COOKIE) or secrets.token_urlsafe(24)
    holder = ops.roster_now().get(link.role) if link is not None and link.role else None
    context.update(
        link=link, problem=_problems(w).get(problem or "", problem or ""), nonce=nonce,
        token=token, site_id=site, site_name=status.site.name if status else "",
        now_text=w.verdict(status.scenarios["now"].as_fact(), site)
        if status is not None and "now" in status.scenarios else "",
        group=group, holder=holder, role=w.role(link.role) if link and link.role else "",
        alerts=[alert_description(a, w.language, w.tz, w.now) for a in alerts],
        done=_problems(w).get(request.query.get("result", ""), "")
        if request.query.get("result") not in (None, "ok") else "",
        acked=request.query.get("result") == "ok")
    context["t"].update(
        ack_title=w._("Acknowledge the alert"), ack=w._("Acknowledge"),
        ack_done=w._("Acknowledged. Escalation stops; the alert stays on the board until it "
                     "resolves."),
        state=w._("State now"), sent_to=w._("Sent to"), open_console=w._("Open the console"),
        alerts_now=w._("Alerts firing now"))
    response = aiohttp_jinja2.render_template("ack.html", request, context)
    response.set_cookie(NONCE_COOKIE, nonce, path="/a/", httponly=True, samesite="Strict",
                        max_age=3600)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


async def _link_ack(request: web.Request) -> web.StreamResponse:
    """Acknowledge through the link, once; back to its page saying how it went."""
    ops = ops_of(request)
    token = request.match_info["token"]
    form = await form_of(request)
    cookie = request.cookies.get(NONCE_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, form.get("nonce", "")):
        raise refuse(request, 403, request.app[WORDS](request)._(
            "Open the link from the message again and press the button"))
    account = account_of(request)
    link, _ = await ops.read_link(token)
    if account is not None:
        actor = Actor(account.login, request.remote or "", account.name)
    else:
        holder = ops.roster_now().get(link.role) if link is not None and link.role else None
        w = request.app[WORDS](request)
        # nobody on the roster for that role: name the role and the way, never "link"
        name = holder.name if holder else w.role(link.role if link else "") + w.paren(
            w._("the link in a message"))
        actor = Actor("link", request.remote or "", name)
    problem = await ops.ack_by_link(token, actor)
    raise web.HTTPSeeOther(f"/a/{token}?result={problem or 'ok'}")


async def _group_action(request: web.Request, action: GroupAction) -> web.StreamResponse:
    site = site_of(request)
    account, ops, _, actor = await act(request)
    actor = Actor(actor.user, actor.address, account.name)
    if not await ops.act_on_group(action, f"site:{site}", actor):
        w = request.app[WORDS](request)
        raise refuse(request, 409, {
            "ack": w._("Nothing to acknowledge: the village has no alert firing"),
            "unack": w._("Nothing to withdraw: the village's alerts are not acknowledged"),
            "escalate": w._("Nothing to escalate: the village has no alert firing, or no "
                            "escalation policy covers its alerts")}[action])
    raise back(request, site, action)


async def _ack(request: web.Request) -> web.StreamResponse:
    return await _group_action(request, "ack")


async def _unack(request: web.Request) -> web.StreamResponse:
    return await _group_action(request, "unack")


async def _escalate(request: web.Request) -> web.StreamResponse:
    return await _group_action(request, "escalate")


async def _hand_over(request: web.Request) -> web.StreamResponse:
    account, ops, form, actor = await act(request)
    await ops.hand_over(Actor(actor.user, actor.address, account.name),
                        form.get("note", "")[:500])
    raise web.HTTPSeeOther("/?done=handover")


async def _roster_page(request: web.Request) -> web.Response:
    require(request, "viewer")
    ops = ops_of(request)
    context = request.app[_CTX](request)
    w: Wording = context["w"]
    account = account_of(request)
    context.update(
        shifts=[(_day_time(s.start, w), _day_time(s.end, w), w.role(s.role), s.name, s.phone)
                for s in ops.roster()],
        can_upload=account is not None and account.may("admin"),
        error=request.query.get("error", ""), uploaded=request.query.get("shifts", ""))
    context["t"].update(
        roster=w._("Duty roster"), start=w._("Shift starts"), end=w._("Shift ends"),
        role=w._("Role"),
        name=w._("Name"), phone=w._("Phone"), upload=w._("Upload a roster (CSV)"),
        csv_help=w._("Columns: start,end,role,name,phone — times as 2026-12-05 08:00; roles "
                     "duty, deputy, leader (or 值班员, 副班, 带班领导). It replaces the roster."),
        no_shifts=w._("No shifts on the roster"),
        upload_ok=w._("Roster replaced: {n} shifts").format(n=request.query.get("shifts", "")))
    return aiohttp_jinja2.render_template("roster.html", request, context)


def _day_time(epoch: float, w: Wording) -> str:
    """``12-06 08:00``: a shift's bounds always with their day."""
    return datetime.fromtimestamp(epoch, w.tz).strftime("%m-%d %H:%M")


async def _roster_upload(request: web.Request) -> web.StreamResponse:
    account = require(request, "admin")
    assert account is not None
    ops = ops_of(request)
    form = await request.post()
    upload = form.get("file")
    w = request.app[WORDS](request)
    if not csrf_ok(request, str(form.get("csrf", ""))):
        raise refuse(request, 403, w._("The form has expired or did not come from this page: "
                                       "reload the page and try again"))
    if not isinstance(upload, web.FileField):
        raise refuse(request, 400, w._("Choose the roster's CSV file"))
    text = upload.file.read(MAX_ROSTER_BYTES + 1).decode("utf-8-sig", errors="replace")
    if len(text) > MAX_ROSTER_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_ROSTER_BYTES, len(text))
    try:
        n = await ops.set_roster(text, Actor(account.login, request.remote or "", account.name))
    except RosterError as exc:
        message = {
            "empty": w._("The file is empty"),
            "columns": w._("Columns missing: {detail} (start,end,role,name,phone)"),
            "time": w._("{detail} is not a time (write 2026-12-05 08:00)"),
            "order": w._("The shift ends before it starts"),
            "missing": w._("A shift needs a role and a name"),
            "rows": w._("More than {detail} shifts"),
        }[exc.problem].format(detail=exc.detail)
        error = w._("Line {line}: {message}. Nothing was changed.").format(
            line=exc.line, message=message)
        raise web.HTTPSeeOther("/roster?" + urlencode({"error": error})) from exc
    raise web.HTTPSeeOther(f"/roster?shifts={n}")
