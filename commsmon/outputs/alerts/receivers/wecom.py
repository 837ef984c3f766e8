"""WeCom (企业微信) group robot: markdown messages; the key in the URL is the only secret.

Limits, with where they come from: 20 messages a minute per robot;
``markdown.content`` at most 4096 UTF-8 bytes (WeCom docs, path/91770;
errcode 40058 when exceeded).  No signing: whoever has the URL can post.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import ClassVar, Self

import aiohttp

from commsmon.config.alerting import ReceiverSpec, WeComSpec
from commsmon.core.alerting import Notification
from commsmon.outputs.alerts.base import DeliveryResult
from commsmon.outputs.alerts.messages import DEFAULT_TZ, fit, render_markdown
from commsmon.outputs.alerts.receivers.http import dumps, spec_as
from commsmon.outputs.alerts.receivers.robot import RATE_LIMIT_RETRY, CodeTable, RobotReceiver

__all__ = ["WeComReceiver"]

class WeComReceiver(RobotReceiver):
    """WeCom (企业微信) group robot, ``markdown`` messages; the key in the URL is the secret.

    Args:
        url: ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``.
        name: receiver name (metric label).
        timeout: seconds per attempt, default 10.0.
        tz: time zone of the times shown.

    Codes: 45009 (frequency limit) waits 60 s; 93000 (invalid webhook URL,
    i.e. key) and 40058 (a field too long or invalid) are permanent; 93000 is a
    rejection.
    """

    max_per_minute = 20  # WeCom docs: 20 messages a minute per robot
    CONTENT_LIMIT = 4096  # bytes of markdown.content (WeCom docs; errcode 40058)
    CONTENT_BUDGET = 4000  # a little under, as the limit is counted by WeCom, not us
    codes: ClassVar[CodeTable] = {
        45009: (RATE_LIMIT_RETRY, False),  # api freq out of limit
        93000: (None, True),  # invalid webhook url
        40058: (None, True),  # markdown.content exceed max length 4096
    }
    rejects: ClassVar[frozenset[int]] = frozenset({93000})

    def __init__(
        self,
        url: str,
        *,
        name: str = "wecom",
        timeout: float = 10.0,
        tz: tzinfo = DEFAULT_TZ,
    ) -> None:
        super().__init__(url, name=name, timeout=timeout, tz=tz)

    @classmethod
    def from_spec(cls, spec: ReceiverSpec, tz: tzinfo) -> Self:
        """From ``type: wecom``."""
        s = spec_as(spec, WeComSpec)
        return cls(s.url.get_secret_value(), name=s.name, timeout=s.timeout, tz=tz)

    def body(self, notification: Notification) -> bytes:
        """The JSON body; ``markdown.content`` at most :attr:`CONTENT_BUDGET` bytes."""
        content = fit(render_markdown(notification, tz=self.tz), self.CONTENT_BUDGET)
        return dumps({"msgtype": "markdown", "markdown": {"content": content}})

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        """POST one markdown message."""
        return await self._deliver(session, self._url, self.body(notification))
