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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from commsmon.core.alerting import SEVERITIES, Alert, Severity, group_of

__all__ = ["DEFAULT_ACK_TIMEOUT", "MIN_STEP_GAP", "Ack", "Escalation", "GroupLevel", "Policy",
           "PolicyRule", "Step", "group_levels"]

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


def group_levels(firing: Iterable[Alert]) -> dict[str, tuple[GroupLevel, Mapping[str, str]]]:
    """Each group's level (worst severity, the alerts firing: ``rule`` and sorted labels)
    and the labels of its worst alert (for choosing its policy)."""
    alerts: dict[str, list[Alert]] = {}
    for alert in firing:
        alerts.setdefault(group_of(alert), []).append(alert)
    out = {}
    for key, group in alerts.items():
        worst = min(group, key=lambda a: (SEVERITIES.index(a.severity), a.fingerprint))
        names = frozenset(f"{a.rule} {' '.join(f'{k}={v}' for k, v in sorted(a.labels.items()))}"
                          for a in group)
        out[key] = (GroupLevel(worst.severity, names), worst.labels)
    return out


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
        via: receiver names, in order of preference (the next takes over when one
            is throttled or failing).
        also: receivers told as well, each on its own (the leaders' robot *and* the
            SMS gateway).
    """

    after: float
    notify: str
    via: tuple[str, ...]
    also: tuple[str, ...] = ()


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


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """Groups whose worst alert's labels match follow ``policy``.

    Attributes:
        name: the policy's name in the configuration.
        match: label -> accepted values (empty: every group).
        policy: the steps.
    """

    name: str
    match: Mapping[str, tuple[str, ...]]
    policy: Policy

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher accepts the label's value."""
        return all(labels.get(k) in values for k, values in self.match.items())


@dataclass(slots=True)
class _Group:
    started: float  # when it (re)started firing unacknowledged: steps count from here
    taken: int = 0  # steps taken since
    ack: Ack | None = None
    broken: int = 0  # acks broken by worsening
    opened: float = 0.0  # when it began firing (an ack link is bound to this episode)
    policy: str | None = None  # the policy it follows; None: acknowledged, never escalated
    level: GroupLevel | None = None  # how bad it is now
    restarts: int = 0  # times the policy started over (ack broken, expired, withdrawn)


@dataclass(slots=True)
class Escalation:
    """Acks and escalation of every group, as the alerts change.

    Args:
        policy: the policy of groups no rule picks (``None``: such groups can be
            acknowledged, and an ack holds back repeats, but nobody is escalated to).
        ack_timeout: seconds an ack holds.
        rules: policies by the labels of a group's worst alert, first match wins.
    """

    policy: Policy | None = None
    ack_timeout: float = DEFAULT_ACK_TIMEOUT
    rules: Sequence[PolicyRule] = ()
    _groups: dict[str, _Group] = field(default_factory=dict)

    def _policy_name(self, labels: Mapping[str, str]) -> str | None:
        for rule in self.rules:
            if rule.matches(labels):
                return rule.name
        return "" if self.policy is not None else None

    def _policy(self, group: _Group) -> Policy | None:
        if group.policy is None:
            return None
        if group.policy == "":
            return self.policy
        return next((r.policy for r in self.rules if r.name == group.policy), None)

    def update(self, levels: Mapping[str, GroupLevel], now: float,
               labels: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
        """The groups firing now and how bad each is (and the labels of each one's worst
        alert, which pick its policy); returns the groups whose ack broke (they got
        worse) at this update.  A group not in ``levels`` resolved."""
        broken = []
        labels = labels or {}
        for key in list(self._groups):
            if key not in levels:
                del self._groups[key]
        for key, level in levels.items():
            group = self._groups.get(key)
            wanted = self._policy_name(labels.get(key, {}))
            if group is None:
                self._groups[key] = _Group(now, opened=now, policy=wanted, level=level)
                continue
            if group.policy is None and wanted is not None:
                group.policy, group.started, group.taken = wanted, now, 0  # now worth a page
            group.level = level
            ack = group.ack
            if ack is None:
                continue
            if level.worse_than(ack.level):
                group.ack, group.started, group.taken = None, now, 0
                group.broken += 1
                group.restarts += 1
                broken.append(key)
            elif now >= ack.until:  # expired: the policy starts over from the expiry
                group.ack, group.started, group.taken = None, ack.until, 0
                group.restarts += 1
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
        group.restarts += 1
        return True

    def escalate_now(self, key: str, now: float) -> bool:
        """Take the next step of ``key``'s policy now (an officer asks for help): any ack
        is withdrawn and the step that was next falls due at ``now``; ``False`` if
        the group is not firing or follows no policy."""
        group = self._groups.get(key)
        policy = None if group is None else self._policy(group)
        if group is None or policy is None:
            return False
        if group.ack is not None:
            group.ack = None
            group.restarts += 1
        try:
            _, offset = policy.step_at(group.taken)
        except IndexError:
            last = policy.steps[-1]
            group.taken = len(policy.steps) - 1  # no repeat: the last step again
            offset = last.after
        group.started = now - offset
        return True

    def escalates(self, key: str) -> bool:
        """Whether ``key`` follows a policy (has steps to take)."""
        group = self._groups.get(key)
        return group is not None and self._policy(group) is not None

    def opened(self, key: str) -> float | None:
        """When ``key`` began firing (epoch seconds), ``None`` when it is not firing:
        what an ack link is bound to (a resolved group that fires again is new)."""
        group = self._groups.get(key)
        return None if group is None else group.opened

    def level(self, key: str) -> GroupLevel | None:
        """How bad ``key`` is now, ``None`` when it is not firing."""
        group = self._groups.get(key)
        return None if group is None else group.level

    def episode(self, key: str) -> int:
        """How many times ``key``'s policy started over (notification keys use it)."""
        group = self._groups.get(key)
        return 0 if group is None else group.restarts

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

    def due(self, now: float) -> list[tuple[str, Step, int]]:
        """The steps to take now, per group, with their number (0-based, since the
        policy last started over): only for groups firing and unacknowledged at
        ``now`` (asked just before sending).  Marks them taken."""
        out = []
        for key, group in self._groups.items():
            policy = self._policy(group)
            if policy is None or self.state(key, now) != "firing":
                continue
            while True:
                try:
                    step, offset = policy.step_at(group.taken)
                except IndexError:
                    break
                if group.started + offset > now:
                    break
                out.append((key, step, group.taken))
                group.taken += 1
        return out

    def next_due(self) -> float | None:
        """When the next step falls due (epoch seconds), ``None`` if none is pending."""
        times = []
        for group in self._groups.values():
            if group.ack is not None:
                times.append(group.ack.until)  # the expiry restarts the policy
                continue
            policy = self._policy(group)
            if policy is None:
                continue
            try:
                _, offset = policy.step_at(group.taken)
            except IndexError:
                continue
            times.append(group.started + offset)
        return min(times, default=None)

    def next_due_of(self, key: str) -> float | None:
        """When ``key``'s next step falls due (its ack's end while acknowledged),
        ``None`` when nothing is pending for it."""
        group = self._groups.get(key)
        if group is None:
            return None
        if group.ack is not None:
            return group.ack.until
        policy = self._policy(group)
        if policy is None:
            return None
        try:
            _, offset = policy.step_at(group.taken)
        except IndexError:
            return None
        return group.started + offset

    def groups(self) -> Iterable[str]:
        """Keys of the groups firing (acknowledged or not)."""
        return self._groups.keys()

    def dump(self) -> dict[str, Any]:
        """The state as JSON-ready data (to survive a restart)."""
        return {key: {
            "started": g.started, "taken": g.taken, "broken": g.broken, "opened": g.opened,
            "policy": g.policy, "restarts": g.restarts,
            "level": None if g.level is None else _level_doc(g.level),
            "ack": None if g.ack is None else {
                "by": g.ack.by, "at": g.ack.at, "until": g.ack.until,
                "level": _level_doc(g.ack.level)},
        } for key, g in self._groups.items()}

    def load(self, data: Mapping[str, Any]) -> None:
        """Restore what :meth:`dump` gave."""
        self._groups = {}
        for key, d in data.items():
            ack = d.get("ack")
            self._groups[key] = _Group(
                float(d["started"]), int(d["taken"]),
                None if ack is None else Ack(str(ack["by"]), float(ack["at"]),
                                             float(ack["until"]), _level(ack["level"])),
                int(d.get("broken", 0)), float(d.get("opened", d["started"])),
                d.get("policy"), None if d.get("level") is None else _level(d["level"]),
                int(d.get("restarts", 0)))


def _level_doc(level: GroupLevel) -> dict[str, Any]:
    return {"severity": level.severity, "alerts": sorted(level.alerts)}


def _level(d: Mapping[str, Any]) -> GroupLevel:
    severity = d["severity"]
    if severity not in SEVERITIES:
        raise ValueError(f"bad severity {severity!r}")
    return GroupLevel(severity, frozenset(str(a) for a in d["alerts"]))


def _rank(severity: str) -> int:
    return len(SEVERITIES) - SEVERITIES.index(severity) if severity in SEVERITIES else 0
