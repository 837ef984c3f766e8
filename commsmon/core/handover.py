"""What a standby replica may drop because its leader has already told the receiver.

Both replicas of an HA pair watch the same fleet and decide the same
notifications, each in its own outbox, seconds apart; only the leader sends to
receivers that cannot dedup (robots, webhooks, escalation steps).  After each
delivery the leader records what it told: per receiver and group, the
notification's :func:`signature`, when its episode began and when it was
decided (:class:`Told`).  The standby holds its own notifications and drops
those the receiver has been told (:func:`told_count`), so that when it takes
over it sends exactly what the leader did not: nothing twice, nothing lost.

Notification keys cannot be compared: each replica numbers its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from commsmon.core.alerting import Notification

__all__ = ["SKEW", "Told", "begun", "signature", "told_count"]

SKEW = 120.0
"""Seconds two replicas may disagree on when the same thing happened: an evaluation
interval, a poll's timeout and a lease period, with room to spare."""


@dataclass(frozen=True, slots=True)
class Told:
    """What one receiver was last told about one group, by the leader.

    Attributes:
        signature: the notification's :func:`signature`.
        begun: epoch seconds its episode began (:func:`begun`).
        at: epoch seconds the leader decided it (``Notification.created_at``).
    """

    signature: str
    begun: float
    at: float


def signature(note: Notification) -> str:
    """What a notification tells, the same from either replica: its status, each of its
    alerts firing or resolved, and for an escalation step the step, role and restart."""
    alerts = ",".join(sorted(f"{a.fingerprint}{'-' if a.resolved else '+'}"
                             for a in note.alerts))
    step = ""
    if note.kind == "escalation" and note.escalation is not None:
        args = note.escalation.args
        step = f"|step {args.get('step')} {args.get('role')} {args.get('restarts')}"
    return f"{note.status}|{alerts}{step}"


def begun(note: Notification) -> float:
    """Epoch seconds the newest of its alerts began (0.0 for none): tells one episode of
    a group from an earlier one with the same alerts."""
    return max((a.starts_at for a in note.alerts), default=0.0)


def told_count(held: Sequence[Notification], told: Told | None, skew: float = SKEW) -> int:
    """How many of ``held`` (one receiver's notifications about one group, oldest first)
    the receiver has already been told; the standby drops that many from the front.

    Up to and including the newest one that tells what the leader told in the same
    episode (its episode began within ``skew`` seconds of the leader's); failing such
    a match, those decided more than ``skew`` seconds before the leader's: the receiver
    has heard newer.  None when the leader told nothing.
    """
    if told is None:
        return 0
    for index in range(len(held) - 1, -1, -1):
        note = held[index]
        if signature(note) == told.signature and abs(begun(note) - told.begun) <= skew:
            return index + 1
    return sum(1 for note in held if note.created_at < told.at - skew)
