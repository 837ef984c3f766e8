"""Concrete receivers: a generic webhook, Alertmanager, and the DingTalk, WeCom and Feishu robots.

Each makes one POST per :meth:`~commsmon.outputs.alerts.base.Receiver.send`
and judges the answer; retries, backoff and the rate limit belong to the
outbox.  A receiver never raises for a receiver's failure and never puts its
secret or its full URL (which holds the robot's token or key) in a
``DeliveryResult.detail``: details name the HTTP status or the robot's error
code, and anything echoed back from the far end is scrubbed of them.

An answer that refuses our messages or credentials rather than this attempt
(a robot's keyword, signature or IP allow-list check, a wrong key, HTTP
401/403) carries a :class:`~commsmon.outputs.alerts.base.Rejection`; the
deliverer raises the receiver's ``monitor_fault`` on it.  Timeouts, 5xx, rate
limits and a message too long are failures, not rejections.

One module per receiver, each with its far end's limits and codes and where
they come from: :mod:`.webhook`, :mod:`.alertmanager`, :mod:`.dingtalk`,
:mod:`.wecom`, :mod:`.feishu`; what they share is in :mod:`.http` (the POST,
status, secrets) and :mod:`.robot` (the IM robots' error codes and byte
budgets).  :data:`RECEIVERS` maps each configuration ``type`` to its class,
which builds itself from its spec (``from_spec``); a new receiver is a new
module, a spec in :mod:`commsmon.config.alerting` and a line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from types import MappingProxyType

from commsmon.config.alerting import ReceiverSpec
from commsmon.outputs.alerts.base import Receiver
from commsmon.outputs.alerts.receivers.alertmanager import AlertmanagerReceiver
from commsmon.outputs.alerts.receivers.dingtalk import DingTalkReceiver, dingtalk_sign
from commsmon.outputs.alerts.receivers.feishu import FeishuReceiver, feishu_sign
from commsmon.outputs.alerts.receivers.http import HttpReceiver, parse_retry_after, redact_url
from commsmon.outputs.alerts.receivers.webhook import ZERO_TIME, WebhookReceiver
from commsmon.outputs.alerts.receivers.wecom import WeComReceiver

__all__ = [
    "RECEIVERS",
    "ZERO_TIME",
    "AlertmanagerReceiver",
    "DingTalkReceiver",
    "FeishuReceiver",
    "WeComReceiver",
    "WebhookReceiver",
    "build_receiver",
    "dingtalk_sign",
    "feishu_sign",
    "parse_retry_after",
    "redact_url",
]

RECEIVERS: Mapping[str, type[HttpReceiver]] = MappingProxyType({
    "webhook": WebhookReceiver,
    "alertmanager": AlertmanagerReceiver,
    "dingtalk": DingTalkReceiver,
    "wecom": WeComReceiver,
    "feishu": FeishuReceiver,
})
"""Configuration ``type`` -> receiver class: one entry per spec in ``ReceiverSpec``."""


def build_receiver(spec: ReceiverSpec, tz: tzinfo) -> Receiver:
    """The receiver ``spec`` describes, its times shown in ``tz``.

    Raises:
        ValueError: the URL is not http(s) (a configuration error).
    """
    return RECEIVERS[spec.type].from_spec(spec, tz)
