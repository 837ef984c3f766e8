"""IM group robots: an error code in a JSON answer, often under HTTP 200, judged by a table.

:class:`RobotReceiver` is what the DingTalk, WeCom and Feishu receivers
share: each robot's ``codes`` (how long to wait, whether retrying can help)
and ``rejects`` (the codes that refuse our messages or credentials), and
:func:`fit_json`, which cuts a message's text until the whole JSON body fits
the robot's byte limit.  A 200 without a robot answer in it (a captive
portal, a proxy's page) is a failure, not a delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import tzinfo
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from commsmon.outputs.alerts.base import DeliveryResult, Rejection
from commsmon.outputs.alerts.messages import Rendering, fit
from commsmon.outputs.alerts.receivers.http import (
    MAX_REJECTION,
    REJECTING_STATUS,
    Answer,
    HttpReceiver,
    dumps,
    judge_status,
    one_line,
)

__all__ = ["RATE_LIMIT_RETRY", "TITLE_BYTES", "CodeTable", "RobotReceiver", "fit_json"]

TITLE_BYTES = 200  # a robot's title field (DingTalk markdown.title, Feishu card header)
RATE_LIMIT_RETRY = 60.0  # seconds to wait after a robot's "too fast" code


# code -> (retry_after seconds, permanent)
CodeTable = Mapping[int, tuple[float | None, bool]]


def fit_json(make: Callable[[str], Any], rendering: Rendering, limit: int) -> bytes:
    """The JSON body ``make(text)`` with the text fitted so the whole body is ≤ ``limit`` bytes.

    JSON escaping (quotes, newlines, the envelope) makes the body longer than
    the text; each pass shrinks the text's budget by the overflow.
    """
    budget = limit
    while True:
        body = dumps(make(fit(rendering, budget)))
        over = len(body) - limit
        if over <= 0 or budget <= 0:
            return body
        budget = max(0, budget - over)


class RobotReceiver(HttpReceiver):
    """A robot that answers with an error code in a JSON body, often under HTTP 200.

    ``codes`` says how to retry each known code; ``rejects`` names those that
    refuse our messages or credentials (a :class:`Rejection`), all permanent.
    """

    codes: ClassVar[CodeTable] = {}
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

    def _judge(self, answer: Answer) -> DeliveryResult:
        code, message = self._code(answer.json())
        if code is not None and code != 0:
            detail = f"{self.code_field} {code} {one_line(self._scrub(message))}".rstrip()
            if answer.status != 200:
                detail = f"HTTP {answer.status} {detail}"
            short = one_line(self._scrub(message), MAX_REJECTION)
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
            return judge_status(answer, self._snippet(answer))
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
