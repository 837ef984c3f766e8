"""What officers do at the duty desk: log in and out, record a test call, declare and
clear a road outage, add and expire silences, and read the duty log (值班日志).

Every action goes through the same operations the API and CLI use
(:class:`commsmon.outputs.api.Operations`) and is a duty-log entry with who, what,
when and from where.  Actions need the ``duty`` role and the session's CSRF token;
each answers with a redirect back (303), so a reload never repeats it.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import structlog
from aiohttp import web
from pydantic import ValidationError

from commsmon.core.outages import Declaration
from commsmon.core.snapshot import Snapshot
from commsmon.operations.checkin import CheckInBody
from commsmon.outputs.api import Operations
from commsmon.outputs.web.accounts import Account, Accounts, Role, account_of, csrf_ok
from commsmon.outputs.web.dutywords import detail_text, entry_who, subject_text
from commsmon.outputs.wording import Wording
from commsmon.state.dutylog import ACTIONS, Actor, DutyEntry

__all__ = ["METHODS", "OPS", "SNAPSHOT", "WORDS", "act", "add_desk_routes", "back", "form_of",
           "ops_of", "refuse", "require", "site_of"]

log = structlog.get_logger("commsmon.console")

#: How a check-in was made: the form's choices (the weekly satellite-phone test call,
#: the Tuesday PDT roll call, anything else).
METHODS = ("test_call", "roll_call", "on_site", "other")
MAX_SILENCE_HOURS = 7 * 24.0
MAX_ROAD_HOURS = 30 * 24.0

Ctx = Callable[[web.Request], dict[str, Any]]
OPS: web.AppKey[Operations | None] = web.AppKey("desk_ops")
_ACCOUNTS: web.AppKey[Accounts | None] = web.AppKey("desk_accounts")
_CONTEXT: web.AppKey[Ctx] = web.AppKey("desk_context")
SNAPSHOT: web.AppKey[Callable[[], Snapshot | None]] = web.AppKey("desk_snapshot")
_CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("desk_clock")
WORDS: web.AppKey[Callable[[web.Request], Wording]] = web.AppKey("desk_words")


def add_desk_routes(app: web.Application, ops: Operations | None, accounts: Accounts | None,
                    context: Ctx, snapshot: Callable[[], Snapshot | None],
                    clock: Callable[[], float], words: Callable[[web.Request], Wording]) -> None:
    """Serve ``/login``, ``/logout``, the actions under ``/site/<id>/`` and ``/silences/``,
    and the duty log ``/log`` (``/log.csv``).

    Args:
        ops: the operations actions go through; ``None``: no actions.
        accounts: the console's accounts; ``None`` or none configured: no actions.
        context: the console's template context for a request.
        snapshot: the latest evaluation.
        clock: wall clock, epoch seconds.
        words: the words of a request's page (its language, the district's time zone).
    """
    app[OPS], app[_ACCOUNTS], app[_CONTEXT], app[SNAPSHOT], app[_CLOCK] = (
        ops, accounts, context, snapshot, clock)
    app[WORDS] = words
    app.router.add_get("/login", _login_page)
    app.router.add_post("/login", _login)
    app.router.add_post("/logout", _logout)
    app.router.add_post("/site/{site}/checkin", _checkin)
    app.router.add_post("/site/{site}/road", _declare)
    app.router.add_post("/site/{site}/road/clear", _clear)
    app.router.add_post("/site/{site}/silence", _silence)
    app.router.add_post("/silences/{id}/expire", _unsilence)
    app.router.add_get("/log", _log_page)
    app.router.add_get("/log.csv", _log_csv)


def refuse(request: web.Request, status: int, message: str,
           back_to: str | None = None) -> web.HTTPException:
    """A page in the officer's language saying why an action was not done (``message``,
    already in words), with the way back; answered with ``status``."""
    w = request.app[WORDS](request)
    back_to = back_to or request.headers.get("Referer", "") or "/"
    if not back_to.startswith(("/", request.url.origin().human_repr())):
        back_to = "/"
    page = aiohttp_jinja2.render_string("refused.html", request, {
        "lang": "zh-CN" if w.language == "zh" else "en", "message": message,
        "back_to": back_to, "t": {"title": w._("Duty desk"), "not_done": w._("Not done"),
                                  "back": w._("Back")}})
    kind = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound,
            409: web.HTTPConflict, 503: web.HTTPServiceUnavailable}[status]
    return kind(text=page, content_type="text/html")


def require(request: web.Request, role: Role) -> Account | None:
    """The request's account if it has ``role``; ``None`` when the console has no
    accounts and ``role`` is ``viewer`` (the pages are open to whoever may read).

    Raises:
        web.HTTPSeeOther: to the login page, when nobody is logged in.
        web.HTTPForbidden: the account's role is below ``role``, or actions are off.
    """
    accounts = request.app[_ACCOUNTS]
    if accounts is None or not accounts.enabled:
        if role == "viewer":
            return None
        raise refuse(request, 403, request.app[WORDS](request)._(
            "No console accounts are configured (http.users): the pages are read-only"))
    account = account_of(request)
    if account is None:
        raise web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}, safe="/")
                               if request.method == "GET" else "/login")
    if not account.may(role):
        w = request.app[WORDS](request)
        raise refuse(request, 403, w._("{who} is a {role}: this needs a {needed}").format(
            who=account.name, role=w.role(account.role), needed=w.role(role)))
    return account


async def form_of(request: web.Request) -> dict[str, str]:
    """A POST's text fields (files left out)."""
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


def ops_of(request: web.Request) -> Operations:
    """The operations actions go through.

    Raises:
        web.HTTPServiceUnavailable: none (a page saying so).
    """
    ops = request.app[OPS]
    if ops is None:
        raise refuse(request, 503, request.app[WORDS](request)._(
            "Operations are not available"))
    return ops


async def act(request: web.Request) -> tuple[Account, Operations, dict[str, str], Actor]:
    """A POST action's account (duty role), the operations, its form, and the actor;
    refuses a missing or wrong CSRF token."""
    account = require(request, "duty")
    assert account is not None  # require() returns one for the duty role
    form = await form_of(request)
    if not csrf_ok(request, form.get("csrf", "")):
        raise refuse(request, 403, request.app[WORDS](request)._(
            "The form has expired or did not come from this page: reload the page and try "
            "again"))
    return account, ops_of(request), form, Actor(account.login, request.remote or "")


def back(request: web.Request, site: str, done: str) -> web.HTTPSeeOther:
    """Back to the village page, saying what was done."""
    return web.HTTPSeeOther(f"/site/{site}?done={done}")


def site_of(request: web.Request) -> str:
    snap = request.app[SNAPSHOT]()
    site = request.match_info["site"]
    if snap is None or site not in snap.sites:
        raise refuse(request, 404, request.app[WORDS](request)._("No such village"), "/")
    return site


async def _login_page(request: web.Request) -> web.Response:
    context = request.app[_CONTEXT](request)
    w: Wording = context["w"]
    context.update(error=request.query.get("error", ""), next=_next(request.query.get("next")))
    context["t"].update(login=w._("Log in"), user=w._("Account"), password=w._("Password"),
                        bad=w._("Wrong account or password"),
                        throttled=w._("Too many failed logins: try again later"),
                        expired=w._("The login form expired: please try again"))
    accounts = request.app[_ACCOUNTS]
    context["nonce"] = accounts.login_nonce(request) if accounts is not None else ""
    response = aiohttp_jinja2.render_template("login.html", request, context)
    if accounts is not None:
        accounts.keep_nonce(response, context["nonce"])
    return response


def _next(value: str | None) -> str:
    """Where to go after logging in: a path on this server only (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/"


async def _login(request: web.Request) -> web.StreamResponse:
    accounts = request.app[_ACCOUNTS]
    if accounts is None or not accounts.enabled:
        raise web.HTTPNotFound(text="no console accounts are configured (http.users)")
    form = await form_of(request)
    login, target = form.get("user", "")[:64], _next(form.get("next"))
    address = request.remote or ""
    if not accounts.login_nonce_ok(request, form.get("nonce", "")):
        raise web.HTTPSeeOther(
            "/login?" + urlencode({"error": "expired", "next": target}, safe="/"))
    wait = accounts.limiter.retry_after(f"addr:{address}", f"user:{login}")
    if wait > 0:
        log.warning("login refused: too many failures", user=login, address=address)
        raise web.HTTPTooManyRequests(text="too many failed logins: try again later",
                                      headers={"Retry-After": str(int(wait) + 1)})
    account = await accounts.check(login, form.get("password", ""))
    ops = request.app[OPS]
    if account is None:
        accounts.limiter.failed(f"addr:{address}", f"user:{login}")
        log.warning("login failed", user=login, address=address)
        if ops is not None:
            await ops.log_duty(Actor(login, address), "login_failed")
        raise web.HTTPSeeOther("/login?" + urlencode({"error": "bad", "next": target}, safe="/"))
    log.info("logged in", user=login, role=account.role, address=address)
    if ops is not None:
        await ops.log_duty(Actor(login, address), "login", detail={"role": account.role})
    response = web.HTTPSeeOther(target)
    accounts.start(response, account)
    raise response


async def _logout(request: web.Request) -> web.StreamResponse:
    accounts = request.app[_ACCOUNTS]
    account = account_of(request)
    form = await form_of(request)
    if account is None or accounts is None or not csrf_ok(request, form.get("csrf", "")):
        raise web.HTTPSeeOther("/login")
    if (ops := request.app[OPS]) is not None:
        await ops.log_duty(Actor(account.login, request.remote or ""), "logout")
    response = web.HTTPSeeOther("/login")
    accounts.end(response)
    raise response


async def _checkin(request: web.Request) -> web.StreamResponse:
    """A test call or roll-call answer: device (of this village), method, result, note,
    battery % (optional)."""
    site = site_of(request)
    account, ops, form, actor = await act(request)
    w = request.app[WORDS](request)
    snap = request.app[SNAPSHOT]()
    device = form.get("device", "")
    if snap is None or device not in snap.devices or snap.devices[device].device.site != site:
        raise refuse(request, 400, w._("Choose one of the village's devices"))
    method = form.get("method", "other")
    if method not in METHODS:
        raise refuse(request, 400, w._("Choose how the test call was made"))
    battery = form.get("battery", "").strip()
    try:
        body = CheckInBody.model_validate({
            "device": device, "result": form.get("result", ""), "by": account.name,
            "note": form.get("note", "").strip(),
            "battery": float(battery) / 100 if battery else None})
    except (ValidationError, ValueError):
        raise refuse(request, 400, w._("Give the result (got through or not) and a battery "
                                       "level between 0 and 100 %")) from None
    await ops.record_checkin(body.checkin(request.app[_CLOCK]()),
                             Actor(actor.user, actor.address, account.name), method)
    raise back(request, site, "checkin")


async def _declare(request: web.Request) -> web.StreamResponse:
    """Roads cut at the village, for ``hours`` (empty: until cleared), with a note."""
    site = site_of(request)
    account, ops, form, actor = await act(request)
    now = request.app[_CLOCK]()
    hours = _hours(request, form.get("hours", ""), MAX_ROAD_HOURS)
    until = now + hours * 3600 if hours else None
    declaration = Declaration(site, "road", now, until, account.name, form.get("note", "")[:1000])
    if not await ops.declare(declaration, actor):
        raise refuse(request, 400, request.app[WORDS](request)._(
            "This village is judged by another instance of commsmon"))
    raise back(request, site, "declare")


async def _clear(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    _, ops, _, actor = await act(request)
    await ops.clear(site, "road", actor)
    raise back(request, site, "clear")


async def _silence(request: web.Request) -> web.StreamResponse:
    """Hold back the village's alerts for ``hours``, with a reason (required)."""
    site = site_of(request)
    account, ops, form, actor = await act(request)
    w = request.app[WORDS](request)
    reason = form.get("reason", "").strip()[:1000]
    if not reason:
        raise refuse(request, 400, w._("Say why the alerts are silenced"))
    hours = _hours(request, form.get("hours", ""), MAX_SILENCE_HOURS)
    if not hours:
        raise refuse(request, 400, w._("Say for how many hours"))
    now = request.app[_CLOCK]()
    try:
        await ops.add_silence({"site": site}, now, now + hours * 3600, account.name, reason,
                              actor)
    except RuntimeError:
        raise refuse(request, 503, w._("The alert service is not running")) from None
    raise back(request, site, "silence")


async def _unsilence(request: web.Request) -> web.StreamResponse:
    _, ops, _, actor = await act(request)
    silence_id = request.match_info["id"]
    site = next((dict(s.matchers).get("site", "") for s in ops.silences()
                 if s.id == silence_id), "")
    await ops.delete_silence(silence_id, actor)
    if site:
        raise back(request, site, "unsilence")
    raise web.HTTPSeeOther("/")


def _hours(request: web.Request, value: str, most: float) -> float:
    """A form's hours: empty is 0; otherwise 0 < hours <= ``most``."""
    value = value.strip()
    hours = -1.0
    with contextlib.suppress(ValueError):  # not a number: refused below
        hours = float(value) if value else 0.0
    if value and not 0 < hours <= most:
        raise refuse(request, 400, request.app[WORDS](request)._(
            "Give the hours as a number between 1 and {most}").format(most=f"{most:g}"))
    return max(hours, 0.0)


async def _entries(request: web.Request) -> tuple[dict[str, Any], list[DutyEntry], str, str]:
    """The log page's context, entries of the asked day (default today, local) and
    officer (default all), the day and the officer."""
    require(request, "viewer")
    context = request.app[_CONTEXT](request)
    w: Wording = context["w"]
    ops = request.app[OPS]
    now = request.app[_CLOCK]()
    today = datetime.fromtimestamp(now, w.tz).date()
    day_text = request.query.get("day", "") or today.isoformat()
    try:
        day = datetime.fromisoformat(day_text).date()
    except ValueError:
        raise refuse(request, 400, w._("Give the day as 2026-12-05")) from None
    start = datetime(day.year, day.month, day.day, tzinfo=w.tz)
    end = start + timedelta(days=1)
    user = request.query.get("user", "").strip()
    entries = [] if ops is None else await ops.duty_entries(start.timestamp(), end.timestamp(),
                                                            user or None)
    return context, entries, day.isoformat(), user


def _entry_texts(e: DutyEntry, names: Mapping[str, str], w: Wording) -> dict[str, str]:
    """A duty-log entry in the officer's words."""
    return {"at": datetime.fromtimestamp(e.at, w.tz).strftime("%Y-%m-%d %H:%M:%S"),
            "user": entry_who(e), "address": e.address, "action": w.duty_action(e.action),
            "site": e.site, "subject": subject_text(e, names, w), "detail": detail_text(e, w)}


def _names(request: web.Request) -> dict[str, str]:
    snap = request.app[SNAPSHOT]()
    return {} if snap is None else {d: s.device.name for d, s in snap.devices.items()}


async def _log_page(request: web.Request) -> web.Response:
    context, entries, day, user = await _entries(request)
    w: Wording = context["w"]
    names = _names(request)
    context.update(entries=[_entry_texts(e, names, w) for e in entries], day=day, user=user,
                   actions={a: w.duty_action(a) for a in ACTIONS})
    context["t"].update(log=w._("Duty log"), day=w._("Day"), officer=w._("Officer"),
                        when=w._("Time"), action=w._("Action"), where=w._("From"),
                        village=w._("Village"), subject=w._("Subject"), detail=w._("Details"),
                        filter=w._("Show"), csv=w._("Download CSV"),
                        empty=w._("Nothing recorded on this day"))
    return aiohttp_jinja2.render_template("log.html", request, context)


async def _log_csv(request: web.Request) -> web.Response:
    """The same entries as CSV (UTF-8 with a BOM, so Excel on the bureau's PCs reads
    the Chinese)."""
    context, entries, day, user = await _entries(request)
    w: Wording = context["w"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([w._("Time"), w._("Officer"), w._("From"), w._("Action"), w._("Village"),
                     w._("Subject"), w._("Details"), "action", "subject"])
    names = _names(request)
    for e in entries:  # the words, then the codes (to filter and count by)
        t = _entry_texts(e, names, w)
        writer.writerow([t["at"], t["user"], e.address, t["action"], e.site, t["subject"],
                         t["detail"], e.action, e.subject])
    name = f"duty-log-{day}{'-' + user if user else ''}.csv"
    return web.Response(body=("\ufeff" + out.getvalue()).encode(), content_type="text/csv",
                        charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
