"""Acknowledgement and escalation on injected time, as a duty officer works it out.

The policy of every case: the officer on duty at once through the duty robot; the
deputy after 5 min (300 s); the duty leader after 15 min (900 s) through the leaders'
robot and the SMS gateway; the leader again every 15 min (repeat 900 s).  An ack holds
30 min (1800 s).  The group is village v05's; at 0 s its public network is lost
(warning).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from commsmon.core.escalation import Escalation, GroupLevel, Policy, Step

DUTY = Step(0, "duty", ("duty-robot",))
DEPUTY = Step(300, "deputy", ("duty-robot",))
LEADER = Step(900, "leader", ("leaders-robot", "sms"))
POLICY = Policy((DUTY, DEPUTY, LEADER), repeat=900)
LOST = GroupLevel("warning", frozenset({"site_channel_lost public"}))
TWO_LOST = GroupLevel("warning", frozenset({"site_channel_lost public",
                                            "site_channel_lost satellite"}))
ISOLATED = GroupLevel("critical", frozenset({"site_channel_lost public"}))


@dataclass(frozen=True)
class Case:
    """At each time: what fires (``None``: resolved), an optional ack, and the steps
    that must go out at that time (checked just before sending)."""

    name: str
    timeline: tuple[tuple[float, GroupLevel | None, str, tuple[str, ...]], ...]


CASES = [
    Case("nobody answers: duty 0 s, deputy 300 s, leader 900 s, leader again 1800 s", (
        (0, LOST, "", ("duty",)),
        (299, LOST, "", ()),            # 299 < 300: not yet
        (300, LOST, "", ("deputy",)),
        (899, LOST, "", ()),
        (900, LOST, "", ("leader",)),
        (1799, LOST, "", ()),
        (1800, LOST, "", ("leader",)),  # repeat: 900 + 900
    )),
    Case("acknowledged at 120 s: nothing more; the ack expires at 120 + 1800 = 1920 s", (
        (0, LOST, "", ("duty",)),
        (120, LOST, "ack", ()),
        (300, LOST, "", ()),            # the deputy step re-checks: acknowledged
        (900, LOST, "", ()),
        (1919, LOST, "", ()),
        (1920, LOST, "", ("duty",)),    # exactly at its end the ack is gone: from the top
        (2220, LOST, "", ("deputy",)),  # 1920 + 300
    )),
    Case("ack breaks when a second channel goes at 200 s; the policy starts over", (
        (0, LOST, "", ("duty",)),
        (120, LOST, "ack", ()),
        (200, TWO_LOST, "", ("duty",)),
        (499, TWO_LOST, "", ()),
        (500, TWO_LOST, "", ("deputy",)),  # 200 + 300
    )),
    Case("ack breaks when severity rises (isolated: critical)", (
        (0, LOST, "", ("duty",)),
        (60, LOST, "ack", ()),
        (90, ISOLATED, "", ("duty",)),
    )),
    Case("an alert of the ack clearing is not worse: the ack holds", (
        (0, TWO_LOST, "", ("duty",)),
        (60, TWO_LOST, "ack", ()),
        (300, LOST, "", ()),
    )),
    Case("resolved at 250 s: the deputy is not called; firing again at 400 s is new", (
        (0, LOST, "", ("duty",)),
        (250, None, "", ()),
        (300, None, "", ()),
        (400, LOST, "", ("duty",)),
        (700, LOST, "", ("deputy",)),   # 400 + 300
    )),
    Case("unacknowledged at 200 s: from the top at once", (
        (0, LOST, "", ("duty",)),
        (100, LOST, "ack", ()),
        (200, LOST, "unack", ("duty",)),
        (500, LOST, "", ("deputy",)),
    )),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_escalation(case: Case) -> None:
    esc = Escalation(POLICY, ack_timeout=1800)
    for at, level, action, expected in case.timeline:
        esc.update({} if level is None else {"v05": level}, at)
        if action == "ack":
            assert level is not None and esc.acknowledge("v05", "张三", level, at) is not None
        elif action == "unack":
            assert esc.unacknowledge("v05", at)
        got = tuple(step.notify for _, step, _ in esc.due(at))
        assert got == expected, f"at {at} s: {got} (want {expected})"


def test_an_ack_for_a_resolved_group_does_nothing() -> None:
    esc = Escalation(POLICY)
    esc.update({"v05": LOST}, 0)
    esc.update({}, 10)
    assert esc.acknowledge("v05", "张三", LOST, 20) is None and esc.state("v05", 20) == "resolved"


def test_the_next_step_is_known_ahead() -> None:
    """For the daemon's timer: the deputy at 300 s; once acknowledged, the expiry."""
    esc = Escalation(POLICY, ack_timeout=1800)
    esc.update({"v05": LOST}, 0)
    esc.due(0)
    assert esc.next_due() == 300
    esc.acknowledge("v05", "张三", LOST, 120)
    assert esc.next_due() == 1920


@pytest.mark.parametrize(("steps", "repeat"), [
    ((Step(0, "duty", ("a",)), Step(30, "deputy", ("a",))), None),  # 30 s apart
    ((Step(0, "duty", ("a",)),), 30.0),
    ((), None),
])
def test_a_policy_keeps_its_steps_a_minute_apart(steps: tuple[Step, ...],
                                                 repeat: float | None) -> None:
    with pytest.raises(ValueError):
        Policy(steps, repeat)
