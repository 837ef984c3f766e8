"""The generic webhook: Alertmanager's webhook JSON (version "4"), as Alertmanager would POST it.

Whatever takes Alertmanager's webhook (a DingTalk bridge, an incident
tool, a script) takes ours; ``Idempotency-Key`` carries the notification's
key, so a far end can drop a retry it has already seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any, Self
from urllib.parse import quote

import aiohttp

from commsmon.config.alerting import ReceiverSpec, WebhookSpec
from commsmon.core.alerting import Notification
from commsmon.outputs.alerts.base import DeliveryResult
from commsmon.outputs.alerts.messages import DEFAULT_TZ
from commsmon.outputs.alerts.receivers.alertmanager import (
    AlertmanagerShapes,
    labels_of,
    rfc3339,
)
from commsmon.outputs.alerts.receivers.http import dumps, judge_status, spec_as
from commsmon.outputs.wording import Wording

__all__ = ["ZERO_TIME", "WebhookReceiver"]

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as Alertmanager sends for firing alerts


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def _header_value(text: str) -> str:
    """``text`` as is if it is printable ASCII, else percent-encoded (headers are Latin-1)."""
    if text.isascii() and text.isprintable():
        return text
    return quote(text, safe="")


class WebhookReceiver(AlertmanagerShapes):
    """POSTs the Alertmanager webhook JSON (version "4") with an ``Idempotency-Key``.

    Args:
        url: the endpoint; may hold a token (it is never shown).
        name: receiver name (metric label).
        timeout: seconds per attempt, default 10.0.
        external_url: commsmon's own base URL (``externalURL``, generator URLs).
        tz: time zone of the times in the annotations.

    2xx is accepted; 408, 429, 5xx, timeouts and connection errors may pass
    later (``retry_after`` from ``Retry-After``); other 4xx and 3xx are
    permanent.  ``alerts`` holds the notification's own alerts; folded ones
    are left out, as Alertmanager leaves out inhibited alerts (the
    Alertmanager receiver and the robots' text do carry them).
    """

    max_per_minute = 60

    def __init__(
        self,
        url: str,
        *,
        name: str = "webhook",
        timeout: float = 10.0,
        external_url: str = "",
        tz: tzinfo = DEFAULT_TZ,
    ) -> None:
        super().__init__(url, name=name, timeout=timeout, external_url=external_url, tz=tz)

    @classmethod
    def from_spec(cls, spec: ReceiverSpec, tz: tzinfo) -> Self:
        """From ``type: webhook``."""
        s = spec_as(spec, WebhookSpec)
        external_url = str(s.external_url) if s.external_url else ""
        return cls(s.url.get_secret_value(), name=s.name, timeout=s.timeout,
                   external_url=external_url, tz=tz)

    def payload(self, notification: Notification) -> dict[str, Any]:
        """The webhook body as Alertmanager sends it (``notification_reason`` left out)."""
        site = notification.site
        group_labels = {"site": site.id} if site is not None else {}
        inner = f'site="{site.id}"' if site is not None else f'group="{notification.group}"'
        alerts = []
        labels = [labels_of(a) for a in notification.alerts]
        annotations = [self._annotations(notification, a) for a in notification.alerts]
        for alert, alert_labels, alert_annotations in zip(
            notification.alerts, labels, annotations, strict=True
        ):
            alerts.append(
                {
                    "status": "resolved" if alert.resolved else "firing",
                    "labels": alert_labels,
                    "annotations": alert_annotations,
                    "startsAt": rfc3339(alert.starts_at),
                    "endsAt": rfc3339(alert.ends_at) if alert.ends_at is not None else ZERO_TIME,
                    "generatorURL": self._generator_url(alert),
                    "fingerprint": alert.fingerprint,
                }
            )
        common = _common(annotations)
        # An escalation step and the ack link ride as common annotations (an SMS or
        # voice gateway reads them; Alertmanager's own format has no place for them).
        if notification.escalation is not None:
            w = Wording(notification.language, self.tz, notification.created_at)
            common["escalation"] = w.fact(notification.escalation, None)
        if notification.ack_url:
            common["ack_url"] = notification.ack_url
        return {
            "version": "4",
            "groupKey": f"{{}}:{{{inner}}}",
            "truncatedAlerts": 0,
            "status": notification.status,
            "receiver": notification.receiver,
            "groupLabels": group_labels,
            "commonLabels": _common(labels),
            "commonAnnotations": common,
            "externalURL": self.external_url,
            "alerts": alerts,
        }

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        """POST the webhook JSON once."""
        body = dumps(self.payload(notification))
        answer = await self._post(
            session, self._url, body, {"Idempotency-Key": _header_value(notification.key)}
        )
        if isinstance(answer, DeliveryResult):
            return self._result(answer)
        if answer.success:
            return DeliveryResult(True, f"HTTP {answer.status}")
        return self._result(judge_status(answer, self._snippet(answer)))
