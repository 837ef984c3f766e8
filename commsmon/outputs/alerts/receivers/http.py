"""What every receiver shares: one JSON POST, a bounded answer, the status judged, secrets scrubbed.

:class:`HttpReceiver` makes the POST (redirects not followed, at most 64 KiB
of the answer read, one timeout for the whole attempt) and turns transport
errors into failed results.  A receiver's URL holds its token or key: the
URL, its query values, its path parts of 8 characters or more and the
secrets the receiver is given are replaced by ``***`` in every detail and
rejection, and :func:`redact_url` is the only form of the URL ever shown.

HTTP status (RFC 9110), :func:`judge_status`: 2xx is accepted; 408, 429 and
5xx may pass later, after the answer's ``Retry-After`` if it gives one; 3xx
and other 4xx are permanent; 401 and 403 refuse our credentials, a
:class:`~commsmon.outputs.alerts.base.Rejection`.
"""

from __future__ import annotations

import abc
import dataclasses
import email.utils
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any, Self, TypeVar

import aiohttp
from yarl import URL

from commsmon.config.alerting import ReceiverSpec, ReceiverSpecBase
from commsmon.outputs.alerts.base import DeliveryResult, Receiver, Rejection

__all__ = [
    "JSON_CONTENT_TYPE",
    "MAX_REJECTION",
    "REJECTING_STATUS",
    "Answer",
    "HttpReceiver",
    "dumps",
    "judge_status",
    "one_line",
    "parse_retry_after",
    "redact_url",
    "spec_as",
]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_MAX_ANSWER = 64 * 1024  # bytes of an answer we read; robots answer in a few dozen
_MAX_DETAIL = 200  # characters of an echoed error message kept in a detail
MAX_REJECTION = 100  # ... and in a rejection, which goes into alert facts
REJECTING_STATUS = frozenset({401, 403})  # HTTP: the far end refuses our credentials


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


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def one_line(text: str, limit: int = _MAX_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Answer:
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


def judge_status(answer: Answer, snippet: str = "") -> DeliveryResult:
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
        rejection = Rejection(str(answer.status), one_line(snippet, MAX_REJECTION))
    return DeliveryResult(
        False, detail, retry_after=answer.retry_after, permanent=True, rejection=rejection
    )


_Spec = TypeVar("_Spec", bound=ReceiverSpecBase)


def spec_as(spec: ReceiverSpec, kind: type[_Spec]) -> _Spec:
    """``spec`` as the ``kind`` of spec a receiver class is built from.

    Raises:
        TypeError: ``spec`` is another type's (a registry that maps a type
            to the wrong class).
    """
    if not isinstance(spec, kind):
        raise TypeError(f"{spec.name}: a {spec.type!r} receiver's spec, not a {kind.__name__}")
    return spec


class HttpReceiver(Receiver):
    """One POST with a per-attempt timeout; transport failures become results.

    A receiver that can be configured says how it is built from its spec
    (:meth:`from_spec`); the registry in :mod:`commsmon.outputs.alerts.receivers`
    maps each ``type`` to its class.
    """

    @classmethod
    @abc.abstractmethod
    def from_spec(cls, spec: ReceiverSpec, tz: tzinfo) -> Self:
        """The receiver its configuration describes, its times shown in ``tz``.

        Raises:
            TypeError: ``spec`` is another type's.
            ValueError: the URL is not http(s).
        """

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
    ) -> Answer | DeliveryResult:
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
                return Answer(
                    resp.status, parse_retry_after(resp.headers.get("Retry-After")), bytes(raw)
                )
        except TimeoutError:  # asyncio.TimeoutError is TimeoutError since 3.11
            return DeliveryResult(False, f"timed out after {self.timeout:g} s")
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            return DeliveryResult(False, f"cannot connect: {reason}")
        except aiohttp.ClientError as exc:
            return DeliveryResult(False, f"HTTP client error: {type(exc).__name__}")

    def _snippet(self, answer: Answer) -> str:
        return one_line(self._scrub(answer.body[:1024].decode("utf-8", "replace")))
