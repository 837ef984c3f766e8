"""The duty log (值班日志): who did what, when, from where — one entry per operation.

Every operation (a check-in, a road outage declared or cleared, a silence added or
expired, a login, an acknowledgement) leaves one entry, whether it came from the
console, the API, the CLI or the broker.  Kept in the store's SQLite file
(:class:`commsmon.state.store.Store`) for the store's retention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ACTIONS", "NOBODY", "Action", "Actor", "DutyEntry", "Event", "EventKind"]

Action = Literal["checkin", "declare", "clear", "silence", "unsilence", "ack", "unack",
                 "escalate", "roster", "handover", "login", "logout", "login_failed",
                 "drill_start", "drill_stop"]
ACTIONS: tuple[Action, ...] = Action.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for an operation.

    Attributes:
        user: the account's name (``api`` for the bearer token, ``mqtt`` for a
            check-in read from the broker).
        address: the client's address (the HTTP peer), ``""`` when none.
        name: how the person is named (``张三``), ``""`` to use ``user``.
    """

    user: str
    address: str = ""
    name: str = ""

    @property
    def shown(self) -> str:
        """The person's name as acks and messages give it."""
        return self.name or self.user


#: An operation nobody in particular asked for (tests, the broker).
NOBODY = Actor("")


@dataclass(frozen=True, slots=True)
class DutyEntry:
    """One line of the duty log.

    Attributes:
        at: epoch seconds.
        user: who (an account name, ``api``, ``mqtt``).
        address: from where (client address), ``""`` when none.
        action: what (:data:`ACTIONS`).
        site: the site it concerns, ``""`` when none.
        subject: what it acted on: a device id, an outage kind, a silence id.
        detail: the particulars (``ok``, a note, matchers), for reading and CSV.
    """

    at: float
    user: str
    address: str
    action: Action
    site: str = ""
    subject: str = ""
    detail: dict[str, str] = field(default_factory=dict)


EventKind = Literal["device_state", "site_state", "channel_state", "readiness",
                    "outage_start", "outage_end", "alert_firing", "alert_resolved",
                    "escalation_step", "monitor_gap"]


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a village's timeline that nobody did: the monitor saw it.

    Attributes:
        at: epoch seconds.
        site: the site.
        kind: what (:data:`EventKind`); ``readiness`` is a scenario's verdict
            (``ready``, ``not_ready``, ``unknown``); ``monitor_gap`` is time the
            daemon did not run (``detail["until"]``; its site is ``""``).
        subject: a device id, ``<site>/<scenario>`` for a verdict, an outage kind, an
            alert's rule.
        old: the state before (``device_state``, ``site_state``, ``readiness``), ``""``
            for the state a run of the daemon first saw; else ``""``.
        new: the state after, else ``""``.
        detail: the particulars (an alert's labels), for reading.
    """

    at: float
    site: str
    kind: EventKind
    subject: str
    old: str = ""
    new: str = ""
    detail: dict[str, str] = field(default_factory=dict)
