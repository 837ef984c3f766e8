"""A village's timeline in words: what the monitor saw change (states, outages,
alerts) and what people did (test calls, declarations, acknowledgements), newest
first (no HTML here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from commsmon.outputs.web.dutywords import detail_text, entry_who, label_text, subject_text
from commsmon.outputs.wording import Wording
from commsmon.state.dutylog import DutyEntry, Event

__all__ = ["Moment", "timeline"]

_TONE = {"down": "bad", "lost": "bad", "degraded": "warn", "up": "good", "unknown": "unknown"}


@dataclass(frozen=True, slots=True)
class Moment:
    """One line of the timeline: when (local time), what, by whom (``""`` for the
    monitor), and the tone of its colour (with words beside it, never alone)."""

    at: float
    when: str
    text: str
    by: str
    tone: str


def timeline(events: Iterable[Event], entries: Iterable[DutyEntry],
             names: Mapping[str, str], w: Wording, limit: int) -> list[Moment]:
    """Events and duty-log entries merged, newest first, at most ``limit``;
    ``names``: device id -> its name."""
    moments = [_event(e, names, w) for e in events] + [_entry(e, names, w) for e in entries]
    moments.sort(key=lambda m: -m.at)
    return moments[:limit]


def _device(device: str, names: Mapping[str, str], w: Wording) -> str:
    name = names.get(device)
    return f"{name}{w.paren(device)}" if name else device


def _event(e: Event, names: Mapping[str, str], w: Wording) -> Moment:
    when = w.time(e.at)
    if e.kind in ("device_state", "site_state"):
        what = _device(e.subject, names, w) if e.kind == "device_state" else w._("the village")
        text = f"{what}{w.colon}{w.state(e.old)} → {w.state(e.new)}"
        return Moment(e.at, when, text, "", _TONE.get(e.new, "none"))
    if e.kind in ("outage_start", "outage_end"):
        verb = w._("began") if e.kind == "outage_start" else w._("ended")
        return Moment(e.at, when, f"{w.outage(e.subject)}{w.colon}{verb}", "",
                      "bad" if e.kind == "outage_start" else "good")
    if e.kind == "escalation_step":
        who = e.detail.get("name") or w._("nobody on the roster")
        text = w._("escalation step {n}: {role} {who} called").format(
            n=e.detail.get("step", ""), role=w.role(e.subject), who=who)
        return Moment(e.at, when, text, "", "warn")
    firing = e.kind == "alert_firing"
    label = w._("alert") if firing else w._("resolved")
    what = w.rule(e.subject)
    extra = [label_text(k, v, names, w) for k, v in sorted(e.detail.items())
             if k not in ("severity", "alertname")]  # the rule is named already
    if extra:
        what += w.paren(w.list_sep.join(extra))
    return Moment(e.at, when, f"{label}{w.colon}{what}", "", "bad" if firing else "good")


def _entry(e: DutyEntry, names: Mapping[str, str], w: Wording) -> Moment:
    subject = subject_text(e, names, w)
    text = w.duty_action(e.action) + (f"{w.colon}{subject}" if subject else "")
    detail = detail_text(e, w)
    if detail:
        text += w.paren(detail)
    return Moment(e.at, w.time(e.at), text, entry_who(e), "none")
