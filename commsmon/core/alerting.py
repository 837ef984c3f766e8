"""What the alerting core hands to receivers: alerts and notifications (values only).

An :class:`Alert` is one rule firing for one thing (a site, a device, a
channel).  A :class:`Notification` is what one receiver gets about one group
(a site, or the monitor itself): its firing and newly resolved alerts, the
alerts folded into it (suppressed children), and the site's context, so a
message can name the village, its town, what failed since when, which
channels survive and whether it is ready.  Text is composed by the outputs
from these facts, in Chinese or English.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from commsmon.core.facts import Fact

__all__ = ["SEVERITIES", "Alert", "Notification", "NotificationKind", "Severity", "SiteContext",
           "fingerprint", "group_of"]

Severity = Literal["critical", "warning", "info"]
NotificationKind = Literal["news", "repeat", "escalation", "digest"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit id of a label set (order-independent)."""
    text = "\x1f".join(f"{k}\x1e{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Alert:
    """One rule firing for one thing.

    Attributes:
        rule: the rule name (``site_isolated``, ``device_down`` ...).
        severity: ``critical``, ``warning`` or ``info``.
        labels: ``alertname``, ``severity``, ``site`` and, per rule,
            ``device``, ``kind``, ``channel``, ``scenario`` or ``outage``;
            values come from the configuration only.
        facts: what a message needs (typed facts: the device and why, the
            verdict with its arithmetic, the outage and its evidence).
        starts_at: epoch seconds the condition began (before its ``for``).
        ends_at: epoch seconds it resolved; ``None`` while firing.
    """

    rule: str
    severity: Severity
    labels: Mapping[str, str]
    facts: tuple[Fact, ...] = ()
    starts_at: float = 0.0
    ends_at: float | None = None

    @property
    def fingerprint(self) -> str:
        """Stable id of the alert (its labels)."""
        return fingerprint(self.labels)

    @property
    def resolved(self) -> bool:
        """Whether it has ended."""
        return self.ends_at is not None


@dataclass(frozen=True, slots=True)
class SiteContext:
    """The site a notification is about, as of the notification.

    Attributes:
        id: site id.
        name: village name.
        town: town (镇/街道).
        state: ``up``, ``degraded``, ``down`` (isolated) or ``unknown``.
        channels_up: channels that work now.
        channels_lost: channels that do not, with their state (``down``/``unknown``).
        readiness: scenario -> ``True`` if ready.
        outages: active outage kinds (``power``, ``network``, ``road``).
        now: the ``now`` verdict (a ``verdict`` fact) while an outage bears on
            the site, else ``None``.
    """

    id: str
    name: str
    town: str
    state: str
    channels_up: tuple[str, ...] = ()
    channels_lost: Mapping[str, str] = field(default_factory=dict)
    readiness: Mapping[str, bool] = field(default_factory=dict)
    outages: tuple[str, ...] = ()
    now: Fact | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one receiver about one group.

    Attributes:
        key: idempotency key, unique per notification and stable across
            retries and restarts; receivers that dedup use it.
        receiver: the receiver's name from the configuration.
        group: the group key (``site:v05``, ``monitor``).
        status: ``firing`` while any alert in it fires, else ``resolved``.
        alerts: firing alerts, then the ones resolved since the last
            notification of this group.
        folded: alerts reported inside this one instead of one by one
            (devices behind a down router, inside an active outage).
        site: the site's context; ``None`` for the monitor group.
        created_at: epoch seconds it was decided.
        language: ``zh`` or ``en``, as the receiver is configured.
        kind: ``news`` (something changed), ``repeat`` (an unchanged group told
            again), ``escalation`` (a step of an escalation policy) or ``digest``
            (repeats told together, their titles in ``escalation``'s place as a
            ``digest`` fact); repeats yield to the others when a robot's budget is
            short, and are folded into one digest.
        escalation: for an escalation step, an ``escalation`` fact (the step, the
            role, who holds it now and how to reach them, unacknowledged since); for
            a digest, a ``digest`` fact (the titles of the repeats it carries).
        fallbacks: receivers to hand it to, in order, when its own is throttled
            or failing (an escalation step's other ``via``).
        ack_url: the link that acknowledges the group, added as it is sent (never
            stored: each sending gets its own single-use link); ``""`` for none.
        drill: the id of the drill running at its site when it was decided: the
            message says it is a drill (``""``: real).
    """

    key: str
    receiver: str
    group: str
    status: Literal["firing", "resolved"]
    alerts: tuple[Alert, ...]
    folded: tuple[Alert, ...] = ()
    site: SiteContext | None = None
    created_at: float = 0.0
    language: Literal["zh", "en"] = "zh"
    kind: NotificationKind = "news"
    escalation: Fact | None = None
    fallbacks: tuple[str, ...] = ()
    ack_url: str = ""
    drill: str = ""

    @property
    def severity(self) -> Severity:
        """The highest severity among its firing alerts (or all, once resolved)."""
        pool = [a for a in self.alerts if not a.resolved] or list(self.alerts)
        for level in SEVERITIES:
            if any(a.severity == level for a in pool):
                return level
        return "info"


def group_of(alert: Alert) -> str:
    """The group an alert belongs to: its site's (``site:v05``), or ``monitor``."""
    site = alert.labels.get("site")
    return f"site:{site}" if site else "monitor"
