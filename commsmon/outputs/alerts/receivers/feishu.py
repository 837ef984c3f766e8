"""Feishu / Lark custom bot (自定义机器人): interactive cards, optionally signed in the body.

Limits and codes, with where they come from:

* 100 requests a minute and 5 a second per bot; the body at most 20 KB
  (Feishu's custom-bot docs).
* Security settings, any of: custom keywords the message must contain
  (19024 when it does not), an IP allow-list, signing (签名校验).  Signing:
  HMAC-SHA256 keyed with ``"{s timestamp}\\n{secret}"`` over an empty
  message, Base64, ``timestamp``/``sign`` in the body (Feishu's official
  sample; several third-party libraries swap key and message); a wrong
  signature, or a timestamp more than an hour off, is 19021.
* The answer's code is ``code`` (``StatusCode`` in older answers), under
  HTTP 200 or 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any, ClassVar, Self

import aiohttp

from commsmon.config.alerting import FeishuSpec, ReceiverSpec
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

__all__ = ["FeishuReceiver", "feishu_sign"]

def feishu_sign(timestamp_s: int, secret: str) -> str:
    """Feishu's ``sign``: Base64(HMAC-SHA256(key="{ts}\\n{secret}", msg=b"")), not URL-encoded."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class FeishuReceiver(RobotReceiver):
    """Feishu / Lark custom bot (自定义机器人), ``interactive`` cards, optionally signed.

    Args:
        url: ``https://open.feishu.cn/open-apis/bot/v2/hook/<token>``.
        secret: the signing secret if the bot uses 签名校验.
        keyword: a custom keyword the bot requires; put before the card title
            when the title lacks it.
        name: receiver name (metric label).
        timeout: seconds per attempt, default 10.0.
        tz: time zone of the times shown.

    The card header is red for critical, orange for warning, blue for info
    and green once resolved; the body is one ``lark_md`` block.  With a
    secret, ``timestamp`` (seconds, as a string) and ``sign``
    (:func:`feishu_sign`) go in the body.  Codes (HTTP 200 or 400): 11232
    (frequency limited) waits 60 s; 9499 (bad request), 19021 (signature or
    timestamp rejected) and 19024 (keyword not found) are permanent; 19021
    and 19024 are rejections.

    ``max_per_minute`` is 50, half of Feishu's 100 a minute: that quota is per
    bot and shared with every other sender on it (an HA twin of this daemon
    included), and a burst of 100 would break Feishu's 5 a second, which the
    outbox can only respect by spacing sends at least 0.2 s apart.
    """

    max_per_minute = 50
    max_per_second = 5  # Feishu's custom-bot limit: 100 a minute and 5 a second
    BODY_LIMIT = 20000  # bytes: Feishu docs say 20 KB; taking the smaller reading
    BODY_BUDGET = 18000  # 10 % margin
    code_field = "code"
    message_field = "msg"
    codes: ClassVar[CodeTable] = {
        11232: (RATE_LIMIT_RETRY, False),  # frequency limited
        9499: (None, True),  # Bad Request
        19021: (None, True),  # sign match fail or timestamp is not within one hour
        19024: (None, True),  # Key Words Not Found
    }
    rejects: ClassVar[frozenset[int]] = frozenset({19021, 19024})
    TEMPLATES: ClassVar[Mapping[str, str]] = {
        "critical": "red",
        "warning": "orange",
        "info": "blue",
        "resolved": "green",
    }

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        *,
        keyword: str | None = None,
        name: str = "feishu",
        timeout: float = 10.0,
        tz: tzinfo = DEFAULT_TZ,
    ) -> None:
        super().__init__(url, name=name, timeout=timeout, tz=tz, secrets=(secret,))
        self.secret = secret or None
        self.keyword = keyword or None

    @classmethod
    def from_spec(cls, spec: ReceiverSpec, tz: tzinfo) -> Self:
        """From ``type: feishu``."""
        s = spec_as(spec, FeishuSpec)
        secret = s.secret.get_secret_value() if s.secret else None
        return cls(s.url.get_secret_value(), secret, name=s.name, timeout=s.timeout, tz=tz)

    def body(self, notification: Notification, timestamp_s: int | None = None) -> bytes:
        """The JSON body (signed now or at ``timestamp_s``), at most :attr:`BODY_BUDGET` bytes."""
        head = title(notification, self.tz)
        if self.keyword and self.keyword not in head:
            head = f"{self.keyword} {head}"
        resolved = notification.status == "resolved" or all(a.resolved for a in notification.alerts)
        template = self.TEMPLATES["resolved" if resolved else notification.severity]
        envelope: dict[str, Any] = {}
        if self.secret is not None:
            ts = int(time.time()) if timestamp_s is None else timestamp_s
            envelope = {"timestamp": str(ts), "sign": feishu_sign(ts, self.secret)}
        rendering = render_markdown(notification, tz=self.tz, heading=None)

        def make(text: str) -> dict[str, Any]:
            return {
                **envelope,
                "msg_type": "interactive",
                "card": {
                    "config": {"wide_screen_mode": True},
                    "header": {
                        "template": template,
                        "title": {
                            "tag": "plain_text",
                            "content": truncate_utf8(head, TITLE_BYTES),
                        },
                    },
                    "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": text}}],
                },
            }

        return fit_json(make, rendering, self.BODY_BUDGET)

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        """POST one card, signed now."""
        return await self._deliver(session, self._url, self.body(notification))
