"""The ``alerting`` section of the configuration: rules, pacing, receivers, routes, silences.

Example::

    alerting:
      group_wait: 30            # seconds a new group waits for its siblings
      group_interval: 120       # seconds between updates of a group
      repeat_interval: 14400    # seconds before an unchanged firing group is repeated
      give_up_after: 86400      # seconds the outbox keeps retrying a notification
      countdown_hours: [24, 6, 1]   # during an outage, tell when reachability drops below each
      rules:
        site_isolated: {for: 60, severity: critical}
        scenario_not_ready: {for: 3600, severity: warning}
      receivers:                        # each type takes only its own options
        - {name: duty, type: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=...",
           secret: "SEC...",              # dingtalk, feishu: the robot's signing secret
           keyword: "告警",               # dingtalk: the robot's custom keyword (自定义关键词)
           language: zh}
        - {name: archive, type: webhook, url: "http://127.0.0.1:9095/hook", language: en,
           external_url: "http://commsmon.example:9470"}  # webhook, alertmanager: our own URL
        - {name: am, type: alertmanager, url: "http://127.0.0.1:9093",
           firing_ttl: 86400}             # seconds a pushed firing alert lasts unrenewed
      routes:
        - {match: {severity: [critical]}, receivers: [duty]}
        - {receivers: [archive, am]}      # no match: every alert
      silences:                           # maintenance windows
        - {matchers: {site: v03}, starts: "2026-12-01T08:00:00+08:00",
           ends: "2026-12-01T12:00:00+08:00", comment: genset service}
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator

from commsmon.core.alerting import Severity
from commsmon.core.dispatch import Route, Silence, Timing
from commsmon.core.escalation import (
    DEFAULT_ACK_TIMEOUT,
    MIN_STEP_GAP,
    Policy,
    PolicyRule,
    Step,
)
from commsmon.core.rules import DEFAULT_COUNTDOWN_HOURS, DEFAULT_RULES, RULES, RuleSpec

__all__ = [
    "AlertingSpec",
    "AlertmanagerShapedSpec",
    "AlertmanagerSpec",
    "DingTalkSpec",
    "FeishuSpec",
    "ReceiverSpec",
    "ReceiverSpecBase",
    "RouteSpec",
    "RuleOverride",
    "SilenceSpec",
    "WeComSpec",
    "WebhookSpec",
]

Seconds = Annotated[float, Field(ge=0)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RuleOverride(StrictModel):
    """A rule's settings; unset fields keep the rule's defaults."""

    for_: Seconds | None = Field(None, alias="for")
    severity: Severity | None = None
    enabled: bool = True
    labels: dict[str, str] = {}


class ReceiverSpecBase(StrictModel):
    """What every receiver takes; each ``type`` has its own spec below, with its own options.

    Attributes:
        name: routes name the receiver by it; the ``receiver`` metric label.
        url: where it POSTs.  For the robots it holds the token or key, so
            it is a secret like ``secret``; neither is ever logged.
        language: of its messages, ``zh`` or ``en``.
        timeout: seconds an attempt may take, connection to last byte.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    url: SecretStr
    language: Literal["zh", "en"] = "zh"
    timeout: Annotated[float, Field(gt=0, le=120)] = 10.0


class AlertmanagerShapedSpec(ReceiverSpecBase):
    """What the two receivers that speak Alertmanager's shapes take.

    Attributes:
        external_url: commsmon's own base URL, as the readers of the alerts
            reach it: the webhook's ``externalURL`` and each alert's
            ``generatorURL`` (``<external_url>/api/v1/sites/<site>``).  Unset,
            both are empty (the webhook) or left out (Alertmanager).
    """

    external_url: HttpUrl | None = None


class WebhookSpec(AlertmanagerShapedSpec):
    """``type: webhook``: Alertmanager's webhook JSON POSTed to ``url``."""

    type: Literal["webhook"]


class AlertmanagerSpec(AlertmanagerShapedSpec):
    """``type: alertmanager``: alerts pushed to ``<url>/api/v2/alerts`` (``url`` is the base).

    Attributes:
        firing_ttl: seconds a firing alert stays firing in Alertmanager
            without being pushed again (its ``endsAt`` is now + this);
            default 86400 (24 h).  Longer than ``repeat_interval``, which
            pushes an unchanged firing alert again, or Alertmanager would
            resolve it in between.
        heartbeat: seconds between pushes of ``monitor_heartbeat``, an alert that
            fires as long as this instance runs and evaluates (a dead man's switch:
            route it to a watchdog receiver that pages when it stops coming); its
            ``endsAt`` is three of these ahead.  ``None`` (default): not pushed.
    """

    type: Literal["alertmanager"]
    firing_ttl: Annotated[float, Field(gt=0)] = 24 * 3600.0
    heartbeat: Annotated[float, Field(gt=0)] | None = None


class DingTalkSpec(ReceiverSpecBase):
    """``type: dingtalk``: a DingTalk custom robot.

    Attributes:
        secret: the signing secret (``SEC...``) if the robot uses 加签.
        keyword: a custom keyword (自定义关键词) the robot requires; put before
            the message's title when the title lacks it, since DingTalk
            refuses a message without one of its keywords (errcode 310000
            "keywords not in content").
    """

    type: Literal["dingtalk"]
    secret: SecretStr | None = None
    keyword: Annotated[str, Field(min_length=1)] | None = None


class WeComSpec(ReceiverSpecBase):
    """``type: wecom``: a WeCom group robot; it does not sign, the key in ``url`` is its secret."""

    type: Literal["wecom"]


class FeishuSpec(ReceiverSpecBase):
    """``type: feishu``: a Feishu / Lark custom bot.

    Attributes:
        secret: the signing secret if the bot uses 签名校验.
    """

    type: Literal["feishu"]
    secret: SecretStr | None = None


ReceiverSpec = Annotated[
    WebhookSpec | AlertmanagerSpec | DingTalkSpec | WeComSpec | FeishuSpec,
    Field(discriminator="type"),
]
"""Where notifications go: one spec per ``type``, so an option another type takes is an error."""


class RouteSpec(StrictModel):
    """Alerts whose labels match go to ``receivers`` (no ``match``: every alert)."""

    match: dict[str, list[str]] = {}
    receivers: list[str]


class SilenceSpec(StrictModel):
    """A maintenance window: matching alerts are held back between ``starts`` and ``ends``."""

    matchers: dict[str, str]
    starts: datetime
    ends: datetime
    comment: str = ""

    @model_validator(mode="after")
    def _order(self) -> SilenceSpec:
        if self.ends <= self.starts:
            raise ValueError("ends must be after starts")
        if self.starts.tzinfo is None or self.ends.tzinfo is None:
            raise ValueError("give starts and ends with a UTC offset (+08:00)")
        return self


class StepSpec(StrictModel):
    """An escalation step: ``after`` seconds unacknowledged, tell the role ``notify``
    (the roster's holder of it now) through ``via`` (receiver names; the next one
    takes over when one is throttled or failing), and through each of ``also`` too
    (e.g. an SMS or voice gateway beside the leaders' robot)."""

    after: Seconds
    notify: Annotated[str, Field(min_length=1, max_length=32)]
    via: Annotated[list[str], Field(min_length=1)]
    also: list[str] = []


class PolicySpec(StrictModel):
    """An escalation policy for the groups whose worst alert's labels ``match``
    (e.g. ``severity: [critical]``); the first matching policy applies."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    match: dict[str, list[str]] = {}
    steps: Annotated[list[StepSpec], Field(min_length=1)]
    repeat: Annotated[float, Field(ge=MIN_STEP_GAP)] | None = None

    @model_validator(mode="after")
    def _gaps(self) -> PolicySpec:
        for before, step in zip(self.steps, self.steps[1:], strict=False):
            if step.after - before.after < MIN_STEP_GAP:
                raise ValueError(f"steps must be at least {MIN_STEP_GAP:g} s apart "
                                 f"({before.after:g} s, then {step.after:g} s)")
        return self


class ShiftSpec(StrictModel):
    """One shift of the duty roster (值班表): who holds ``role`` from ``start`` to ``end``."""

    start: datetime
    end: datetime
    role: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    phone: Annotated[str, Field(max_length=32)] = ""

    @model_validator(mode="after")
    def _order(self) -> ShiftSpec:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("give start and end with a UTC offset (+08:00)")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class EscalationSpec(StrictModel):
    """Acknowledgement and escalation (DESIGN.md §3).

    Attributes:
        ack_timeout: seconds an acknowledgement holds before the group fires again.
        link_ttl: seconds an ack link in a message stays usable.
        policies: escalation policies, first match wins; a group none matches can
            still be acknowledged, and is not escalated.
    """

    ack_timeout: Annotated[float, Field(ge=60)] = DEFAULT_ACK_TIMEOUT
    link_ttl: Annotated[float, Field(ge=60)] = 86400.0
    policies: list[PolicySpec] = []

    def rules(self) -> tuple[PolicyRule, ...]:
        """The policies for the core."""
        return tuple(
            PolicyRule(p.name, {k: tuple(v) for k, v in p.match.items()},
                       Policy(tuple(Step(s.after, s.notify, tuple(s.via), tuple(s.also))
                                    for s in p.steps),
                              p.repeat))
            for p in self.policies)


class AlertingSpec(StrictModel):
    """Rules, pacing, receivers, routes and maintenance windows.

    Attributes:
        countdown_hours: while an outage bears on a site, the ``countdown``
            rule fires once the site is certainly reachable for less than each
            of these hours (those below its target).
        drill_receivers: where a drill's alerts go (marked 【演练】 with the drill
            id); ``None``: the receivers they would go to anyway.
    """

    group_wait: Seconds = 30.0
    group_interval: Seconds = 120.0
    repeat_interval: Annotated[float, Field(gt=0)] = 4 * 3600.0
    flap_window: Annotated[float, Field(gt=0)] = 600.0
    flap_changes: Annotated[int, Field(ge=2)] = 4
    flap_hold: Seconds = 600.0
    give_up_after: Annotated[float, Field(gt=0)] = 86400.0
    countdown_hours: list[Annotated[float, Field(gt=0)]] = list(DEFAULT_COUNTDOWN_HOURS)
    rules: dict[str, RuleOverride] = {}
    receivers: list[ReceiverSpec] = []
    routes: list[RouteSpec] = []
    silences: list[SilenceSpec] = []
    escalation: EscalationSpec = EscalationSpec()
    roster: list[ShiftSpec] = []
    drill_receivers: list[str] | None = None

    @model_validator(mode="after")
    def _references(self) -> AlertingSpec:
        unknown = sorted(set(self.rules) - set(RULES))
        if unknown:
            raise ValueError(f"unknown rules {unknown}; known: {', '.join(RULES)}")
        names = [r.name for r in self.receivers]
        if len(names) != len(set(names)):
            raise ValueError("receiver names must be unique")
        for route in self.routes:
            missing = sorted(set(route.receivers) - set(names))
            if missing:
                raise ValueError(f"a route names unknown receivers {missing}")
        missing = sorted(set(self.drill_receivers or ()) - set(names))
        if missing:
            raise ValueError(f"drill_receivers names unknown receivers {missing}")
        policies = [p.name for p in self.escalation.policies]
        if len(policies) != len(set(policies)):
            raise ValueError("escalation policy names must be unique")
        for policy in self.escalation.policies:
            for step in policy.steps:
                missing = sorted((set(step.via) | set(step.also)) - set(names))
                if missing:
                    raise ValueError(f"escalation policy {policy.name!r}: a step names "
                                     f"unknown receivers {missing}")
        for r in self.receivers:
            if isinstance(r, AlertmanagerSpec) and r.firing_ttl <= self.repeat_interval:
                raise ValueError(
                    f"receiver {r.name!r}: firing_ttl ({r.firing_ttl:g} s) must be longer than "
                    f"repeat_interval ({self.repeat_interval:g} s), or Alertmanager resolves a "
                    "firing alert before it is pushed again")
        return self

    def rule_specs(self) -> dict[str, RuleSpec]:
        """Every rule's spec, the defaults overridden by the configuration."""
        specs = dict(DEFAULT_RULES)
        for name, o in self.rules.items():
            base = specs[name]
            specs[name] = RuleSpec(
                base.for_seconds if o.for_ is None else o.for_,
                o.severity or base.severity, o.enabled, o.labels,
            )
        return specs

    def timing(self) -> Timing:
        """Pacing for the dispatcher."""
        return Timing(self.group_wait, self.group_interval, self.repeat_interval,
                      self.flap_window, self.flap_changes, self.flap_hold)

    def route_list(self) -> tuple[list[Route], list[str]]:
        """Routes, and the default receivers (every receiver when no route is given)."""
        routes = [Route({k: tuple(v) for k, v in r.match.items()}, tuple(r.receivers))
                  for r in self.routes]
        default = [] if self.routes else [r.name for r in self.receivers]
        return routes, default

    def config_silences(self) -> list[Silence]:
        """Maintenance windows as silences (ids ``config-N``)."""
        return [Silence(f"config-{i}", s.matchers, s.starts.timestamp(), s.ends.timestamp(),
                        "config", s.comment) for i, s in enumerate(self.silences)]
