"""The accounting rules the bureau's reports are figured by (pure; stdlib only).

Version :data:`RULES_VERSION`, printed in every report; the rules, as
:data:`RULES_TEXT` states them:

* **Periods** are calendar months (``2026-11``), quarters (``2026-Q4``) or years
  (``2026``) in the district's time zone, from their first midnight (inclusive)
  to the next period's (exclusive); a period still running is counted to now (to
  the daemon's last note that it ran, if it has stopped), and one not begun is not
  counted.
* **Availability** = up / (up + degraded + down) over the period.  ``lost``
  (answers but cannot carry its channel) counts as down.  ``unknown`` time and
  time the monitor was cut off are counted apart and never as up; declared
  maintenance windows and drills (演练, at the drilled site, from their start until
  the outages they played have cleared) are excluded from all of it and listed —
  but never the time of a real outage (of a kind the drill does not play) within a
  drill; time before a device was first watched (added mid-period) or after it
  left is "not monitored", apart too.  With no up, degraded or down time the ratio is not
  known (``None``), never 0 or 100 %.
* **Readiness %** per scenario = time judged ``ready`` / time judged (ready, not
  ready or unknown: an unknown verdict is judged and is not ready); cut-off and
  maintenance time apart, as above.
* **Check-in compliance** = validity windows with an accepted test call / windows
  due: the time from when the device was first watched in the period to its end
  (or now) is cut into windows of the device's validity (a week); the last,
  partial window counts; a window is on time when a test call that got through
  falls in it.
* An **outage** lasts from its first evidence to its clearing (to the period's end,
  or now, while it goes on, reported as ongoing).  One that begins during a drill at
  its site and is of a kind the drill plays is the drill's, reported with the drill,
  not among the real ones.
* **Time to acknowledge** runs from the first alert of the group still firing (its
  first notification follows within ``group_wait``) to the ack; acks of a drill's
  alerts are the drill's.
* **Kit ("五个一")**: for each kind the standard requires, a village has it *working*
  (a device of that kind up or degraded at the period's end), *down* (present, none
  working), *unknown* (present, none known to work; never counted as working) or
  *missing* (none in the inventory); the keeper is *present* when one is named.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

__all__ = [
    "KIT_KINDS",
    "RULES_TEXT",
    "RULES_VERSION",
    "Availability",
    "Compliance",
    "Readiness",
    "Span",
    "Window",
    "availability",
    "checkin_compliance",
    "kit_compliance",
    "minus",
    "period",
    "readiness",
    "spans",
]

RULES_VERSION = "commsmon-accounting-2"
#: The "五个一" kit by default: a generator, a satellite phone, a PDT terminal and a
#: camera (and a named keeper).
KIT_KINDS = ("generator", "satphone", "pdt_terminal", "camera")
RULES_TEXT = __doc__.split("the rules, as\n:data:`RULES_TEXT` states them:\n\n", 1)[1] \
    if __doc__ else ""

_UP, _DOWN = frozenset({"up"}), frozenset({"down", "lost"})


@dataclass(frozen=True, slots=True)
class Span:
    """A device's, site's or verdict's state from ``start`` to ``end`` (epoch seconds)."""

    start: float
    end: float
    state: str


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of time set apart: maintenance (with its reason) or a monitor cut-off."""

    start: float
    end: float
    label: str = ""


@dataclass(frozen=True, slots=True)
class Availability:
    """Seconds of a period by what was true, and the availability ratio 0-1.

    Attributes:
        up, degraded, down, unknown: seconds in each state (``lost`` in down).
        cut_off: seconds the monitor was cut off (not judged).
        maintenance: seconds in declared maintenance (excluded).
        not_monitored: seconds the device was not watched (before it was added).
        ratio: up / (up + degraded + down); ``None`` when that is 0 s.
    """

    up: float
    degraded: float
    down: float
    unknown: float
    cut_off: float
    maintenance: float
    not_monitored: float

    @property
    def ratio(self) -> float | None:
        judged = self.up + self.degraded + self.down
        return self.up / judged if judged > 0 else None


@dataclass(frozen=True, slots=True)
class Readiness:
    """Seconds judged ready and judged at all in a scenario, the ratio 0-1."""

    ready: float
    judged: float
    cut_off: float
    maintenance: float

    @property
    def ratio(self) -> float | None:
        return self.ready / self.judged if self.judged > 0 else None


@dataclass(frozen=True, slots=True)
class Compliance:
    """Validity windows due in a period and those with an accepted test call."""

    on_time: int
    due: int

    @property
    def ratio(self) -> float | None:
        return self.on_time / self.due if self.due else None


def period(text: str, tz: tzinfo) -> tuple[float, float]:
    """``2026-11`` / ``2026-Q4`` / ``2026`` -> (start, end) epoch seconds in ``tz``.

    Raises:
        ValueError: not one of those forms.
    """
    year_text, _, rest = text.partition("-")
    if not year_text.isdigit() or len(year_text) != 4:
        raise ValueError(f"period {text!r}: write 2026-11, 2026-Q4 or 2026")
    year = int(year_text)
    if not rest:
        first, months = 1, 12
    elif rest.upper().startswith("Q") and rest[1:] in ("1", "2", "3", "4"):
        first, months = (int(rest[1:]) - 1) * 3 + 1, 3
    elif rest.isdigit() and 1 <= int(rest) <= 12:
        first, months = int(rest), 1
    else:
        raise ValueError(f"period {text!r}: write 2026-11, 2026-Q4 or 2026")
    after = first + months
    start = datetime(year, first, 1, tzinfo=tz)
    end = datetime(year + (after - 1) // 12, (after - 1) % 12 + 1, 1, tzinfo=tz)
    return start.timestamp(), end.timestamp()


def _clip(spans: Iterable[Span | Window], start: float, end: float) -> list[tuple[float, float]]:
    """The parts of ``spans`` within [start, end), merged, in order."""
    parts = sorted((max(s.start, start), min(s.end, end)) for s in spans
                   if s.end > start and s.start < end)
    merged: list[tuple[float, float]] = []
    for a, b in parts:
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def minus(a: float, b: float, holes: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """[a, b) without ``holes`` (merged, in order)."""
    out, at = [], a
    for h0, h1 in holes:
        if h1 <= at or h0 >= b:
            continue
        if h0 > at:
            out.append((at, h0))
        at = max(at, h1)
    if at < b:
        out.append((at, b))
    return out


def _overlap(a: float, b: float, holes: Sequence[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, h1) - max(a, h0)) for h0, h1 in holes)


def _split(spans: Sequence[Span], start: float, end: float, maintenance: Sequence[Window],
           cut_off: Sequence[Window]) -> tuple[dict[str, float], float, float, float]:
    """Seconds by state inside [start, end) outside maintenance and cut-off; and the
    seconds of cut-off (outside maintenance), maintenance and not monitored."""
    kept = _clip(maintenance, start, end)
    cut = _clip(cut_off, start, end)
    seconds: dict[str, float] = {}
    covered = 0.0
    for s in spans:
        a, b = max(s.start, start), min(s.end, end)
        if b <= a:
            continue
        covered += b - a
        for x, y in minus(a, b, kept):
            judged = (y - x) - _overlap(x, y, cut)
            seconds[s.state] = seconds.get(s.state, 0.0) + judged
    cut_seconds = sum(y - x for c0, c1 in cut for x, y in minus(c0, c1, kept))
    maintenance_seconds = sum(b - a for a, b in kept)
    not_monitored = max(0.0, (end - start) - covered)
    return seconds, cut_seconds, maintenance_seconds, not_monitored


def availability(spans: Sequence[Span], start: float, end: float,
                 maintenance: Sequence[Window] = (),
                 cut_off: Sequence[Window] = ()) -> Availability:
    """A device's (or site's) availability over [start, end) by the rules above.

    ``spans`` must not overlap one another; time they do not cover is not monitored.
    """
    seconds, cut, kept, missing = _split(spans, start, end, maintenance, cut_off)
    return Availability(
        up=sum(v for k, v in seconds.items() if k in _UP),
        degraded=seconds.get("degraded", 0.0),
        down=sum(v for k, v in seconds.items() if k in _DOWN),
        unknown=seconds.get("unknown", 0.0),
        cut_off=cut, maintenance=kept, not_monitored=missing)


def readiness(verdicts: Sequence[Span], start: float, end: float,
              maintenance: Sequence[Window] = (),
              cut_off: Sequence[Window] = ()) -> Readiness:
    """Readiness over [start, end): ``verdicts`` spans in states ``ready``,
    ``not_ready`` or ``unknown`` (an unknown verdict is judged, and not ready)."""
    seconds, cut, kept, _ = _split(verdicts, start, end, maintenance, cut_off)
    return Readiness(seconds.get("ready", 0.0), sum(seconds.values()), cut, kept)


def checkin_compliance(accepted: Iterable[float], validity: float, start: float,
                       end: float) -> Compliance:
    """Windows of ``validity`` seconds from ``start`` (the last one partial) and how
    many hold an accepted test call (``accepted``: epoch seconds of those calls)."""
    due = max(0, math.ceil((end - start) / validity))
    hit = {int((t - start) // validity) for t in accepted if start <= t < end}
    return Compliance(len(hit), due)


def spans(changes: Sequence[tuple[float, str]], until: float) -> list[Span]:
    """Spans from state changes (epoch seconds, new state) in time order: each state
    holds until the next change, the last until ``until``.  A change to the state already
    held (a restart noting what it first saw) continues the span."""
    out: list[Span] = []
    for at, state in changes:
        if out and out[-1].state == state:
            continue
        if out:
            out[-1] = Span(out[-1].start, at, out[-1].state)
        out.append(Span(at, until, state))
    return [s for s in out if s.end > s.start]


def kit_compliance(required: Sequence[str], states: Sequence[tuple[str, str]],
                   keeper: str | None) -> dict[str, str]:
    """A village against the kit standard: required kind -> ``working``, ``down``,
    ``unknown`` or ``missing``; and ``keeper`` -> ``present`` or ``missing`` unless
    ``keeper`` is ``None`` (not required).  ``states``: (kind, state at the period's
    end) of each of its devices (``""`` when never seen)."""
    out = {}
    for kind in required:
        seen = [state for k, state in states if k == kind]
        out[kind] = ("missing" if not seen
                     else "working" if any(s in ("up", "degraded") for s in seen)
                     else "down" if all(s in _DOWN for s in seen) else "unknown")
    if keeper is not None:
        out["keeper"] = "present" if keeper.strip() else "missing"
    return out
