"""DingTalk custom robot (自定义机器人): markdown messages, optionally signed afresh each time.

Limits and codes, with where they come from:

* 20 messages a minute per robot, beyond which it is throttled for 10
  minutes (DingTalk "自定义机器人接入" docs).
* The body must stay within 20000 bytes — known from DingTalk's own error
  answers (``460101 message too long, exceed 20000 bytes``, "body 大小不合法
  ... 请保持大小在 20000bytes 以内", reported in
  timonwong/prometheus-webhook-dingtalk#30 and ZhuLinsen/daily_stock_analysis#61),
  not from the docs, hence a 10 % margin.
* Security settings (DingTalk docs), any of: custom keywords the message must
  contain, an IP allow-list, signing (加签).  Signing: HMAC-SHA256 keyed with
  the secret over ``"{ms timestamp}\\n{secret}"``, Base64, URL-encoded, as
  ``&timestamp=&sign=``; a timestamp more than about an hour off DingTalk's
  clock is refused.  A failed check of any of them is errcode 310000.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import tzinfo
from typing import ClassVar, Self
from urllib.parse import quote_plus

import aiohttp
from yarl import URL

from commsmon.config.alerting import DingTalkSpec, ReceiverSpec
from commsmon.core.alerting import Notification
from commsmon.outputs.alerts.base import DeliveryResult
from commsmon.outputs.alerts.messages import DEFAULT_TZ, render_markdown, title, truncate_utf8
from commsmon.outputs.alerts.receivers.http import spec_as
from commsmon.outputs.alerts.receivers.robot import (
    RATE_LIMIT_RETRY,
    TITLE_BYTES,
    CodeTable,
    RobotReceiver,
    fit_json,
)

__all__ = ["DingTalkReceiver", "dingtalk_sign"]

def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """DingTalk's ``sign``: Base64(HMAC-SHA256(key=secret, msg="{ts}\\n{secret}")), URL-encoded."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


class DingTalkReceiver(RobotReceiver):
    """DingTalk custom robot (自定义机器人), ``markdown`` messages, optionally signed.

    Args:
        url: ``https://oapi.dingtalk.com/robot/send?access_token=...``.
        secret: the signing secret (``SEC...``) if the robot uses 加签.
        keyword: a custom keyword the robot requires; put before the title
            when the title lacks it.
        name: receiver name (metric label).
        timeout: seconds per attempt, default 10.0.
        tz: time zone of the times shown.

    Each request is signed afresh: ``timestamp`` is now in milliseconds and
    ``sign`` is :func:`dingtalk_sign` (DingTalk accepts about an hour of skew).
    Codes: 130101 "send too fast" waits 60 s (DingTalk throttles a robot for
    10 minutes after 20 messages in a minute); 310000 (signature, keyword or
    IP allow-list rejected), 300001 (token or parameters rejected) and
    460101 (too long) are permanent; 310000 and 300001 are rejections.
    """

    max_per_minute = 20  # DingTalk docs: 20 messages a minute per robot
    BODY_LIMIT = 20000  # bytes; from DingTalk's error answers (module docstring)
    BODY_BUDGET = 18000  # what we send: 10 % under a limit we only know from errors
    codes: ClassVar[CodeTable] = {
        130101: (RATE_LIMIT_RETRY, False),  # send too fast
        310000: (None, True),  # keywords not in content / sign not match / IP not allowed
        300001: (None, True),  # token is not exist / param error
        460101: (None, True),  # message too long, exceed 20000 bytes
    }
    rejects: ClassVar[frozenset[int]] = frozenset({310000, 300001})

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        keyword: str | None = None,
        *,
        name: str = "dingtalk",
        timeout: float = 10.0,
        tz: tzinfo = DEFAULT_TZ,
    ) -> None:
        super().__init__(url, name=name, timeout=timeout, tz=tz, secrets=(secret,))
        self.secret = secret or None
        self.keyword = keyword or None

    @classmethod
    def from_spec(cls, spec: ReceiverSpec, tz: tzinfo) -> Self:
        """From ``type: dingtalk``."""
        s = spec_as(spec, DingTalkSpec)
        secret = s.secret.get_secret_value() if s.secret else None
        return cls(s.url.get_secret_value(), secret, s.keyword, name=s.name, timeout=s.timeout,
                   tz=tz)

    def signed_url(self, timestamp_ms: int | None = None) -> URL:
        """The URL with ``&timestamp=&sign=`` for now (or ``timestamp_ms``), if signing."""
        if self.secret is None:
            return self._url
        ts = time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
        base = str(self._url)
        joiner = "&" if self._url.raw_query_string else "?"
        return URL(
            f"{base}{joiner}timestamp={ts}&sign={dingtalk_sign(ts, self.secret)}", encoded=True
        )

    def body(self, notification: Notification) -> bytes:
        """The JSON body, at most :attr:`BODY_BUDGET` bytes."""
        head = title(notification, self.tz)
        prefix = f"{self.keyword} " if self.keyword and self.keyword not in head else ""
        rendering = render_markdown(notification, tz=self.tz, prefix=prefix)
        short = truncate_utf8(prefix + head, TITLE_BYTES)
        return fit_json(
            lambda text: {"msgtype": "markdown", "markdown": {"title": short, "text": text}},
            rendering,
            self.BODY_BUDGET,
        )

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        """POST one markdown message, signed now."""
        body = self.body(notification)
        return await self._deliver(session, self.signed_url(), body)
