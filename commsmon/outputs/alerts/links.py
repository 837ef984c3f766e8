"""Ack links: ``<http.external_url>/a/<token>`` in every robot message.

Group robots (DingTalk, WeCom, Feishu) cannot receive a button press; their
buttons only open a URL.  So each message carries a link whose token is a
random id (jti) signed with HMAC-SHA256 (itsdangerous), recorded in the outbox
with what it is bound to: the group, the episode of that group (when it began
firing), its level when sent, the role it was sent to, the action and an
expiry (``alerting.escalation.link_ttl``).  It is single use, and it dies when
the group resolves (a new episode) or gets worse than it was when sent.  The
signing key is made once and kept in the outbox, so links in messages already
sent survive a restart.  Opening the link (GET) only shows a confirmation page;
only a POST acts — chat apps and link scanners fetch URLs by themselves.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Literal

from itsdangerous import BadSignature, Signer

from commsmon.core.escalation import Escalation, GroupLevel
from commsmon.state.outbox import AckLink, Outbox

__all__ = ["AckLinks", "LinkProblem"]

LinkProblem = Literal["forged", "unknown", "expired", "used", "resolved", "worse"]
_SECRET_STATE = "ack_link_secret"


class AckLinks:
    """Issues and checks ack links.

    Args:
        outbox: where links and the signing key are kept (blocking calls).
        external_url: the console's address as officers' phones reach it; ``None``:
            no links (messages say nothing of acknowledging).
        ttl: seconds a link stays usable.
        escalation: the groups' state, which a link is checked against.
        clock: wall clock, epoch seconds.
    """

    def __init__(self, outbox: Outbox, external_url: str | None, ttl: float,
                 escalation: Escalation, clock: Callable[[], float]) -> None:
        self._outbox = outbox
        self.external_url = external_url.rstrip("/") if external_url else None
        self._ttl = ttl
        self._escalation = escalation
        self._clock = clock
        self._signer: Signer | None = None

    def restore(self) -> None:
        """Load the signing key from the outbox, making it the first time (blocking)."""
        secret = self._outbox.get_state(_SECRET_STATE)
        if secret is None:
            secret = json.dumps(secrets.token_hex(32))
            self._outbox.put_state(_SECRET_STATE, secret)
        self._signer = Signer(bytes.fromhex(json.loads(secret)), salt="commsmon-ack-link")

    def issue(self, group: str, role: str) -> str | None:
        """A new link acknowledging ``group`` as it is now, for ``role``; ``None`` when
        links are off or the group is not firing (blocking: writes the outbox)."""
        opened, level = self._escalation.opened(group), self._escalation.level(group)
        if self.external_url is None or self._signer is None or opened is None or level is None:
            return None
        jti = secrets.token_urlsafe(12)
        doc = json.dumps({"severity": level.severity, "alerts": sorted(level.alerts)},
                         ensure_ascii=False)
        self._outbox.add_link(AckLink(jti, group, opened, doc, role, "ack",
                                      self._clock() + self._ttl))
        return f"{self.external_url}/a/{self._signer.sign(jti).decode()}"

    def read(self, token: str) -> tuple[AckLink | None, LinkProblem | None]:
        """The link a token names and what, if anything, stops it acting now
        (blocking: reads the outbox)."""
        if self._signer is None:
            return None, "unknown"
        try:
            jti = self._signer.unsign(token.encode()).decode()
        except (BadSignature, UnicodeDecodeError):
            return None, "forged"
        link = self._outbox.link(jti)
        if link is None:
            return None, "unknown"
        return link, self.problem(link)

    def problem(self, link: AckLink) -> LinkProblem | None:
        """Why ``link`` cannot act now, ``None`` when it can."""
        if link.used_at is not None:
            return "used"
        if self._clock() >= link.expires:
            return "expired"
        if self._escalation.opened(link.group) != link.opened:
            return "resolved"  # resolved, or resolved and firing again: another episode
        level, then = self._escalation.level(link.group), _level(link.level)
        if level is not None and level.worse_than(then):
            return "worse"
        return None

    def use(self, link: AckLink, by: str) -> bool:
        """Spend the link (single use); ``False`` if it was spent meanwhile (blocking)."""
        return self._outbox.use_link(link.jti, self._clock(), by)


def _level(text: str) -> GroupLevel:
    doc = json.loads(text)
    return GroupLevel(doc["severity"], frozenset(doc["alerts"]))
