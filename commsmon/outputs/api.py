"""The JSON API: sites with their channels, scenarios and outages; check-ins; road outages.

``GET /api/v1/sites`` and ``GET /api/v1/sites/{id}`` read the latest snapshot;
their words (reasons, evidence, the status-table cells) are in the
configuration's ``language`` unless ``?lang=zh|en`` asks otherwise.
Endurance is given in seconds as three distinct results: known
(``endurance_seconds``, or ``unbounded``), unknown (``unknown: true``, with
``at_least_seconds`` / ``at_most_seconds`` where known), and none working
(``endurance_seconds: 0``).
``POST /api/v1/checkins``, ``POST /api/v1/outages`` and
``DELETE /api/v1/outages/{site}/{kind}`` change what the daemon knows; they
need ``Authorization: Bearer <http.token>``.  A bad body gets 400 with
``{"error": ..., "field": ...}``; an unknown site or device gets 404.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, tzinfo
from typing import Annotated, Any, Literal, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from commsmon.core.alerting import Alert
from commsmon.core.dispatch import Silence
from commsmon.core.drills import Drill, DrillError, DrillRecord
from commsmon.core.endurance import Endurance
from commsmon.core.facts import Fact
from commsmon.core.outages import Declaration
from commsmon.core.readiness import VIEWS, Outlook, ScenarioResult
from commsmon.core.roster import Shift
from commsmon.core.snapshot import DeviceStatus, SiteStatus, Snapshot
from commsmon.core.types import CheckIn
from commsmon.operations.checkin import CheckInBody
from commsmon.operations.record import GroupAction, GroupView
from commsmon.outputs.drillview import drill_json
from commsmon.outputs.wording import Language, Wording
from commsmon.state.dutylog import Action, Actor, DutyEntry, Event
from commsmon.state.outbox import AckLink

__all__ = ["Operations", "add_api_routes", "endurance_json", "site_detail", "site_json"]

_M = TypeVar("_M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Operations(Protocol):
    """What the API may change; the daemon implements it (persist, then apply)."""

    async def record_checkin(self, checkin: CheckIn, actor: Actor = ...,
                             method: str = ...) -> bool:
        """Record a check-in; ``False`` if the device is unknown."""

    async def declare(self, declaration: Declaration, actor: Actor = ...) -> bool:
        """Declare an outage; ``False`` if the site is unknown."""

    async def clear(self, site: str, kind: str, actor: Actor = ...) -> bool:
        """Clear a declared outage; ``False`` if none was declared."""

    def silences(self) -> list[Silence]:
        """Every silence (configuration and API)."""

    async def add_silence(
        self, matchers: dict[str, str], starts_at: float, ends_at: float, by: str, comment: str,
        actor: Actor = ...,
    ) -> Silence:
        """Create and persist a silence."""

    async def delete_silence(self, silence_id: str, actor: Actor = ...) -> bool:
        """Expire an API silence; ``False`` if none by that id."""

    async def log_duty(self, actor: Actor, action: Action, site: str = "", subject: str = "",
                       detail: dict[str, str] | None = None) -> None:
        """Write a duty-log entry (a login, a logout)."""

    async def duty_entries(self, start: float, end: float,
                           user: str | None = None) -> list[DutyEntry]:
        """The duty log from ``start`` to ``end`` (epoch seconds), oldest first."""

    def alert_groups(self) -> list[GroupView]:
        """Every alert group firing now, worst first."""

    async def history(self, site: str, limit: int) -> tuple[list[Event], list[DutyEntry]]:
        """A site's latest timeline events and duty-log entries, newest first."""

    def alerts_of(self, group: str) -> list[Alert]:
        """The alerts firing in a group."""

    def roster(self) -> tuple[Shift, ...]:
        """Every shift of the duty roster."""

    def roles_needed(self) -> list[str]:
        """The roles the escalation policies call."""

    def roster_now(self) -> dict[str, Shift]:
        """Who holds each roster role now."""

    async def read_link(self, token: str) -> tuple[AckLink | None, str | None]:
        """The ack link a token names and what stops it acting now."""

    async def ack_by_link(self, token: str, actor: Actor) -> str | None:
        """Acknowledge through an ack link; ``None`` when done, else what stopped it."""

    async def act_on_group(self, action: GroupAction, group: str, actor: Actor,
                           via: str = ...) -> bool:
        """Acknowledge, withdraw the ack of, or escalate now an alert group; ``False``
        when there is nothing to do it to."""

    async def set_roster(self, csv_text: str, actor: Actor) -> int:
        """Replace the duty roster by a CSV sheet; the number of shifts."""

    async def hand_over(self, actor: Actor, note: str) -> None:
        """Hand the shift over (a duty-log entry)."""


    async def start_drill(self, site: str, scenario: str, until: float | None, note: str,
                          actor: Actor = ...) -> Drill:
        """Start a drill; raises DrillError when it cannot."""

    async def stop_drill(self, site_or_id: str, actor: Actor = ...) -> Drill:
        """Stop a running drill; raises DrillError when none runs."""

    async def drill_records(self, start: float, end: float,
                            drill_id: str | None = None) -> list[DrillRecord]:
        """The drills overlapping [start, end), judged now."""

    def running_drills(self) -> dict[str, Drill]:
        """Site -> the drill running there now."""

    async def report_file(self, period: str | None, drill_id: str | None, fmt: str,
                          w: Wording) -> tuple[str, bytes]:
        """A period's report or a drill's record as a file: (name, content)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutageBody(_Body):
    """``POST /api/v1/outages``: declare roads cut at a site, optionally until a time."""

    site: str
    kind: Literal["road"] = "road"
    until: datetime | None = None
    by: Annotated[str, Field(max_length=100)] = ""
    note: Annotated[str, Field(max_length=1000)] = ""


class AckBody(_Body):
    """``POST /api/v1/acks``: acknowledge, withdraw the ack of, or escalate now a site's
    alert group (``group`` for the monitor's: ``monitor``)."""

    site: Annotated[str, Field(max_length=64)] = ""
    group: Annotated[str, Field(max_length=80)] = ""
    action: Literal["ack", "unack", "escalate"] = "ack"
    by: Annotated[str, Field(max_length=100)] = ""


class DrillBody(_Body):
    """``POST /api/v1/drills``: start a drill at a site now, until ``until`` (or for
    ``duration`` seconds, or until stopped)."""

    site: Annotated[str, Field(max_length=64)]
    scenario: Literal["network", "road", "power", "all"]
    until: datetime | None = None
    duration: Annotated[float, Field(gt=0, le=7 * 86400)] | None = None
    by: Annotated[str, Field(max_length=100)] = ""
    note: Annotated[str, Field(max_length=1000)] = ""


class SilenceBody(_Body):
    """``POST /api/v1/silences``: hold back alerts whose labels match, until ``ends``
    (or for ``duration`` seconds), from ``starts`` (default now)."""

    matchers: Annotated[dict[str, str], Field(min_length=1)]
    starts: datetime | None = None
    ends: datetime | None = None
    duration: Annotated[float, Field(gt=0, le=90 * 86400)] | None = None
    by: Annotated[str, Field(max_length=100)] = ""
    comment: Annotated[str, Field(max_length=1000)] = ""


def add_api_routes(
    app: web.Application,
    snapshot: Callable[[], Snapshot | None],
    ops: Operations,
    token: str | None,
    clock: Callable[[], float],
    tz: tzinfo,
    language: Language = "zh",
    unknown_traps: Callable[[], Iterable[tuple[float, str, str]]] = tuple,
) -> None:
    """Add the API's routes to ``app``.

    Args:
        app: the aiohttp application.
        snapshot: the latest fleet snapshot.
        ops: where writes go.
        token: the bearer token writes need; ``None`` refuses every write (403).
        clock: wall clock, epoch seconds.
        tz: time zone for the times in responses.
        language: the language of its words unless a request asks (``?lang=``).
        unknown_traps: the last traps whose OID their device's profile does not know,
            as (epoch seconds, device, trap OID), oldest first.
    """

    def when(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")

    def current() -> Snapshot:
        snap = snapshot()
        if snap is None:
            raise _error(503, "not ready yet")
        return snap

    def words(request: web.Request, snap: Snapshot) -> Wording:
        asked = request.query.get("lang", language)
        if asked not in ("zh", "en"):
            raise _error(400, "lang: must be zh or en", "lang")
        return Wording(asked, tz, snap.at)  # type: ignore[arg-type]

    async def sites(request: web.Request) -> web.Response:
        snap = current()
        w = words(request, snap)
        body = {"at": when(snap.at), "language": w.language,
                "sites": [site_json(s, when, w, full=False) for s in snap.sites.values()]}
        return web.json_response(body, dumps=_dumps)

    async def site(request: web.Request) -> web.Response:
        snap = current()
        w = words(request, snap)
        body = site_detail(snap, request.match_info["site"], when, w)
        if body is None:
            raise _error(404, f"unknown site {request.match_info['site']!r}", "site")
        return web.json_response(body, dumps=_dumps)

    def authorised(handler: Handler) -> Handler:
        async def check(request: web.Request) -> web.StreamResponse:
            if token is None:
                raise _error(403, "the write API is off: set http.token in the configuration")
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise _error(401, "a valid 'Authorization: Bearer <token>' header is required",
                             headers={"WWW-Authenticate": 'Bearer realm="commsmon"'})
            return await handler(request)

        return check

    @authorised
    async def post_checkin(request: web.Request) -> web.Response:
        body = await _parse(request, CheckInBody)
        checkin = body.checkin(clock())
        if not await ops.record_checkin(checkin, _actor(request)):
            raise _error(404, f"unknown device {body.device!r}", "device")
        return web.json_response(
            {"device": body.device, "result": body.result, "at": when(checkin.at),
             "by": body.by, "note": body.note, "battery": body.battery}, status=201)

    @authorised
    async def post_outage(request: web.Request) -> web.Response:
        body = await _parse(request, OutageBody)
        now = clock()
        until = body.until.timestamp() if body.until else None
        if until is not None and until <= now:
            raise _error(400, "until: must be in the future", "until")
        declaration = Declaration(body.site, body.kind, now, until, body.by, body.note)
        if not await ops.declare(declaration, _actor(request)):
            raise _error(404, f"unknown site {body.site!r}", "site")
        return web.json_response(
            {"site": body.site, "kind": body.kind, "since": when(now), "until": when(until),
             "by": body.by, "note": body.note}, status=201)

    @authorised
    async def delete_outage(request: web.Request) -> web.Response:
        site_id, kind = request.match_info["site"], request.match_info["kind"]
        snap = current()
        if site_id not in snap.sites:
            raise _error(404, f"unknown site {site_id!r}", "site")
        if not await ops.clear(site_id, kind, _actor(request)):
            raise _error(404, f"no declared {kind} outage at {site_id}", "kind")
        return web.Response(status=204)

    def silence_json(s: Silence) -> dict[str, Any]:
        return {"id": s.id, "matchers": dict(s.matchers), "starts": when(s.starts_at),
                "ends": when(s.ends_at), "by": s.by, "comment": s.comment,
                "active": s.starts_at <= clock() < s.ends_at}

    async def list_silences(_: web.Request) -> web.Response:
        items = [silence_json(s) for s in ops.silences() if s.ends_at > clock()]
        return web.json_response({"silences": items}, dumps=_dumps)

    @authorised
    async def post_silence(request: web.Request) -> web.Response:
        body = await _parse(request, SilenceBody)
        now = clock()
        starts = body.starts.timestamp() if body.starts else now
        if (body.ends is None) == (body.duration is None):
            raise _error(400, "ends: give exactly one of 'ends' or 'duration'", "ends")
        ends = body.ends.timestamp() if body.ends else starts + (body.duration or 0)
        if ends <= max(starts, now):
            raise _error(400, "ends: must be after starts and in the future", "ends")
        silence = await ops.add_silence(body.matchers, starts, ends, body.by, body.comment,
                                        _actor(request))
        return web.json_response(silence_json(silence), status=201, dumps=_dumps)

    @authorised
    async def delete_silence(request: web.Request) -> web.Response:
        if not await ops.delete_silence(request.match_info["id"], _actor(request)):
            raise _error(404, f"no API silence {request.match_info['id']!r}", "id")
        return web.Response(status=204)

    @authorised
    async def post_ack(request: web.Request) -> web.Response:
        body = await _parse(request, AckBody)
        group = body.group or (f"site:{body.site}" if body.site else "")
        if not group:
            raise _error(400, "site: give the site (or the group) to act on", "site")
        actor = Actor("api", request.remote or "", body.by)
        if not await ops.act_on_group(body.action, group, actor, via="api"):
            raise _error(409, f"{body.action}: {group} is not firing (or has no ack, or no "
                         "escalation policy)", "action")
        return web.json_response({"group": group, "action": body.action, "at": when(clock())},
                                 status=201)

    async def list_acks(_: web.Request) -> web.Response:
        groups = [{"group": g.group, "site": g.site, "state": g.state, "severity": g.severity,
                   "alerts": g.alerts, "firing_since": when(g.opened),
                   "ack": None if g.ack is None else {"by": g.ack.by, "at": when(g.ack.at),
                                                      "until": when(g.ack.until)},
                   "next_step": when(g.next_step)} for g in ops.alert_groups()]
        return web.json_response({"groups": groups})

    @authorised
    async def post_drill(request: web.Request) -> web.Response:
        body = await _parse(request, DrillBody)
        now = clock()
        if body.until is not None and body.duration is not None:
            raise _error(400, "until: give 'until' or 'duration', not both", "until")
        until = body.until.timestamp() if body.until else \
            now + body.duration if body.duration else None
        try:
            drill = await ops.start_drill(body.site, body.scenario, until, body.note,
                                          Actor("api", request.remote or "", body.by))
        except DrillError as exc:
            status = 404 if exc.code == "unknown_site" else 409 if exc.code == "running" \
                else 400
            raise _error(status, str(exc), "until" if exc.code == "until" else "site") \
                from None
        return await drill_response(drill.id, 201)

    @authorised
    async def stop_drill(request: web.Request) -> web.Response:
        try:
            drill = await ops.stop_drill(request.match_info["id"], _actor(request))
        except DrillError as exc:
            raise _error(404, str(exc), "id") from None
        return await drill_response(drill.id, 200)

    async def drill_response(drill_id: str, status: int) -> web.Response:
        records = await ops.drill_records(0.0, math.inf, drill_id)
        if not records:
            raise _error(404, f"no drill {drill_id!r}", "id")
        return web.json_response(drill_json(records[0], when, clock()), status=status,
                                 dumps=_dumps)

    async def get_drill(request: web.Request) -> web.Response:
        return await drill_response(request.match_info["id"], 200)

    async def list_drills(_: web.Request) -> web.Response:
        records = await ops.drill_records(0.0, math.inf)
        return web.json_response({"drills": [drill_json(r, when, clock()) for r in records]},
                                 dumps=_dumps)

    app.router.add_post("/api/v1/acks", post_ack)
    app.router.add_get("/api/v1/acks", list_acks)
    app.router.add_post("/api/v1/drills", post_drill)
    app.router.add_get("/api/v1/drills", list_drills)
    app.router.add_get("/api/v1/drills/{id}", get_drill)
    app.router.add_post("/api/v1/drills/{id}/stop", stop_drill)
    app.router.add_get("/api/v1/silences", list_silences)
    app.router.add_post("/api/v1/silences", post_silence)
    app.router.add_delete("/api/v1/silences/{id}", delete_silence)
    async def traps_unknown(request: web.Request) -> web.Response:
        """``GET /api/v1/traps/unknown``: the last 100 traps no profile knows, newest
        first — what to add to a profile's ``traps:`` (Zabbix's fallback item)."""
        listed = [{"at": when(at), "device": device, "trap_oid": oid}
                  for at, device, oid in reversed(list(unknown_traps()))]
        return web.json_response({"traps": listed})

    app.router.add_get("/api/v1/traps/unknown", traps_unknown)
    app.router.add_get("/api/v1/sites", sites)
    app.router.add_get("/api/v1/sites/{site}", site)
    app.router.add_post("/api/v1/checkins", post_checkin)
    app.router.add_post("/api/v1/outages", post_outage)
    app.router.add_delete("/api/v1/outages/{site}/{kind}", delete_outage)


def _actor(request: web.Request) -> Actor:
    """The bearer token's holder, from the client's address (the duty log's who/where)."""
    return Actor("api", request.remote or "")


def _error(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> web.HTTPException:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    kind = _ERRORS[status]
    return kind(text=json.dumps(body, ensure_ascii=False), content_type="application/json",
                headers=headers)


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    503: web.HTTPServiceUnavailable,
}


async def _parse(request: web.Request, model: type[_M]) -> _M:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _error(400, f"body is not valid JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise _error(400, f"{field or 'body'}: {first['msg']}", field) from None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def endurance_json(e: Endurance | None) -> dict[str, Any]:
    """An endurance as the API gives it, in seconds, its three results kept apart:
    known (``endurance_seconds``; 0 when nothing works), ``unbounded``, ``unknown``
    (with ``at_least_seconds`` / ``at_most_seconds`` where known)."""
    if e is None:
        e = Endurance(0.0, math.inf)
    out: dict[str, Any] = {
        "endurance_seconds": None if not e.exact or e.unbounded else round(e.lower * 3600, 1),
        "unbounded": e.unbounded,
        "unknown": not e.exact,
    }
    if not e.exact:
        out["at_least_seconds"] = round(e.lower * 3600, 1) if e.lower > 0 else None
        out["at_most_seconds"] = None if math.isinf(e.upper) else round(e.upper * 3600, 1)
    return out


def _outlook(o: Outlook, target: float, here: str, w: Wording) -> dict[str, Any]:
    fact = o.as_fact()
    out = {"survives": o.survives, **endurance_json(o.endurance),
           "reason": w.outlook(fact, target, here)}
    if o.device is not None:
        out["dependents"] = [{"site": s, "channel": c or None} for s, c in o.dependents]
    return out


def _scenario(r: ScenarioResult, here: str, w: Wording, full: bool) -> dict[str, Any]:
    verdict = r.as_fact()
    out: dict[str, Any] = {
        "ready": r.ready, "target_seconds": r.target_hours * 3600,
        "surviving": list(r.surviving), **endurance_json(r.endurance),
        "cell": w.cell(verdict), "reason": w.verdict(verdict, here),
        "outages": [w.fact(f, here) for f in r.outages],
    }
    if r.scenario == "now":
        out["until"] = None if r.until is None else w.at(None).time(r.until)
        out["until_timestamp"] = r.until
    if full:
        out["channels"] = {o.channel: _outlook(o, r.target_hours, here, w)
                           for o in r.channels if o.channel}
        out["supports"] = {o.device: _outlook(o, r.target_hours, here, w)
                           for o in r.supports if o.device}
    return out


def site_json(
    s: SiteStatus, when: Callable[[float | None], str | None], w: Wording, full: bool
) -> dict[str, Any]:
    """A site as ``GET /api/v1/sites`` gives it (``full``: with each channel's outlook).

    Args:
        s: the site's status.
        when: epoch seconds -> ISO 8601 local time.
        w: the words' language and time zone.
        full: add per-channel and per-support outlooks.
    """
    here = s.site.id
    return {
        "id": s.site.id,
        "name": s.site.name,
        "town": s.site.town,
        "role": s.site.role,
        "latitude": s.site.latitude,
        "longitude": s.site.longitude,
        "state": s.state.value,
        "state_text": w.state(s.state.value),
        "since": when(s.since),
        "reachable": s.reachable,
        "channels": {c: ch.state.value for c, ch in s.channels.items()},
        "scenarios": {n: _scenario(s.scenarios[n], here, w, full)
                      for n in VIEWS if n in s.scenarios},
        "outages": {
            k: {"since": when(o.since), "evidence": [w.fact(f, here) for f in o.evidence],
                "declared": o.declared}
            for k, o in s.outages.items()
        },
        "trap_path": None if s.trap_path is None else {
            "state": s.trap_path.state.value, "state_text": w.state(s.trap_path.state.value),
            "heard": when(s.trap_path.heard),
            "reason": None if s.trap_path.reason is None else w.fact(s.trap_path.reason, here)},
    }


def site_detail(snap: Snapshot, site: str, when: Callable[[float | None], str | None],
                w: Wording) -> dict[str, Any] | None:
    """``GET /api/v1/sites/{site}`` (and the console's village page): the site with each
    channel's outlook and its devices; ``None`` for an unknown site."""
    status = snap.sites.get(site)
    if status is None:
        return None
    body = site_json(status, when, w, full=True)
    body["language"] = w.language
    body["devices"] = [_device(d, snap.at, when, w)
                       for d in snap.devices.values() if d.device.site == status.site.id]
    return body


def _device_reasons(d: DeviceStatus) -> tuple[Fact, ...]:
    """Why it is not up, then which readings it answers without a usable value (a
    sentinel, a value that would not decode, one its profile says is unsupported),
    then which a trap told and no poll has confirmed yet."""
    dev = d.device
    return (*d.reasons, *(Fact("reading_unavailable", {
        "device": dev.id, "name": dev.name, "reading": name, "since": since})
        for name, since in sorted(d.unavailable.items())), *(Fact("reading_unconfirmed", {
            "device": dev.id, "name": dev.name, "reading": name, "at": at})
        for name, at in sorted(d.unconfirmed.items())))


def _device(
    d: DeviceStatus, now: float, when: Callable[[float | None], str | None], w: Wording
) -> dict[str, Any]:
    readings = {}
    for name, value in d.readings.items():
        if isinstance(value, float) and not math.isfinite(value):
            continue
        at = d.taken_at.get(name)
        readings[name] = {"value": value, "at": when(at),
                          "age_seconds": None if at is None else round(now - at, 1),
                          "stale": name in d.stale, "unconfirmed": name in d.unconfirmed}
    # By name: the map's order follows a poll's set of missing readings, which varies
    # from one run to the next.
    for name, since in sorted(d.unavailable.items()):
        readings[name] = {"value": None, "at": when(d.taken_at.get(name)),
                          "age_seconds": None, "stale": False, "unavailable_since": when(since)}
    checkin = None
    if d.checkin is not None:
        c = d.checkin
        checkin = {"at": when(c.at), "age_seconds": round(now - c.at, 1),
                   "result": "ok" if c.ok else "failed", "by": c.by, "note": c.note,
                   "battery": c.charge}
    return {
        "id": d.device.id,
        "name": d.device.name,
        "kind": d.device.kind,
        "channel": d.device.channel,
        "power": str(d.device.power),
        "state": d.state.value,
        "state_text": w.state(d.state.value),
        "since": when(d.since),
        "reason": w.facts(_device_reasons(d), d.device.site) or None,
        "last_seen": when(d.last_seen),
        "readings": readings,
        **endurance_json(d.endurance),
        "checkin": checkin,
    }
