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

Limits and codes, with where they come from:

* DingTalk custom robot: 20 messages a minute per robot, beyond which it is
  throttled for 10 minutes (DingTalk "自定义机器人接入" docs); the body must
  stay within 20000 bytes — known from DingTalk's own error answers
  (``460101 message too long, exceed 20000 bytes``, "body 大小不合法 ...
  请保持大小在 20000bytes 以内", reported in timonwong/prometheus-webhook-dingtalk#30
  and ZhuLinsen/daily_stock_analysis#61), not from the docs, hence a 10 %
  margin.  Signing: HMAC-SHA256 keyed with the secret over
  ``"{ms timestamp}\\n{secret}"``, Base64, URL-encoded, as ``&timestamp=&sign=``;
  a timestamp more than about an hour off DingTalk's clock is refused.
* WeCom group robot: 20 messages a minute; ``markdown.content`` at most 4096
  UTF-8 bytes (WeCom docs, path/91770; errcode 40058 when exceeded).  No
  signing: the ``key`` in the URL is the only secret.
* Feishu custom bot: 100 requests a minute and 5 a second per bot; body at
  most 20 KB; signing: HMAC-SHA256 keyed with ``"{s timestamp}\\n{secret}"``
  over an empty message, Base64, ``timestamp``/``sign`` in the body (Feishu's
  official sample; several third-party libraries swap key and message); a
  timestamp more than an hour off is refused (19021).
"""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

import aiohttp
from yarl import URL

from commsmon.core.alerting import Alert, Notification
from commsmon.outputs.alerts.base import DeliveryResult, Receiver, Rejection
from commsmon.outputs.alerts.messages import (
    DEFAULT_TZ,
    Rendering,
    alert_description,
    alert_summary,
    fit,
    place,
    render_markdown,
    title,
    truncate_utf8,
)

__all__ = [
    "AlertmanagerReceiver",
    "DingTalkReceiver",
    "FeishuReceiver",
    "WeComReceiver",
    "WebhookReceiver",
    "dingtalk_sign",
    "feishu_sign",
    "parse_retry_after",
    "redact_url",
]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as Alertmanager sends for firing alerts
_MAX_ANSWER = 64 * 1024  # bytes of an answer we read; robots answer in a few dozen
_MAX_DETAIL = 200  # characters of an echoed error message kept in a detail
_MAX_REJECTION = 100  # ... and in a rejection, which goes into alert facts
REJECTING_STATUS = frozenset({401, 403})  # HTTP: the far end refuses our credentials
_TITLE_BYTES = 200  # a robot's title field (DingTalk markdown.title, Feishu card header)
RATE_LIMIT_RETRY = 60.0  # seconds to wait after a robot's "too fast" code


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """DingTalk's ``sign``: Base64(HMAC-SHA256(key=secret, msg="{ts}\\n{secret}")), URL-encoded."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


def feishu_sign(timestamp_s: int, secret: str) -> str:
    """Feishu's ``sign``: Base64(HMAC-SHA256(key="{ts}\\n{secret}", msg=b"")), not URL-encoded."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def redact_url(url: str | URL) -> str:
    """Scheme, host and port only (``https://oapi.dingtalk.com/…``): no path, query or user."""
    u = URL(url) if isinstance(url, str) else url
    if not u.host:
        return "<url>"
    port = "" if u.is_default_port() else f":{u.port}"
    return f"{u.scheme}://{u.host}{port}/…"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` (delay-seconds or HTTP-date, RFC 9110 §10.2.3).

    Returns ``None`` when absent or unreadable; never negative.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def rfc3339(epoch: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds (``2026-11-29T06:40:00.000Z``)."""
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _header_value(text: str) -> str:
    """``text`` as is if it is printable ASCII, else percent-encoded (headers are Latin-1)."""
    if text.isascii() and text.isprintable():
        return text
    return quote(text, safe="")


def _one_line(text: str, limit: int = _MAX_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    retry_after: float | None
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    @property
    def success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        """The far end may accept the same request later (RFC 9110: 408, 429, 5xx)."""
        return self.status in (408, 429) or self.status >= 500


def _judge_status(answer: _Answer, snippet: str = "") -> DeliveryResult:
    """A non-2xx answer: 408/429/5xx may pass later; 3xx and other 4xx cannot; 401/403
    reject us."""
    detail = f"HTTP {answer.status}" + (f": {snippet}" if snippet else "")
    if answer.transient:
        return DeliveryResult(False, detail, retry_after=answer.retry_after)
    if 300 <= answer.status < 400:
        return DeliveryResult(
            False, f"{detail} (redirect not followed: fix the URL)", permanent=True
        )
    rejection = None
    if answer.status in REJECTING_STATUS:
        rejection = Rejection(str(answer.status), _one_line(snippet, _MAX_REJECTION))
    return DeliveryResult(
        False, detail, retry_after=answer.retry_after, permanent=True, rejection=rejection
    )


def _fit_json(make: Callable[[str], Any], rendering: Rendering, limit: int) -> bytes:
    """The JSON body ``make(text)`` with the text fitted so the whole body is ≤ ``limit`` bytes.

    JSON escaping (quotes, newlines, the envelope) makes the body longer than
    the text; each pass shrinks the text's budget by the overflow.
    """
    budget = limit
    while True:
        body = _dumps(make(fit(rendering, budget)))
        over = len(body) - limit
        if over <= 0 or budget <= 0:
            return body
        budget = max(0, budget - over)


class _HttpReceiver(Receiver):
    """One POST with a per-attempt timeout; transport failures become results."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        timeout: float,
        secrets: Iterable[str | None] = (),
    ) -> None:
        u = URL(url)
        if u.scheme not in ("http", "https") or not u.host:
            raise ValueError(f"{name}: not an http(s) URL: {redact_url(u)}")
        if timeout <= 0:
            raise ValueError(f"{name}: timeout must be positive seconds, got {timeout}")
        self.name = name
        self.timeout = timeout
        self._url = u
        sensitive = {url, str(u), u.raw_query_string, u.query_string, u.password or ""}
        sensitive.update(v for v in u.query.values())
        sensitive.update(part for part in u.raw_parts if len(part) >= 8)
        sensitive.update(s for s in secrets if s)
        # Longest first, so a secret containing another is replaced whole.
        self._sensitive = sorted((s for s in sensitive if len(s) >= 4), key=len, reverse=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, url={redact_url(self._url)!r})"

    def _scrub(self, text: str) -> str:
        for secret in self._sensitive:
            text = text.replace(secret, "***")
        return text

    def _result(self, result: DeliveryResult) -> DeliveryResult:
        rejection = result.rejection
        if rejection is not None:
            rejection = Rejection(rejection.code, self._scrub(rejection.detail))
        scrubbed = self._scrub(result.detail)
        if scrubbed == result.detail and rejection == result.rejection:
            return result
        return dataclasses.replace(result, detail=scrubbed, rejection=rejection)

    async def _post(
        self,
        session: aiohttp.ClientSession,
        url: URL,
        body: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> _Answer | DeliveryResult:
        """POST ``body`` as JSON; the answer, or a failed result for a transport error."""
        try:
            async with session.post(
                url,
                data=body,
                headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as resp:
                raw = bytearray()
                while len(raw) < _MAX_ANSWER:
                    chunk = await resp.content.read(_MAX_ANSWER - len(raw))
                    if not chunk:
                        break
                    raw += chunk
                return _Answer(
                    resp.status, parse_retry_after(resp.headers.get("Retry-After")), bytes(raw)
                )
        except TimeoutError:  # asyncio.TimeoutError is TimeoutError since 3.11
            return DeliveryResult(False, f"timed out after {self.timeout:g} s")
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            return DeliveryResult(False, f"cannot connect: {reason}")
        except aiohttp.ClientError as exc:
            return DeliveryResult(False, f"HTTP client error: {type(exc).__name__}")

    def _snippet(self, answer: _Answer) -> str:
        return _one_line(self._scrub(answer.body[:1024].decode("utf-8", "replace")))


# --- Alertmanager -----------------------------------------------------------------------


def _labels(alert: Alert) -> dict[str, str]:
    labels = dict(alert.labels)
    labels.setdefault("alertname", alert.rule)
    labels.setdefault("severity", alert.severity)
    return labels


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


class _AlertmanagerShapes(_HttpReceiver):
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


class WebhookReceiver(_AlertmanagerShapes):
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

    def payload(self, notification: Notification) -> dict[str, Any]:
        """The webhook body as Alertmanager sends it (``notification_reason`` left out)."""
        site = notification.site
        group_labels = {"site": site.id} if site is not None else {}
        inner = f'site="{site.id}"' if site is not None else f'group="{notification.group}"'
        alerts = []
        labels = [_labels(a) for a in notification.alerts]
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
        return {
            "version": "4",
            "groupKey": f"{{}}:{{{inner}}}",
            "truncatedAlerts": 0,
            "status": notification.status,
            "receiver": notification.receiver,
            "groupLabels": group_labels,
            "commonLabels": _common(labels),
            "commonAnnotations": _common(annotations),
            "externalURL": self.external_url,
            "alerts": alerts,
        }

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        """POST the webhook JSON once."""
        body = _dumps(self.payload(notification))
        answer = await self._post(
            session, self._url, body, {"Idempotency-Key": _header_value(notification.key)}
        )
        if isinstance(answer, DeliveryResult):
            return self._result(answer)
        if answer.success:
            return DeliveryResult(True, f"HTTP {answer.status}")
        return self._result(_judge_status(answer, self._snippet(answer)))


class AlertmanagerReceiver(_AlertmanagerShapes):
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

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "alertmanager",
        timeout: float = 10.0,
        external_url: str = "",
        tz: tzinfo = DEFAULT_TZ,
        firing_ttl: float = 24 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        url = f"{base_url.rstrip('/')}/api/v2/alerts"
        super().__init__(url, name=name, timeout=timeout, external_url=external_url, tz=tz)
        self.firing_ttl = firing_ttl
        self._clock = clock

    def payload(self, notification: Notification) -> list[dict[str, Any]]:
        """The list of postable alerts (Alertmanager API v2 ``PostableAlerts``)."""
        now = max(self._clock(), notification.created_at)
        out = []
        for alert in (*notification.alerts, *notification.folded):
            ends = alert.ends_at if alert.ends_at is not None else now + self.firing_ttl
            item: dict[str, Any] = {
                "labels": _labels(alert),
                "annotations": self._annotations(notification, alert),
                "startsAt": rfc3339(alert.starts_at),
                "endsAt": rfc3339(ends),
            }
            generator = self._generator_url(alert)
            if generator:
                item["generatorURL"] = generator
            out.append(item)
        return out

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        """POST the alerts once."""
        body = _dumps(self.payload(notification))
        answer = await self._post(session, self._url, body)
        if isinstance(answer, DeliveryResult):
            return self._result(answer)
        if answer.success:
            return DeliveryResult(True, f"HTTP {answer.status}")
        return self._result(_judge_status(answer, self._snippet(answer)))


# --- IM robots ----------------------------------------------------------------------------

# code -> (retry_after seconds, permanent)
_CodeTable = Mapping[int, tuple[float | None, bool]]


class _RobotReceiver(_HttpReceiver):
    """A robot that answers with an error code in a JSON body, often under HTTP 200.

    ``codes`` says how to retry each known code; ``rejects`` names those that
    refuse our messages or credentials (a :class:`Rejection`), all permanent.
    """

    codes: ClassVar[_CodeTable] = {}
    rejects: ClassVar[frozenset[int]] = frozenset()
    code_field = "errcode"
    message_field = "errmsg"

    def __init__(
        self,
        url: str,
        *,
        name: str,
        timeout: float,
        tz: tzinfo,
        secrets: Iterable[str | None] = (),
    ) -> None:
        super().__init__(url, name=name, timeout=timeout, secrets=secrets)
        self.tz = tz

    def _code(self, data: Any) -> tuple[int | None, str]:
        if not isinstance(data, dict):
            return None, ""
        code = data.get(self.code_field)
        if code is None:
            code = data.get("StatusCode")  # Feishu's older answer shape
        message = data.get(self.message_field, data.get("StatusMessage", ""))
        if isinstance(code, bool) or not isinstance(code, int):
            return None, ""
        return code, str(message)

    def _judge(self, answer: _Answer) -> DeliveryResult:
        code, message = self._code(answer.json())
        if code is not None and code != 0:
            detail = f"{self.code_field} {code} {_one_line(self._scrub(message))}".rstrip()
            if answer.status != 200:
                detail = f"HTTP {answer.status} {detail}"
            short = _one_line(self._scrub(message), _MAX_REJECTION)
            if code in self.rejects:
                return DeliveryResult(False, detail, answer.retry_after, True,
                                      Rejection(str(code), short))
            if answer.status in REJECTING_STATUS:
                return DeliveryResult(False, detail, answer.retry_after, True,
                                      Rejection(str(answer.status), short))
            known = self.codes.get(code)
            if known is not None:
                retry_after, permanent = known
                return DeliveryResult(False, detail, retry_after or answer.retry_after, permanent)
            # An unknown code: under a plain 4xx the request itself is refused.
            permanent = not answer.success and not answer.transient
            return DeliveryResult(False, detail, answer.retry_after, permanent)
        if not answer.success:
            return _judge_status(answer, self._snippet(answer))
        if code is None:
            return DeliveryResult(
                False, f"HTTP {answer.status} without a robot answer: {self._snippet(answer)}"
            )
        return DeliveryResult(True, f"HTTP {answer.status} {self.code_field} 0")

    async def _deliver(
        self, session: aiohttp.ClientSession, url: URL, body: bytes
    ) -> DeliveryResult:
        answer = await self._post(session, url, body)
        if isinstance(answer, DeliveryResult):
            return self._result(answer)
        return self._result(self._judge(answer))


class DingTalkReceiver(_RobotReceiver):
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
    codes: ClassVar[_CodeTable] = {
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
        short = truncate_utf8(prefix + head, _TITLE_BYTES)
        return _fit_json(
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


class WeComReceiver(_RobotReceiver):
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
    codes: ClassVar[_CodeTable] = {
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

    def body(self, notification: Notification) -> bytes:
        """The JSON body; ``markdown.content`` at most :attr:`CONTENT_BUDGET` bytes."""
        content = fit(render_markdown(notification, tz=self.tz), self.CONTENT_BUDGET)
        return _dumps({"msgtype": "markdown", "markdown": {"content": content}})

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        """POST one markdown message."""
        return await self._deliver(session, self._url, self.body(notification))


class FeishuReceiver(_RobotReceiver):
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
    BODY_LIMIT = 20000  # bytes: Feishu docs say 20 KB; taking the smaller reading
    BODY_BUDGET = 18000  # 10 % margin
    code_field = "code"
    message_field = "msg"
    codes: ClassVar[_CodeTable] = {
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
                            "content": truncate_utf8(head, _TITLE_BYTES),
                        },
                    },
                    "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": text}}],
                },
            }

        return _fit_json(make, rendering, self.BODY_BUDGET)

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        """POST one card, signed now."""
        return await self._deliver(session, self._url, self.body(notification))
