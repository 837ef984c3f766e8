"""Acknowledgement and escalation of an alert group (pure; time passed in).

A group (a site's alerts, or the monitor's) is ``firing`` → ``acknowledged``
(by whom, when, until when) → ``resolved``.  Unlike a silence, an ack never
hides what gets worse:

* it **expires** after its timeout (``ack_timeout``, 30 min by default) and
  the group is firing again;
* it **breaks** the moment the group gets worse than it was when acknowledged
  — a higher severity, or an alert that was not firing then (a second channel
  lost, a second outage);
* it ends with the group: a group that resolves and fires again is new.

An **escalation policy** is a list of steps ``(after, notify, via)``: ``after``
seconds from the moment the group (re)started firing unacknowledged, tell the
role ``notify`` through the receivers ``via``; with ``repeat``, the last step
comes again every ``repeat`` seconds.  Steps stop on ack and on resolve.  A
broken or expired ack restarts the policy from its first step.  What is due
is asked for just before sending (:meth:`Escalation.due`), so a step never goes
out for a group that was acknowledged or resolved meanwhile (Grafana OnCall's
#4654: notifications after an ack).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from commsmon.core.alerting import SEVERITIES, Severity

__all__ = ["MIN_STEP_GAP", "Ack", "Escalation", "GroupLevel", "Policy", "Step"]

MIN_STEP_GAP = 60.0  # seconds: steps of a policy are at least this far apart
DEFAULT_ACK_TIMEOUT = 30 * 60.0  # seconds an ack holds unless the configuration says

GroupState = Literal["firing", "acknowledged", "resolved"]


@dataclass(frozen=True, slots=True)
class GroupLevel:
    """How bad a group is: its worst severity and the alerts firing in it.

    Attributes:
        severity: the worst severity firing (``critical`` > ``warning`` > ``info``).
        alerts: keys of the alerts firing (rule and labels, as the dispatcher keys them).
    """

    severity: Severity
    alerts: frozenset[str]

    def worse_than(self, other: GroupLevel) -> bool:
        """A higher severity, or an alert firing now that was not in ``other``."""
        return (_rank(self.severity) > _rank(other.severity)
                or not self.alerts <= other.alerts)


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledgement.

    Attributes:
        by: who acknowledged (an officer's name).
        at: epoch seconds.
        until: epoch seconds it expires at.
        level: the group as it was acknowledged.
    """

    by: str
    at: float
    until: float
    level: GroupLevel


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a policy: ``after`` seconds, tell ``notify`` through ``via``.

    Attributes:
        after: seconds after the group started firing unacknowledged.
        notify: the role to tell (``duty``, ``deputy``, ``leader`` ...).
        via: receiver names, in order of preference.
    """

    after: float
    notify: str
    via: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    """An escalation policy.

    Attributes:
        steps: in order of ``after``, each at least MIN_STEP_GAP after the one before.
        repeat: seconds between repeats of the last step, ``None`` for none.

    Raises:
        ValueError: no steps, steps out of order or closer than MIN_STEP_GAP, a
            repeat shorter than it.
    """

    steps: tuple[Step, ...]
    repeat: float | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("an escalation policy needs at least one step")
        for before, step in zip(self.steps, self.steps[1:], strict=False):
            if step.after - before.after < MIN_STEP_GAP:
                raise ValueError(f"steps must be at least {MIN_STEP_GAP:g} s apart "
                                 f"({before.after:g} s, then {step.after:g} s)")
        if self.repeat is not None and self.repeat < MIN_STEP_GAP:
            raise ValueError(f"repeat must be at least {MIN_STEP_GAP:g} s")

    def step_at(self, n: int) -> tuple[Step, float]:
        """The ``n``-th step to take (0-based, repeats counted on) and its offset."""
        if n < len(self.steps):
            return self.steps[n], self.steps[n].after
        last = self.steps[-1]
        if self.repeat is None:
            raise IndexError(n)
        return last, last.after + (n - len(self.steps) + 1) * self.repeat


@dataclass(slots=True)
class _Group:
    started: float  # when it (re)started firing unacknowledged: steps count from here
    taken: int = 0  # steps taken since
    ack: Ack | None = None
    broken: int = 0  # acks broken by worsening


@dataclass(slots=True)
class Escalation:
    """Acks and escalation of every group, as the alerts change.

    Args:
        policy: the policy every group follows.
        ack_timeout: seconds an ack holds.
    """

    policy: Policy
    ack_timeout: float = DEFAULT_ACK_TIMEOUT
    _groups: dict[str, _Group] = field(default_factory=dict)

    def update(self, levels: Mapping[str, GroupLevel], now: float) -> list[str]:
        """The groups firing now and how bad each is; returns the groups whose ack
        broke (they got worse) at this update.  A group not in ``levels`` resolved."""
        broken = []
        for key in list(self._groups):
            if key not in levels:
                del self._groups[key]
        for key, level in levels.items():
            group = self._groups.get(key)
            if group is None:
                self._groups[key] = _Group(now)
                continue
            ack = group.ack
            if ack is None:
                continue
            if level.worse_than(ack.level):
                group.ack, group.started, group.taken = None, now, 0
                group.broken += 1
                broken.append(key)
            elif now >= ack.until:  # expired: the policy starts over from the expiry
                group.ack, group.started, group.taken = None, ack.until, 0
        return broken

    def acknowledge(self, key: str, by: str, level: GroupLevel, now: float) -> Ack | None:
        """``by`` acknowledges group ``key`` as it is now (``level``); ``None`` if it is
        not firing (resolved meanwhile: nothing to acknowledge)."""
        group = self._groups.get(key)
        if group is None:
            return None
        group.ack = Ack(by, now, now + self.ack_timeout, level)
        return group.ack

    def unacknowledge(self, key: str, now: float) -> bool:
        """Withdraw the ack of ``key``: it fires again and the policy starts over."""
        group = self._groups.get(key)
        if group is None or group.ack is None:
            return False
        group.ack, group.started, group.taken = None, now, 0
        return True

    def state(self, key: str, now: float) -> GroupState:
        """``firing``, ``acknowledged`` (an ack in force at ``now``) or ``resolved``."""
        group = self._groups.get(key)
        if group is None:
            return "resolved"
        if group.ack is not None and now < group.ack.until:
            return "acknowledged"
        return "firing"

    def ack(self, key: str) -> Ack | None:
        """The ack of ``key`` in force or expired but not yet noticed by :meth:`update`."""
        group = self._groups.get(key)
        return None if group is None else group.ack

    def due(self, now: float) -> list[tuple[str, Step]]:
        """The steps to take now, per group: only for groups firing and unacknowledged
        at ``now`` (asked just before sending).  Marks them taken."""
        out = []
        for key, group in self._groups.items():
            if self.state(key, now) != "firing":
                continue
            while True:
                try:
                    step, offset = self.policy.step_at(group.taken)
                except IndexError:
                    break
                if group.started + offset > now:
                    break
                out.append((key, step))
                group.taken += 1
        return out

    def next_due(self) -> float | None:
        """When the next step falls due (epoch seconds), ``None`` if none is pending."""
        times = []
        for group in self._groups.values():
            if group.ack is not None:
                times.append(group.ack.until)  # the expiry restarts the policy
                continue
            try:
                _, offset = self.policy.step_at(group.taken)
            except IndexError:
                continue
            times.append(group.started + offset)
        return min(times, default=None)

    def groups(self) -> Iterable[str]:
        """Keys of the groups firing (acknowledged or not)."""
        return self._groups.keys()


def _rank(severity: str) -> int:
    return len(SEVERITIES) - SEVERITIES.index(severity) if severity in SEVERITIES else 0
