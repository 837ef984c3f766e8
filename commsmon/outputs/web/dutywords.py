"""Duty-log entries and timeline details in the officer's words: times as local
times, results as 接通/未接通, ratios as percentages, roles and outages by name —
never a raw field, a Unix time or an internal code."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from commsmon.outputs.wording import Wording
from commsmon.state.dutylog import DutyEntry

__all__ = ["detail_text", "entry_who", "label_text", "subject_text"]

_TIMES = frozenset({"until", "starts", "ends"})


def _when(epoch: str, w: Wording) -> str:
    try:
        return datetime.fromtimestamp(float(epoch), w.tz).strftime("%m-%d %H:%M")
    except ValueError:
        return epoch


def _via(via: str, w: Wording) -> str:
    if via.startswith("link:"):
        role = via.removeprefix("link:")
        return w._("the link in a message") + (w.paren(w.role(role)) if role else "")
    return {"console": w._("the console"), "api": w._("the API")}.get(via, via)


def detail_text(e: DutyEntry, w: Wording) -> str:
    """An entry's particulars: ``接通、电量 90 %、方式 卫星电话测试通话、备注 周测正常``."""
    d = e.detail
    parts: list[str] = []
    if "ok" in d:
        parts.append(w._("got through") if d["ok"] == "1" else w._("did not get through"))
    for key, value in d.items():
        if not value or key in ("ok", "name"):
            continue
        if key == "charge":
            text = w._("battery {value}").format(value=w.percent(float(value)))
        elif key == "method":
            text = w.checkin_method(value)
        elif key in _TIMES:
            label = {"until": w._("until"), "starts": w._("from"), "ends": w._("to")}[key]
            text = f"{label} {_when(value, w)}"
        elif key == "matchers":
            text = w.list_sep.join(_matcher(m, w) for m in value.split(","))
        elif key == "via":
            text = w._("through {via}").format(via=_via(value, w))
        elif key == "role":
            text = w.role(value)
        elif key == "shifts":
            text = w._("{n} shifts").format(n=value)
        elif key in ("duty", "deputy", "leader"):
            text = f"{w.role(key)} {value}"
        else:  # a note, a comment: the officer's own words
            text = value
        parts.append(text)
    return w.list_sep.join(parts)


def _matcher(m: str, w: Wording) -> str:
    key, _, value = m.partition("=")
    return label_text(key, value, {}, w)


def label_text(key: str, value: str, names: Mapping[str, str], w: Wording) -> str:
    """An alert label as words: the scenario, channel, outage or device it names."""
    if key == "scenario":
        return w.scenario(value)
    if key == "channel":
        return w.channel(value)
    if key == "outage":
        return w.outage(value)
    if key == "device":
        return names.get(value, value)
    if key == "site":
        return w._("village {site}").format(site=value)
    if key == "hours":
        return w.hours(float(value)) if value.replace(".", "", 1).isdigit() else value
    if key == "drill":
        return w._("drill {id}").format(id=value)
    return value


def subject_text(e: DutyEntry, names: Mapping[str, str], w: Wording) -> str:
    """What an entry acted on: a device by name, an outage by name, a village."""
    if e.subject in names:
        return f"{names[e.subject]}{w.paren(e.subject)}"
    if e.action in ("declare", "clear"):
        return w.outage(e.subject)
    if e.action in ("drill_start", "drill_stop"):
        return w.scenario_heading(e.subject)
    if e.subject.startswith("site:"):
        return w._("the village's alerts")
    if e.action in ("silence", "unsilence"):
        return w._("silence {id}").format(id=e.subject[:6])
    return e.subject


def entry_who(e: DutyEntry) -> str:
    """Who: the person's name where the entry has it, else the account."""
    name = e.detail.get("name", "")
    return f"{name}{'（' + e.user + '）' if e.user and e.user != name else ''}" if name \
        else e.user
