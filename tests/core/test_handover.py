"""What a standby drops because its leader already told the receiver, worked by hand.

Times in seconds from 10:00:00.  ``A+`` is v05's site_isolated alert firing, ``A-``
the same alert resolved, ``B+`` its PDT channel alert firing; each alert began at
the time in brackets.  The leader and the standby decide the same things a few
seconds apart (SKEW = 120 s).
"""

from __future__ import annotations

import pytest

from commsmon.core.alerting import Alert, Notification
from commsmon.core.facts import Fact
from commsmon.core.handover import SKEW, Told, begun, signature, told_count

T0 = 1_780_000_000.0  # 10:00:00


def alert(name: str, began: float, ended: float | None = None) -> Alert:
    return Alert(name, "critical", {"alertname": name, "site": "v05"}, starts_at=T0 + began,
                 ends_at=None if ended is None else T0 + ended)


def note(at: float, *alerts: Alert, step: int | None = None) -> Notification:
    firing = any(not a.resolved for a in alerts)
    escalation = None if step is None else Fact("escalation", {
        "step": step, "role": "duty", "restarts": 0})
    return Notification(f"standby-{at}", "robot", "site:v05",
                        "firing" if firing else "resolved", alerts, created_at=T0 + at,
                        kind="news" if step is None else "escalation", escalation=escalation)


A_FIRES = note(100, alert("site_isolated", 40))                       # A+ [40] at 100
A_RESOLVES = note(400, alert("site_isolated", 40, 390))               # A- at 400
A_AGAIN = note(4000, alert("site_isolated", 3950))                    # A+ [3950] at 4000
AB_FIRE = note(160, alert("site_isolated", 40), alert("pdt_lost", 150))  # A+ B+ at 160
STEP_1 = note(1900, alert("site_isolated", 40), step=1)                # escalation 1 at 1900


def told(n: Notification, *, began_shift: float = 0.0, at_shift: float = 3.0) -> Told:
    """The leader's record of the same notification, decided ``at_shift`` s apart."""
    return Told(signature(n), begun(n) + began_shift, n.created_at + at_shift)


CASES = [
    # (why, standby holds, leader told, standby drops)
    ("leader told nothing: hold all", [A_FIRES, A_RESOLVES], None, 0),
    ("leader told A+ (its evaluation saw it 5 s later): drop A+, keep A-",
     [A_FIRES, A_RESOLVES], told(A_FIRES, began_shift=5), 1),
    ("leader told A-: drop both", [A_FIRES, A_RESOLVES], told(A_RESOLVES), 2),
    ("leader told A+ B+ (standby has not seen B yet): A+ at 100 < 163 - 120? no: keep",
     [A_FIRES], told(AB_FIRE), 0),
    ("leader told A+ B+ at 163 + 200 s: A+ at 100 < 363 - 120: superseded, drop",
     [A_FIRES], told(AB_FIRE, at_shift=203), 1),
    ("the episode's A+ told, a new episode's A+ (began 3950, not 40): keep the new one",
     [A_AGAIN], Told(signature(A_FIRES), T0 + 40, T0 + 103), 0),
    ("leader died after A+: new A+ of the same episode began 119 s later still matches",
     [A_FIRES], told(A_FIRES, began_shift=119), 1),
    ("... 121 s apart is another episode: hold", [A_FIRES], told(A_FIRES, began_shift=121), 0),
    ("escalation step 1 told: drop the news before it and the step",
     [A_FIRES, STEP_1], told(STEP_1), 2),
    ("news told, step 1 not yet: keep the step", [A_FIRES, STEP_1], told(A_FIRES), 1),
    ("flap: A+ A- A+ held, leader's last was A- : send only the new A+",
     [A_FIRES, A_RESOLVES, A_AGAIN], told(A_RESOLVES), 2),
]


@pytest.mark.parametrize(("why", "held", "leader", "drops"), CASES, ids=[c[0] for c in CASES])
def test_what_the_standby_drops(why: str, held: list[Notification], leader: Told | None,
                                drops: int) -> None:
    assert told_count(held, leader) == drops, why


def test_signatures_do_not_depend_on_the_replica() -> None:
    """Keys, times and order of alerts differ between replicas; what is told does not."""
    a, b = alert("site_isolated", 40), alert("pdt_lost", 150)
    mine = Notification("leader/robot/site:v05/7", "robot", "site:v05", "firing", (a, b),
                        created_at=T0 + 163)
    theirs = Notification("standby/robot/site:v05/2", "robot", "site:v05", "firing", (b, a),
                          created_at=T0 + 160)
    assert signature(mine) == signature(theirs)
    assert signature(A_FIRES) != signature(A_RESOLVES)
    assert signature(A_FIRES) != signature(STEP_1)
    assert SKEW == 120.0
