"""Alertmanager: every alert pushed to ``POST <base>/api/v2/alerts``; the shapes the webhook shares.

:class:`AlertmanagerShapes` makes what both Alertmanager-shaped receivers
(this one and :class:`~commsmon.outputs.alerts.receivers.webhook.WebhookReceiver`)
say of an alert: its labels (``alertname`` and ``severity`` added), its
annotations (``summary`` with the place, ``description``) in the
notification's language, and its generator URL (commsmon's ``external_url``
+ ``/api/v1/sites/<site>``).  Times are RFC 3339 UTC (:func:`rfc3339`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, Self

import aiohttp

from commsmon.config.alerting import AlertmanagerSpec, ReceiverSpec
from commsmon.core.alerting import Alert, Notification
from commsmon.outputs.alerts.base import DeliveryResult
from commsmon.outputs.alerts.messages import DEFAULT_TZ, alert_description, alert_summary, place
from commsmon.outputs.alerts.receivers.http import HttpReceiver, dumps, judge_status, spec_as
from commsmon.outputs.wording.catalogs import Language
from commsmon.outputs.wording.render import Wording

__all__ = ["AlertmanagerReceiver", "AlertmanagerShapes", "labels_of", "rfc3339"]

def rfc3339(epoch: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds (``2026-11-29T06:40:00.000Z``)."""
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def labels_of(alert: Alert) -> dict[str, str]:
    labels = dict(alert.labels)
    labels.setdefault("alertname", alert.rule)
    labels.setdefault("severity", alert.severity)
    return labels


class AlertmanagerShapes(HttpReceiver):
    """Alert annotations and generator URLs shared by the webhook and Alertmanager receivers."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        timeout: float,
        external_url: str,
        tz: tzinfo,
    ) -> None:
        super().__init__(url, name=name, timeout=timeout)
        self.external_url = external_url.rstrip("/")
        self.tz = tz

    def _annotations(self, notification: Notification, alert: Alert) -> dict[str, str]:
        lang, now = notification.language, notification.created_at
        colon = "：" if lang == "zh" else ": "
        return {
            "summary": f"{place(notification)}{colon}{alert_summary(alert, lang, self.tz, now)}",
            "description": alert_description(alert, lang, self.tz, now),
        }

    def _generator_url(self, alert: Alert) -> str:
        site = alert.labels.get("site")
        if not self.external_url:
            return ""
        return f"{self.external_url}/api/v1/sites/{site}" if site else self.external_url


class AlertmanagerReceiver(AlertmanagerShapes):
    """Pushes alerts to Alertmanager's ``POST <base>/api/v2/alerts``.

    Every alert, folded ones included, goes as its own Alertmanager alert,
    which Alertmanager dedups by labels — so an HA pair of commsmon instances
    pushing the same alert is safe, and Alertmanager's grouping, inhibition
    and silences apply.

    Args:
        base_url: Alertmanager's base URL (with any ``--web.route-prefix``).
        name: receiver name (metric label).
        timeout: seconds per attempt, default 10.0.
        external_url: commsmon's own base URL, for ``generatorURL``.
        tz: time zone of the times in the annotations.
        firing_ttl: seconds a firing alert stays firing in Alertmanager
            without being pushed again (its ``endsAt`` is now + this);
            default 24 h.  Alertmanager resolves an alert at its ``endsAt``
            (or after its ``resolve_timeout`` if none is given, default
            5 min), so the outbox must push firing alerts again more often
            than this (the dispatcher's repeat interval, 4 h, does).
        clock: epoch seconds now.
    """

    max_per_minute = 60
    shared = True  # both replicas of a pair push; an Alertmanager cluster dedups

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "alertmanager",
        timeout: float = 10.0,
        external_url: str = "",
        tz: tzinfo = DEFAULT_TZ,
        firing_ttl: float = 24 * 3600.0,
        heartbeat: float | None = None,
        language: Language = "zh",
        clock: Callable[[], float] = time.time,
    ) -> None:
        url = f"{base_url.rstrip('/')}/api/v2/alerts"
        super().__init__(url, name=name, timeout=timeout, external_url=external_url, tz=tz)
        self.firing_ttl = firing_ttl
        self.heartbeat, self.language = heartbeat, language
        self._clock = clock

    @classmethod
    def from_spec(cls, spec: ReceiverSpec, tz: tzinfo) -> Self:
        """From ``type: alertmanager`` (``url`` is the base URL)."""
        s = spec_as(spec, AlertmanagerSpec)
        external_url = str(s.external_url) if s.external_url else ""
        return cls(s.url.get_secret_value(), name=s.name, timeout=s.timeout,
                   external_url=external_url, tz=tz, firing_ttl=s.firing_ttl,
                   heartbeat=s.heartbeat, language=s.language)

    def payload(self, notification: Notification) -> list[dict[str, Any]]:
        """The list of postable alerts (Alertmanager API v2 ``PostableAlerts``)."""
        now = max(self._clock(), notification.created_at)
        out = []
        for alert in (*notification.alerts, *notification.folded):
            ends = alert.ends_at if alert.ends_at is not None else now + self.firing_ttl
            item: dict[str, Any] = {
                "labels": labels_of(alert),
                "annotations": self._annotations(notification, alert),
                "startsAt": rfc3339(alert.starts_at),
                "endsAt": rfc3339(ends),
            }
            generator = self._generator_url(alert)
            if generator:
                item["generatorURL"] = generator
            out.append(item)
        return out

    async def beat(self, session: aiohttp.ClientSession, started: float,
                   labels: Mapping[str, str]) -> DeliveryResult:
        """Push ``monitor_heartbeat`` once: firing since ``started`` (epoch seconds),
        ending three ``heartbeat`` periods from now unless pushed again; ``labels``
        (``shard``) tell one instance's heartbeat from another's."""
        now = self._clock()
        w = Wording(self.language, self.tz, now)
        item = {
            "labels": {"alertname": "monitor_heartbeat", "severity": "none", **labels},
            "annotations": {
                "summary": w.rule("monitor_heartbeat"),
                "description": w._("commsmon is running and evaluating: this alert fires as "
                                   "long as it does; when it stops, the monitor is down"),
            },
            "startsAt": rfc3339(started),
            "endsAt": rfc3339(now + 3 * (self.heartbeat or 60.0)),
        }
        if self.external_url:
            item["generatorURL"] = self.external_url
        answer = await self._post(session, self._url, dumps([item]))
        if isinstance(answer, DeliveryResult):
            return answer
        if answer.success:
            return DeliveryResult(True, f"HTTP {answer.status}")
        return judge_status(answer, self._snippet(answer))

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        """POST the alerts once."""
        body = dumps(self.payload(notification))
        answer = await self._post(session, self._url, body)
        if isinstance(answer, DeliveryResult):
            return self._result(answer)
        if answer.success:
            return DeliveryResult(True, f"HTTP {answer.status}")
        return self._result(judge_status(answer, self._snippet(answer)))
