"""What the duty desk's board shows, worked out from a snapshot (no HTML here).

One :class:`Row` per site (villages first, in configuration order, the centre
last), each :class:`Cell` with its text, the state its colour stands for (the
text always says it too: never colour alone), the age of the data behind it,
and whether that data is stale — older than twice the interval its devices
report at (a reading's ``max_age`` is three report intervals).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from commsmon.config.inventory import MAX_AGE_REPORTS
from commsmon.core.endurance import Endurance
from commsmon.core.model import DEFAULT_TARGET_HOURS
from commsmon.core.readiness import SCENARIOS
from commsmon.core.snapshot import DeviceStatus, SiteStatus, Snapshot
from commsmon.core.types import State
from commsmon.operations.record import GroupView
from commsmon.outputs.wording import Wording
from commsmon.outputs.wording.catalogs import N_

__all__ = ["BOARD_CHANNELS", "Cell", "Row", "alert_cell", "board_rows", "problems_first",
           "reading_texts", "summary"]

BOARD_CHANNELS = ("pdt370", "satellite", "public")
STALE_INTERVALS = 2  # a cell greys once its data is older than this many intervals


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell of the board.

    Attributes:
        text: what it says.
        tone: the state its colour stands for: ``good``, ``warn``, ``bad``,
            ``unknown`` or ``none`` (nothing to judge).
        age: seconds since the newest data behind it, ``None`` when none.
        stale: that data is older than twice its expected interval.
        title: a longer explanation (the reason), shown on hover.
    """

    text: str
    tone: str = "none"
    age: float | None = None
    stale: bool = False
    title: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    """A site's line on the board; ``target`` says the site's target when it is not
    the district's usual 72 h (``目标 48 小时``), else ``""``; ``drill``: the id of the
    drill running there, ``""`` when none."""

    id: str
    name: str
    town: str
    centre: bool
    reachable: Cell
    channels: tuple[Cell, ...]
    now: Cell
    scenarios: tuple[Cell, ...]
    checkin: Cell
    outages: Cell
    target: str = ""
    drill: str = ""
    alert: Cell = Cell("-")


_TONE = {State.UP: "good", State.DEGRADED: "warn", State.LOST: "bad", State.DOWN: "bad",
         State.UNKNOWN: "unknown"}


def board_rows(snap: Snapshot, w: Wording,
               groups: Mapping[str, GroupView] | None = None,
               drills: Mapping[str, str] | None = None) -> list[Row]:
    """The board's rows at ``snap.at``, villages first, then the centre; ``groups``:
    the alert groups firing, by site (``None``: no alert column); ``drills``: site ->
    the id of the drill running there (its outage and alert cells say 【演练】)."""
    devices_of: dict[str, list[DeviceStatus]] = {}
    for d in snap.devices.values():
        devices_of.setdefault(d.device.site, []).append(d)
    sites = sorted(snap.sites.values(), key=lambda s: s.site.role == "centre")
    rows = [_row(s, devices_of.get(s.site.id, []), snap.at, w) for s in sites]
    if groups is not None:
        rows = [replace(r, alert=alert_cell(groups.get(r.id), w)) for r in rows]
    badge = f"【{w._('DRILL')}】"
    return [r if r.id not in (drills or {}) else replace(
        r, drill=(drills or {})[r.id], outages=replace(r.outages, text=badge + r.outages.text),
        alert=replace(r.alert, text=badge + r.alert.text) if r.alert.tone in ("bad", "warn")
        else r.alert)
        for r in rows]


def problems_first(rows: list[Row]) -> list[Row]:
    """The wall's order: isolated villages first, then those with an outage or an
    unacknowledged alert, then those short or not known for a scenario, then the rest
    (each group in configuration order, the centre among them by its own state)."""
    def rank(r: Row) -> int:
        if r.reachable.tone == "bad":
            return 0
        if r.outages.tone == "bad" or r.alert.tone == "bad":
            return 1
        if any(c.tone in ("bad", "warn") for c in (r.now, *r.scenarios, *r.channels, r.alert)):
            return 2
        if any(c.tone == "unknown" for c in (r.reachable, r.now, *r.scenarios)):
            return 3
        return 4
    return sorted(rows, key=rank)


def summary(rows: list[Row], w: Wording) -> str:
    """The board in one line: ``14 个村：可达 12，失联 1，未知 1；正在发生 2 处；
    告警 3，已确认 1``."""
    villages = [r for r in rows if not r.centre]
    isolated = sum(r.reachable.tone == "bad" for r in villages)
    unknown = sum(r.reachable.tone == "unknown" for r in villages)
    happening = sum(r.outages.tone == "bad" for r in rows)
    firing = sum(r.alert.tone == "bad" for r in rows)
    acked = sum(r.alert.tone == "warn" for r in rows)
    line = w._("{n} villages: {reachable} reachable, {isolated} isolated, {unknown} unknown; "
               "{happening} with something happening; {alerts} alerting, {acked} "
               "acknowledged").format(
        n=len(villages), reachable=len(villages) - isolated - unknown, isolated=isolated,
        unknown=unknown, happening=happening, alerts=firing, acked=acked)
    drills = [r.name for r in rows if r.drill]
    if drills:
        line += w.clause_sep + w._("drill at {sites}").format(sites=w.list_sep.join(drills))
    return line


def alert_cell(group: GroupView | None, w: Wording) -> Cell:
    """A site's alert and acknowledgement state: 无 / 告警中（严重，3 项） / 已确认：张三
    （至 10:30）."""
    if group is None:
        return Cell(w._("none"), "good")
    what = w._("{severity}, {n} alerts").format(severity=w.severity(group.severity),
                                                 n=group.alerts)
    if group.state == "acknowledged" and group.ack is not None:
        acked = w._("acknowledged: {by} (until {until})").format(
            by=group.ack.by, until=w.time(group.ack.until))
        return Cell(f"{acked}{w.clause_sep}{what}", "warn")  # still as bad as it was
    firing = w._("{what} since {since}").format(what=w._("firing") + w.paren(what),
                                                since=w.time(group.opened))
    if group.silenced_until is not None:  # held back, not gone: say so, not calmer
        firing += w.clause_sep + w._("silenced until {until}").format(
            until=w.time(group.silenced_until))
    return Cell(firing, "bad")


def _row(s: SiteStatus, devices: list[DeviceStatus], now: float, w: Wording) -> Row:
    here = s.site.id
    reachable = _data(devices, now)
    if not s.channels:  # the centre: it is where the channels lead, not a village on one
        reach = Cell("-")
    elif s.reachable is None:
        reach = Cell(w.state("unknown"), "unknown", *reachable)
    else:
        reach = Cell(w._("reachable") if s.reachable else w._("isolated"),
                     "good" if s.reachable else "bad", *reachable)
    channels = []
    now_view = s.scenarios.get("now")
    lasting: dict[str, Endurance] = {o.channel: o.endurance for o in now_view.channels
                                     if o.channel} if now_view and now_view.outages else {}
    for name in BOARD_CHANNELS:
        channel = s.channels.get(name)  # type: ignore[call-overload]
        if channel is None:
            channels.append(Cell("-"))
            continue
        providers = [d for d in devices if d.device.id in channel.providers]
        text, tone = w.state(channel.state.value), _TONE[channel.state]
        left = lasting.get(name)
        if tone in ("good", "warn") and left is not None and not left.unbounded:
            # working now, but an outage (here, or at the centre it goes through) will end it
            until = w.time(now + left.lower * 3600)
            text += w.clause_sep + (w._("gives out at about {time}") if left.exact
                                    else w._("lasts at least until {time}")).format(time=until)
            tone = "warn"
        channels.append(Cell(text, tone, *_data(providers, now)))
    scenarios = []
    for name in SCENARIOS:
        result = s.scenarios.get(name)
        if result is None:
            scenarios.append(Cell("-"))
            continue
        verdict = result.as_fact()
        scenarios.append(Cell(w.cell(verdict, words=True),
                              _readiness_tone(result.ready, result.unknown),
                              title=w.verdict(verdict, here)))
    now_result = s.scenarios.get("now")
    if now_result is None:
        now_cell = Cell("-")
    else:
        verdict = now_result.as_fact()
        now_cell = Cell(w.cell(verdict, words=True),
                        _readiness_tone(now_result.ready, now_result.unknown),
                        title=w.verdict(verdict, here))
    target = (w._("target {hours}").format(hours=w.hours(s.site.target_hours))
              if s.site.target_hours != DEFAULT_TARGET_HOURS else "")
    return Row(here, s.site.name, s.site.town, s.site.role == "centre", reach,
               tuple(channels), now_cell, tuple(scenarios), _checkin(devices, now, w),
               _outages(s, w), target)


def _readiness_tone(ready: bool, unknown: bool) -> str:
    """Ready green; certainly short red; not known amber — a village that may not last
    its target needs a look as much as one that will not, and never looks calmer."""
    if ready:
        return "good"
    return "warn" if unknown else "bad"


def _outages(s: SiteStatus, w: Wording) -> Cell:
    """What is happening at the site now: isolation first (not an outage the core
    detects, but the worst thing happening), then each outage since when."""
    here = s.site.id
    parts = [w._("{what} since {since}").format(what=w.outage(k), since=w.time(o.since))
             for k, o in s.outages.items()]
    evidence = [w.fact(f, here) for o in s.outages.values() for f in o.evidence]
    if s.channels and s.reachable is False:
        parts.insert(0, w._("{what} since {since}").format(what=w._("isolated"),
                                                           since=w.time(s.since)))
    if parts:
        return Cell(w.list_sep.join(parts), "bad", title=w.clause_sep.join(evidence))
    if s.channels and s.reachable is None:
        return Cell(w.state("unknown"), "unknown")
    return Cell(w._("none"), "good")


def _data(devices: Iterable[DeviceStatus], now: float) -> tuple[float | None, bool]:
    """(age of the newest answer among ``devices``, stale?) — stale once older than
    twice the shortest report interval among those that answered most recently."""
    newest: DeviceStatus | None = None
    for d in devices:
        if d.last_seen is not None and (newest is None or d.last_seen > (newest.last_seen or 0)):
            newest = d
    if newest is None or newest.last_seen is None:
        return None, False
    age = max(now - newest.last_seen, 0.0)
    ages = newest.device.max_age.values()
    interval = min(ages) / MAX_AGE_REPORTS if ages else None
    return age, interval is not None and age > STALE_INTERVALS * interval


def _checkin(devices: list[DeviceStatus], now: float, w: Wording) -> Cell:
    """The site's latest check-in (a keeper's test call), with its age."""
    latest = max((d.checkin for d in devices if d.checkin is not None),
                 key=lambda c: c.at, default=None)
    if latest is None:
        if any(d.device.source == "checkin" for d in devices):
            return Cell(w._("never (due)"), "bad")
        return Cell(w._("not needed"), "none")
    stale = any(d.checkin_stale for d in devices if d.checkin is latest)
    text = w._("{what} at {time}").format(what=w._("ok") if latest.ok else w._("failed"),
                                          time=w.time(latest.at))
    tone = "bad" if not latest.ok or stale else "good"
    return Cell(text, tone, max(now - latest.at, 0.0), stale, title=latest.note)


#: Readings shown as durations (SI seconds) and as percentages (ratio 0-1).
_DURATIONS = frozenset({"runtime", "uptime", "on_battery"})
_RATIOS = frozenset({"charge", "fuel", "load", "cpu", "memory", "disk"})


def reading_texts(devices: Iterable[dict[str, Any]], w: Wording) -> dict[tuple[str, str], str]:
    """(device id, reading) -> the value as an officer reads it: durations and
    percentages in words, yes/no, numbers without needless decimals."""
    out = {}
    for d in devices:
        for name, r in d["readings"].items():
            out[d["id"], name] = _value_text(name, r.get("value"), w)
    return out


#: Yes/no readings that read better in their own words.
_BOOLS = {"running": (N_("running"), N_("stopped")),
          "mains_present": (N_("present"), N_("absent")),
          "registered": (N_("registered"), N_("not registered")),
          "battery_connected": (N_("connected"), N_("not connected"))}
#: Units of the shipped readings (SI, as decoded), by how their names end.
_UNITS = (("_volts", "V"), ("volts", "V"), ("temperature", "°C"), ("rssi", "dBm"),
          ("litres", "L"), ("signal", "bars"))
_RATES = frozenset({"uplink_receive", "uplink_transmit"})  # bytes per second


def _value_text(name: str, value: Any, w: Wording) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        words = _BOOLS.get(name)
        if words is not None:
            return w._(words[0] if value else words[1])
        return w._("yes") if value else w._("no")
    if isinstance(value, int | float):
        if name in _DURATIONS:
            return w.age(float(value))
        if name in _RATIOS:
            return w.percent(float(value))
        if name in _RATES:
            return f"{float(value) / 1000:.3g} kB/s"
        unit = next((u for end, u in _UNITS if name.endswith(end)), "")
        if unit == "bars":
            return w._("{n} bars").format(n=f"{value:.3g}")
        return f"{value:.6g} {unit}".rstrip()
    return w.value(str(value))
