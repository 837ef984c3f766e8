"""Which notification goes to which receiver, and when (pure; time passed in).

In the manner of Alertmanager's dispatcher, per receiver and per group (a
site, or the monitor):

* **routes** pick receivers by label (severity, site ...); every matching
  route applies;
* **grouping**: a group's first alert waits ``group_wait`` so the rest of the
  village's trouble joins it; later changes go out at most every
  ``group_interval``; an unchanged firing group is repeated every
  ``repeat_interval``; when everything in it resolves, a resolved
  notification follows;
* **folding**: while a village is isolated or in an outage, its device
  alerts (and lost channels) ride inside that notification as ``folded``
  rather than each making news;
* **silences** (and maintenance windows) hold back matching alerts without
  resolving them;
* **flapping**: an alert that changed state ``flap_changes`` times within
  ``flap_window`` stops making news on each change; its state is reported at
  most every ``flap_hold``, and once it settles its final state always goes out;
* while the **monitor** is cut off only its own alert goes out; village
  groups wait;
* an **acknowledged** group is not repeated (its changes still go out: a
  worse one breaks the ack anyway, :mod:`commsmon.core.escalation`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from commsmon.core.alerting import SEVERITIES, Alert, Notification, SiteContext, group_of
from commsmon.core.rules import facts_from_json, facts_to_json
from commsmon.core.snapshot import Snapshot
from commsmon.core.types import State

__all__ = ["Dispatcher", "Route", "Silence", "Timing", "site_context"]

_SITE_LEVEL = {"site_isolated", "outage_active"}
_FOLDABLE = {"device_down", "device_lost", "device_degraded", "checkin_stale",
             "site_channel_lost"}


@dataclass(frozen=True, slots=True)
class Route:
    """Alerts whose labels match go to ``receivers``.

    Attributes:
        match: label -> accepted values; an empty match takes every alert.
        receivers: receiver names.
    """

    match: Mapping[str, tuple[str, ...]]
    receivers: tuple[str, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher accepts the label's value."""
        return all(labels.get(k) in values for k, values in self.match.items())


@dataclass(frozen=True, slots=True)
class Silence:
    """Holds back matching alerts between ``starts_at`` and ``ends_at`` (epoch s).

    Attributes:
        id: a unique id.
        matchers: label -> value, all of which must equal the alert's.
        starts_at: epoch seconds.
        ends_at: epoch seconds.
        by: who set it.
        comment: why (maintenance window, drill ...).
    """

    id: str
    matchers: Mapping[str, str]
    starts_at: float
    ends_at: float
    by: str = ""
    comment: str = ""

    def silences(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether it holds back an alert with ``labels`` at ``now``."""
        return self.starts_at <= now < self.ends_at and all(
            labels.get(k) == v for k, v in self.matchers.items()
        )


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds that pace notifications (defaults as Alertmanager's, but a quicker wait)."""

    group_wait: float = 30.0
    group_interval: float = 120.0
    repeat_interval: float = 4 * 3600.0
    flap_window: float = 600.0
    flap_changes: int = 4
    flap_hold: float = 600.0


@dataclass(slots=True)
class _GroupState:
    sent: set[str] = field(default_factory=set)
    alerts: dict[str, Alert] = field(default_factory=dict)
    last_sent: float | None = None
    changed_since: float | None = None


def site_context(snap: Snapshot, site_id: str) -> SiteContext | None:
    """The site as a notification tells it, from a snapshot."""
    status = snap.sites.get(site_id)
    if status is None:
        return None
    site = status.site
    now = status.scenarios.get("now")
    return SiteContext(
        id=site.id,
        name=site.name,
        town=site.town,
        state=status.state.value,
        channels_up=tuple(c for c, ch in status.channels.items() if ch.state is State.UP),
        channels_lost={c: ch.state.value for c, ch in status.channels.items()
                       if ch.state is not State.UP},
        readiness={n: r.ready for n, r in status.scenarios.items() if n != "now"},
        outages=tuple(status.outages),
        now=now.as_fact() if now is not None and now.outages else None,
    )


class Dispatcher:
    """Decides notifications; keeps per (receiver, group) memory.

    Args:
        routes: routes, in order; all matching ones apply.
        default_receivers: receivers for alerts no route matches.
        languages: receiver -> ``zh`` or ``en``.
        timing: pacing.
    """

    def __init__(
        self,
        routes: Sequence[Route],
        default_receivers: Sequence[str],
        languages: Mapping[str, Literal["zh", "en"]],
        timing: Timing = Timing(),
    ) -> None:
        self.routes = list(routes)
        self.default_receivers = tuple(default_receivers)
        self.languages = dict(languages)
        self.timing = timing
        self.silences: dict[str, Silence] = {}
        self._groups: dict[tuple[str, str], _GroupState] = {}
        self._changes: dict[str, list[float]] = {}
        self._firing: set[str] = set()
        self._ended: dict[str, Alert] = {}
        # Notification numbers per (receiver, group), kept when a quiet group is
        # forgotten: a key must never repeat, or the outbox takes it for a re-send.
        self._seq: dict[tuple[str, str], int] = {}

    def receivers_for(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        """Receivers an alert with ``labels`` goes to."""
        found = [r for route in self.routes if route.matches(labels) for r in route.receivers]
        return tuple(dict.fromkeys(found)) if found else self.default_receivers

    def tick(
        self,
        now: float,
        firing: Iterable[Alert],
        resolved: Iterable[Alert],
        context: Callable[[str], SiteContext | None],
        acknowledged: Callable[[str], bool] = lambda group: False,
    ) -> list[Notification]:
        """The notifications due at ``now``.

        Args:
            now: epoch seconds.
            firing: every alert firing now.
            resolved: alerts that resolved since the last tick (with ``ends_at``).
            context: site id -> its context.
            acknowledged: whether a group (``site:v05``) is acknowledged now.
        """
        firing = list(firing)
        self._rewind(now)
        self._note_changes(now, firing, resolved)
        monitor_down = any(a.rule == "monitor_cut_off" for a in firing)
        # Folding is decided on the whole group, whatever each receiver is routed.
        folding = {group_of(a) for a in firing if a.rule in _SITE_LEVEL}
        by_key: dict[tuple[str, str], list[Alert]] = {}
        for alert in firing:
            for receiver in self.receivers_for(alert.labels):
                by_key.setdefault((receiver, group_of(alert)), []).append(alert)
        out = []
        for key in sorted(set(by_key) | set(self._groups)):
            receiver, group = key
            if monitor_down and group != "monitor":
                continue  # the monitor is blind: hold village news until it sees again
            note = self._decide(now, receiver, group, by_key.get(key, []), group in folding,
                                context, acknowledged(group))
            if note is not None:
                out.append(note)
        return out

    def _rewind(self, now: float) -> None:
        """Times after ``now`` (the wall clock stepped back) become ``now``: a group
        last sent "in the future" would otherwise wait out the step before its next
        message."""
        for state in self._groups.values():
            if state.last_sent is not None and state.last_sent > now:
                state.last_sent = now
            if state.changed_since is not None and state.changed_since > now:
                state.changed_since = now
        for fp, times in self._changes.items():
            if times and times[-1] > now:
                self._changes[fp] = [min(t, now) for t in times]

    def _note_changes(self, now: float, firing: list[Alert], resolved: Iterable[Alert]) -> None:
        current = {a.fingerprint for a in firing}
        for fp in current ^ self._firing:
            self._changes.setdefault(fp, []).append(now)
        for alert in resolved:
            self._ended[alert.fingerprint] = alert
        for fp in current:
            self._ended.pop(fp, None)
        self._firing = current
        horizon = now - self.timing.flap_window
        for fp in list(self._changes):
            self._changes[fp] = [t for t in self._changes[fp] if t > horizon]
            if not self._changes[fp]:
                del self._changes[fp]

    def _flapping(self, fp: str) -> bool:
        return len(self._changes.get(fp, ())) >= self.timing.flap_changes

    def _decide(
        self,
        now: float,
        receiver: str,
        group: str,
        alerts: list[Alert],
        fold: bool,
        context: Callable[[str], SiteContext | None],
        acked: bool = False,
    ) -> Notification | None:
        t = self.timing
        state = self._groups.setdefault((receiver, group), _GroupState())
        top = [a for a in alerts if not (fold and a.rule in _FOLDABLE)]
        folded = [a for a in alerts if fold and a.rule in _FOLDABLE]
        current = {a.fingerprint: a for a in top}
        visible = {fp for fp, a in current.items()
                   if not any(s.silences(a.labels, now) for s in self.silences.values())}
        # A flapping alert keeps its last reported state until flap_hold passes.
        held = state.last_sent is not None and now - state.last_sent < t.flap_hold
        effective = set()
        for fp in set(current) | state.sent:
            shown = fp in visible or (fp in current and fp in state.sent)
            if self._flapping(fp) and held:
                shown = fp in state.sent
            if shown:
                effective.add(fp)
        new = effective - state.sent
        gone = state.sent - effective
        if new or gone:
            if state.changed_since is None:
                state.changed_since = now
            idle = not state.sent
            due = (state.changed_since + t.group_wait if idle or state.last_sent is None
                   else max(state.last_sent + t.group_interval, state.changed_since))
        elif state.sent and state.last_sent is not None:
            if acked:
                return None  # someone is on it: no repeat (OnCall #4654)
            due = state.last_sent + t.repeat_interval
        else:
            if not state.sent and not current:
                del self._groups[(receiver, group)]
            return None
        if now < due:
            return None
        for fp in effective:
            state.alerts[fp] = current.get(fp, state.alerts.get(fp)) or state.alerts[fp]
        still_firing = {a.fingerprint for a in folded}  # moved inside the site alert
        ended = [
            self._ended.get(fp) or replace(state.alerts[fp], ends_at=now)
            for fp in sorted(gone - still_firing)
        ]
        shown_alerts = sorted((state.alerts[fp] for fp in effective), key=_order)
        note = Notification(
            key=f"{receiver}/{group}/{self._seq.get((receiver, group), 0)}",
            receiver=receiver,
            group=group,
            status="firing" if shown_alerts else "resolved",
            alerts=(*shown_alerts, *ended),
            folded=tuple(sorted(folded, key=_order)) if shown_alerts else (),
            site=context(group.removeprefix("site:")) if group.startswith("site:") else None,
            created_at=now,
            language=self.languages.get(receiver, "zh"),
            kind="news" if new or gone else "repeat",
        )
        state.sent = effective
        state.alerts = {fp: state.alerts[fp] for fp in effective}
        state.last_sent = now
        state.changed_since = None
        self._seq[(receiver, group)] = self._seq.get((receiver, group), 0) + 1
        return note

    def dump(self) -> dict[str, Any]:
        """The dispatcher's memory as JSON-ready data (to survive a restart)."""
        return {
            "groups": [
                {"receiver": r, "group": g, "sent": sorted(s.sent),
                 "alerts": [_alert_dict(a) for a in s.alerts.values()],
                 "last_sent": s.last_sent, "changed_since": s.changed_since}
                for (r, g), s in self._groups.items()
            ],
            "seq": [[r, g, n] for (r, g), n in self._seq.items()],
            "changes": self._changes,
            "firing": sorted(self._firing),
            "ended": [_alert_dict(a) for a in self._ended.values()],
        }

    def load(self, data: Mapping[str, Any]) -> None:
        """Restore what :meth:`dump` gave."""
        self._groups = {}
        for g in data.get("groups", []):
            alerts = [_alert_from(a) for a in g["alerts"]]
            self._groups[(g["receiver"], g["group"])] = _GroupState(
                set(g["sent"]), {a.fingerprint: a for a in alerts}, g["last_sent"],
                g["changed_since"],
            )
        self._seq = {(r, g): int(n) for r, g, n in data.get("seq", [])}
        self._changes = {k: list(v) for k, v in data.get("changes", {}).items()}
        self._firing = set(data.get("firing", []))
        self._ended = {a.fingerprint: a for a in map(_alert_from, data.get("ended", []))}


def _order(a: Alert) -> tuple[int, float, str]:
    return (SEVERITIES.index(a.severity), a.starts_at, a.fingerprint)


def _alert_dict(a: Alert) -> dict[str, Any]:
    return {"rule": a.rule, "severity": a.severity, "labels": dict(a.labels),
            "facts": facts_to_json(a.facts), "starts_at": a.starts_at, "ends_at": a.ends_at}


def _alert_from(d: Mapping[str, Any]) -> Alert:
    return Alert(d["rule"], d["severity"], d["labels"], facts_from_json(d.get("facts")),
                 d["starts_at"], d["ends_at"])
