"""The receiver interface: turn a notification into one HTTP request and judge the answer.

A receiver never retries by itself: the outbox owns retries, backoff and the
rate limit (``max_per_minute``), so a notification is persisted before any
attempt and attempted again after a restart.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import aiohttp

from commsmon.core.alerting import Notification

__all__ = ["DeliveryResult", "Receiver", "Rejection"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """The far end refuses our messages or credentials, not just this attempt.

    A robot's keyword, signature or IP allow-list check, a wrong key or
    token, HTTP 401/403: nothing we send will pass until someone fixes the
    robot's settings or ours.  Timeouts, 5xx, rate limits and a message too
    long are not rejections.

    Attributes:
        code: the robot's error code (``"310000"``, ``"19021"``) or the HTTP
            status (``"403"``), as a string.
        detail: the far end's error message, one short line, scrubbed of
            secrets ("keywords not in content").
    """

    code: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How one attempt went.

    Attributes:
        ok: the receiver accepted it (for robots: HTTP 2xx *and* no error
            code in the body).
        detail: what happened, for logs ("HTTP 500", "errcode 130101 send
            too fast").
        retry_after: seconds the receiver asked us to wait (HTTP Retry-After,
            a robot's rate-limit code), ``None`` if it did not say.
        permanent: retrying the same request cannot succeed (a rejected
            signature, a malformed body); the outbox still retries, slowly,
            in case the configuration is fixed, until its give-up age.
        rejection: set when the receiver refuses our messages or credentials
            (see :class:`Rejection`); always ``permanent`` then.
    """

    ok: bool
    detail: str = ""
    retry_after: float | None = None
    permanent: bool = False
    rejection: Rejection | None = None


class Receiver(abc.ABC):
    """Where notifications go.

    Attributes:
        name: the receiver's name from the configuration (a metric label).
        max_per_minute: the most requests a minute it accepts (IM robots: 20).
        max_per_second: the most requests a second, where the service limits that
            too (Feishu: 5); ``None`` for no such limit.
        timeout: seconds an attempt may take, connection to last byte.
        shared: whether both replicas of an HA pair send to it, because it dedups
            what they both send (Alertmanager); else only the leader does.
    """

    name: str
    shared: bool = False
    max_per_minute: int = 60
    max_per_second: int | None = None
    timeout: float = 10.0

    @abc.abstractmethod
    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        """Make one attempt.

        Never raises for a receiver's failure (HTTP errors, timeouts, refused
        connections, error codes in the body): those are a ``DeliveryResult``
        with ``ok=False``.
        """
