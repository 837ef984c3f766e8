"""The drill's verdict and the kit table, cases worked by hand at their edges.

A drill judged as of ``now``; a careful officer's reading beside each case
(first call in seconds after the start, ``now`` at the end in hours, outages seen):

- call at 900 s, limit 900 s; 72.0 h; power -> passes: "within 15 minutes" includes
  15:00, and 72.0 h meets 72 h.
- call at 900.5 s; 80 h -> fails: half a second late is late.
- only a failed call at 60 s -> fails: a call that did not get through is no contact.
- call at 60 s; 71.9 h -> fails: short of 72 h.
- call at 60 s; the end never seen -> fails: unknown is never ready.
- call at 60 s; unbounded (mains never lost there) -> passes.
- call at 60 s; unbounded; no outage seen -> fails: a power drill that never saw a
  power outage showed nothing.
- ``all`` with power and network seen -> fails: ``all`` plays the road outage too.

Kit ("五个一": generator, satphone, pdt_terminal, camera, and a keeper), a village's
devices as (kind, state at the period's end):

- genset up, phone degraded, PDT down, cameras lost and unknown, keeper 王 ->
  generator working; satphone working (degraded still works); PDT down; camera
  unknown (none known to work, and not all down); keeper present.
- a genset never seen ("") and nothing else, keeper " " -> generator unknown; the
  other three missing; keeper missing (a blank is no name).
"""

from __future__ import annotations

import math

import pytest

from commsmon.core.accounting import KIT_KINDS, kit_compliance
from commsmon.core.drills import Contact, Drill, Expectations, Figures, judge

T0 = 1_796_436_000.0  # 2026-12-05 10:00 Asia/Shanghai
EXPECT = Expectations(first_contact=900.0, survive_hours=72.0)


def _figures(hours: float) -> Figures:
    return Figures(T0 + 1800, hours, hours, "ready")


CASES = [
    # (name, scenario, calls [(offset, ok)], hours at the end or None, seen, passes)
    ("call at the limit", "power", [(900.0, True)], 72.0, ["power"], True),
    ("call half a second late", "power", [(900.5, True)], 80.0, ["power"], False),
    ("only a failed call", "power", [(60.0, False)], 80.0, ["power"], False),
    ("71.9 h at the end", "power", [(60.0, True)], 71.9, ["power"], False),
    ("the end not known", "power", [(60.0, True)], None, ["power"], False),
    ("unbounded at the end", "power", [(60.0, True)], math.inf, ["power"], True),
    ("nothing cut", "power", [(60.0, True)], math.inf, [], False),
    ("all without the road", "all", [(60.0, True)], 80.0, ["power", "network"], False),
]


@pytest.mark.parametrize(("name", "scenario", "calls", "hours", "seen", "passes"), CASES,
                         ids=[c[0] for c in CASES])
def test_a_drill_passes_only_when_every_check_holds(
        name: str, scenario: str, calls: list[tuple[float, bool]], hours: float | None,
        seen: list[str], passes: bool) -> None:
    drill = Drill("D20261205-1000-v03", "v03", scenario, T0, T0 + 1800, "张三",
                  stopped=T0 + 1800)
    contacts = [Contact(at, "v03-satphone", "satellite", "王", ok) for at, ok in calls]
    end = None if hours is None else _figures(hours)
    record = judge(drill, T0 + 3600, EXPECT, [], contacts, _figures(math.inf), end, seen)
    assert record.passed is passes, [(c.name, c.passed, c.actual) for c in record.checks]
    assert record.duration == 1800  # stopped at its end, however long ago that was


def test_the_kit_table() -> None:
    rows = [("generator", "up"), ("satphone", "degraded"), ("pdt_terminal", "down"),
            ("camera", "lost"), ("camera", "unknown")]
    assert kit_compliance(KIT_KINDS, rows, "王") == {
        "generator": "working", "satphone": "working", "pdt_terminal": "down",
        "camera": "unknown", "keeper": "present"}
    assert kit_compliance(KIT_KINDS, [("generator", "")], " ") == {
        "generator": "unknown", "satphone": "missing", "pdt_terminal": "missing",
        "camera": "missing", "keeper": "missing"}
    assert "keeper" not in kit_compliance(KIT_KINDS, rows, None)  # not required
