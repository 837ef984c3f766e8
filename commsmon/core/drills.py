"""Drills (演练): a planned outage at one site, and the record it leaves (pure; stdlib only).

A drill is planned (site, scenario, window, who started it), run (the kit does what a
real outage makes it do; the keeper makes test calls), and judged against
:class:`Expectations`:

* **first contact** — the first test call that got through from the site (a check-in
  accepted from one of its devices) came within ``first_contact`` seconds of the start;
* **a channel survives** — the ``now`` view at the drill's end (the outage it played
  folded in) projects the site reachable for at least ``survive_hours``; an unknown
  projection does not pass (unknown is never counted as ready);
* **it was played** — the monitor saw the scenario's outages (:data:`DRILL_KINDS`) at
  the site while it ran; a drill that cut nothing shows nothing and does not pass.

Alerts raised at the site while the drill runs — and until the outages it played have
cleared after it stops — are the drill's: they are marked (【演练】 and the drill id),
unless an outage of another kind is active there (then they are real).  The reports
set the window apart from the real figures, except the time of a real outage in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

__all__ = [
    "DRILL_KINDS",
    "DRILL_SCENARIOS",
    "LONGEST_OPEN",
    "SETTLE_LONGEST",
    "Check",
    "Contact",
    "Drill",
    "DrillError",
    "DrillRecord",
    "Expectations",
    "Figures",
    "KitStep",
    "drill_id",
    "judge",
    "owns_alerts",
    "owns_outage",
]

DRILL_SCENARIOS = ("network", "road", "power", "all")
#: The outages each scenario plays: the drill's own alerts, outages and checks are of
#: these kinds; an outage of another kind during it is real.
DRILL_KINDS: dict[str, tuple[str, ...]] = {
    "network": ("network",), "road": ("road",), "power": ("power",),
    "all": ("power", "network", "road")}
#: A drill with no end given ends after this many seconds (a forgotten drill must not
#: mark real outages as drills for long).
LONGEST_OPEN = 12 * 3600.0
#: After a drill stops, its alerts and window last until the outages it played clear,
#: this many seconds at most.
SETTLE_LONGEST = 3600.0


class DrillError(ValueError):
    """A drill that cannot start or stop: ``code`` says why (``unknown_site``,
    ``scenario``, ``running``, ``until``, ``not_found``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Drill:
    """A drill as planned and, once over, when it ended.

    Attributes:
        id: ``D20261205-1432-v03`` (start in the district's time, then the site).
        site: the site drilled.
        scenario: ``network``, ``road``, ``power`` or ``all``.
        start: epoch seconds it began.
        until: epoch seconds it is planned to end, ``None``: until stopped.
        by: who started it (a person's name or an account).
        note: what it is for, free text.
        stopped: epoch seconds it was stopped (or ran out), ``None`` while it runs.
    """

    id: str
    site: str
    scenario: str
    start: float
    until: float | None
    by: str
    note: str = ""
    stopped: float | None = None

    def running(self, now: float) -> bool:
        """Whether it runs at ``now`` (started, not stopped, not past ``until``)."""
        return (self.start <= now and self.stopped is None
                and (self.until is None or now < self.until))

    def end(self, now: float) -> float:
        """When it ended, or ``now`` while it runs."""
        if self.stopped is not None:
            return self.stopped
        return min(now, self.until) if self.until is not None else now


def drill_id(site: str, start: float, tz: tzinfo) -> str:
    """The id of a drill at ``site`` started at ``start`` (``D20261205-1432-v03``)."""
    return f"D{datetime.fromtimestamp(start, tz):%Y%m%d-%H%M}-{site}"


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a drill must show to pass (configuration ``drills``).

    Attributes:
        first_contact: seconds from the start within which a test call must get
            through (900: 15 minutes).
        survive_hours: hours the ``now`` view must project the site reachable at the
            drill's end (72: the 三断 target).
    """

    first_contact: float = 900.0
    survive_hours: float = 72.0


@dataclass(frozen=True, slots=True)
class Figures:
    """The site as the monitor saw it at one moment of a drill.

    Attributes:
        at: epoch seconds.
        now_lower, now_upper: hours the ``now`` view projects the site reachable, at
            least and at most (``inf``: unbounded; ``lower`` 0 when nothing is certain).
        scenario_ready: the drilled scenario's verdict (``ready``, ``not_ready``,
            ``unknown``).
        channels: channel -> its state (``up``, ``down`` ...).
        levels: device -> {``charge`` | ``fuel``: ratio 0-1} of its power kit.
    """

    at: float
    now_lower: float
    now_upper: float
    scenario_ready: str
    channels: Mapping[str, str] = field(default_factory=dict)
    levels: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KitStep:
    """Something the kit did during a drill: ``device``'s ``reading`` (or ``state``)
    went from ``old`` to ``new`` ``offset`` seconds after the start."""

    offset: float
    device: str
    reading: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Contact:
    """A test call during a drill: from ``device`` (on ``channel``), ``offset`` seconds
    after the start, by ``by``; ``ok``: it got through."""

    offset: float
    device: str
    channel: str
    by: str
    ok: bool


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation judged: ``name`` (``first_contact`` | ``survive``), whether it
    ``passed``, what was ``expected`` and what was ``actual`` (seconds for first contact,
    hours for survive; ``None``: nothing to measure, which fails)."""

    name: str
    passed: bool
    expected: float
    actual: float | None


@dataclass(frozen=True, slots=True)
class DrillRecord:
    """What a drill showed.

    Attributes:
        drill: the plan and its end.
        duration: seconds it ran.
        kit: what the kit did, in order.
        contacts: the test calls made from the site during it, in order.
        first_contact: seconds from the start to the first that got through, ``None``
            when none did.
        at_start, at_end: the site as seen at the first and the last evaluation of the
            drill (``None`` when the monitor saw none).
        outages: the outage kinds the monitor saw at the site while it ran.
        marks: (offset, kind, subject) of the outages that began or ended and the
            alerts that fired or resolved and the escalation steps taken at the site in
            its window (timeline kinds ``outage_start`` ... ``escalation_step``;
            subject: the outage kind, rule or role).
        window_end: epoch seconds its window ends: its end, or later, when the outages
            it played cleared after it.
        burn: device -> ratio 0-1 of its tank (or battery) used per hour over the drill.
        checks: each expectation judged.
    """

    drill: Drill
    duration: float
    kit: tuple[KitStep, ...]
    contacts: tuple[Contact, ...]
    first_contact: float | None
    at_start: Figures | None
    at_end: Figures | None
    burn: Mapping[str, float]
    checks: tuple[Check, ...]
    outages: tuple[str, ...] = ()
    window_end: float = 0.0
    marks: tuple[tuple[float, str, str], ...] = ()

    @property
    def passed(self) -> bool:
        """Every expectation met."""
        return all(c.passed for c in self.checks)


def judge(drill: Drill, now: float, expect: Expectations, kit: Iterable[KitStep],
          contacts: Iterable[Contact], at_start: Figures | None,
          at_end: Figures | None, outages: Iterable[str] = (),
          settled: float | None = None) -> DrillRecord:
    """The record of ``drill`` as of ``now``, judged against ``expect``.

    ``kit`` and ``contacts`` may come in any order and may include things outside the
    drill's window (dropped here); ``outages``: the kinds seen at the site while it ran;
    ``settled``: when those it played cleared after it ended (``None``: at its end, or
    not yet).
    """
    duration = drill.end(now) - drill.start
    inside = sorted((k for k in kit if 0 <= k.offset <= duration), key=lambda k: k.offset)
    calls = sorted((c for c in contacts if 0 <= c.offset <= duration), key=lambda c: c.offset)
    first = next((c.offset for c in calls if c.ok), None)
    contact = Check("first_contact", first is not None and first <= expect.first_contact,
                    expect.first_contact, first)
    lasts = at_end.now_lower if at_end is not None else None
    survive = Check("survive", lasts is not None and lasts >= expect.survive_hours,
                    expect.survive_hours, lasts)
    seen = tuple(sorted(set(outages)))
    needed = DRILL_KINDS.get(drill.scenario, ())
    played = Check("played", all(k in seen for k in needed), float(len(needed)),
                   float(sum(k in seen for k in needed)))
    end = drill.end(now)
    if settled is not None:
        window_end = max(end, settled)
    elif drill.stopped is not None:  # still settling: to now, an hour at most
        window_end = min(max(now, end), end + SETTLE_LONGEST)
    else:
        window_end = end
    return DrillRecord(drill, duration, tuple(inside), tuple(calls), first, at_start, at_end,
                       _burn(at_start, at_end), (played, contact, survive), seen,
                       window_end)


def _burn(a: Figures | None, b: Figures | None) -> dict[str, float]:
    """Per device, the share of its tank or battery used per hour between two moments
    (only what went down: a refill or a recharge is not a burn)."""
    if a is None or b is None or b.at <= a.at:
        return {}
    hours = (b.at - a.at) / 3600.0
    out = {}
    for device, levels in a.levels.items():
        for name in ("fuel", "charge"):
            before, after = levels.get(name), b.levels.get(device, {}).get(name)
            if before is not None and after is not None and after <= before:
                out[device] = (before - after) / hours
                break
    return out


def owns_outage(drill: Drill, kind: str, began: float, window_end: float) -> bool:
    """An outage of ``kind`` that began at ``began`` at the drill's site is the drill's:
    its scenario plays that kind and it began in the drill's window."""
    return kind in DRILL_KINDS[drill.scenario] and drill.start <= began < window_end


def owns_alerts(drill: Drill, active: Iterable[str]) -> bool:
    """The site's alerts are the drill's while every outage ``active`` there is of a
    kind it plays (a real outage of another kind makes them real)."""
    return set(active) <= set(DRILL_KINDS[drill.scenario])
