"""The alert outbox: every notification is written to SQLite before any attempt to send it.

Delivery is **at least once, with a stable key**.  A row is ``pending`` until a
receiver accepted it (``delivered``) or the deliverer stopped trying
(``given_up``); each change is one committed statement (WAL,
``synchronous=FULL``), so a ``kill -9`` at any point leaves every row whole and
in one of those states.  A notification that was sent but not yet marked when
the process died (the answer was in flight) is sent again after the restart
with the *same* :attr:`~commsmon.core.alerting.Notification.key`; receivers
that dedup by key (Alertmanager by labels, webhooks by ``Idempotency-Key``)
then show it once, IM robots may show it twice.  Nothing is ever lost to a
crash: a duplicate is the price.

Order: for one receiver and one group (a site), a notification is never due
before an older pending one of the same group, so a resolution never overtakes
its firing message.

The ``state`` table is a small key-value store in the same file, for the
alerting core's rule and dispatch state (JSON text, the rules' zlib-compressed:
15 MiB of text at 20 000 devices), so a restart neither re-sends what was
delivered nor forgets what changed.

Calls are synchronous and thread-safe; the daemon runs them in a worker thread
(``asyncio.to_thread``).  Times are epoch seconds passed in by the caller.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from commsmon.core.alerting import SEVERITIES, Alert, Notification, SiteContext
from commsmon.core.facts import fact_from_json, fact_to_json
from commsmon.core.rules import facts_from_json, facts_to_json
from commsmon.state.db import Database

__all__ = [
    "AckLink",
    "Outbox",
    "PackedText",
    "Pending",
    "notification_from_json",
    "notification_to_json",
]

log = structlog.get_logger("commsmon.alerts")

_FORMAT = 2  # version of the notification JSON; bump and convert on change
# Format 1 kept an alert's facts as texts; read, they give no facts (the alert stays).
_READABLE = (1, _FORMAT)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order
    key TEXT NOT NULL,                      -- the notification's idempotency key
    receiver TEXT NOT NULL,
    grp TEXT NOT NULL,                      -- the notification's group (site:v05, monitor)
    body TEXT NOT NULL,                     -- the notification as JSON
    added_at REAL NOT NULL,                 -- epoch seconds it was written
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'given_up')),
    attempts INTEGER NOT NULL DEFAULT 0,    -- failed attempts so far
    next_at REAL NOT NULL,                  -- epoch seconds, not before
    last_attempt_at REAL,                   -- epoch seconds, NULL before the first
    detail TEXT NOT NULL DEFAULT '',        -- how the last attempt went
    done_at REAL,                           -- epoch seconds delivered or given up
    UNIQUE (key, receiver)
);
CREATE INDEX IF NOT EXISTS outbox_pending_order
    ON outbox (receiver, grp, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_pending_next ON outbox (next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_done ON outbox (done_at) WHERE state != 'pending';
CREATE TABLE IF NOT EXISTS state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ack_links (
    jti TEXT PRIMARY KEY,                   -- the link's id (signed in its URL)
    grp TEXT NOT NULL,                      -- the group it acknowledges
    opened REAL NOT NULL,                   -- when that group began firing (its episode)
    level TEXT NOT NULL,                    -- the group's level when sent, JSON
    role TEXT NOT NULL,                     -- the role it was sent to
    action TEXT NOT NULL,                   -- ack
    expires REAL NOT NULL,                  -- epoch seconds
    used_at REAL,                           -- epoch seconds, NULL until used
    used_by TEXT NOT NULL DEFAULT ''
);
"""

# A pending row is a "head" when no older pending row shares its receiver and group.
_IS_HEAD = (
    "NOT EXISTS (SELECT 1 FROM outbox e WHERE e.state = 'pending' AND e.receiver = o.receiver"
    " AND e.grp = o.grp AND e.seq < o.seq)"
)


@dataclass(frozen=True, slots=True)
class Pending:
    """A notification waiting for delivery.

    Attributes:
        notification: what to send.
        added_at: epoch seconds it was written to the outbox.
        attempts: failed attempts so far.
        next_at: epoch seconds before which it is not attempted again.
        detail: how the last attempt went ("" before the first).
    """

    notification: Notification
    added_at: float
    attempts: int
    next_at: float
    detail: str

    @property
    def key(self) -> str:
        """The idempotency key."""
        return self.notification.key

    @property
    def receiver(self) -> str:
        """The receiver's name."""
        return self.notification.receiver

    @property
    def group(self) -> str:
        """The group key."""
        return self.notification.group


class Outbox(Database):
    """The persistent queue of notifications, and the alerting core's saved state.

    Args:
        path: the database file; its directory is created if missing.

    While the disk refuses writes (full, read-only) the outbox lives in
    memory and goes back to the file when it can (:class:`~commsmon.state.db.StateDb`):
    delivery goes on.

    Raises:
        sqlite3.DatabaseError: the file is not a database.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, name="outbox")

    # -- notifications ------------------------------------------------------

    def add(self, notification: Notification, now: float) -> bool:
        """Write a notification, due at once; idempotent on (key, receiver).

        Returns:
            True if it was stored, False if that key was already there for
            that receiver (pending, delivered or given up: left as it is).
        """
        body = notification_to_json(notification)
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO outbox (key, receiver, grp, body, added_at, next_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (notification.key, notification.receiver, notification.group, body, now, now),
            )
        return cur.rowcount == 1

    def due(
        self,
        now: float,
        limit: int,
        *,
        per_receiver: int | None = None,
        exclude: Collection[str] = (),
    ) -> list[Pending]:
        """Pending notifications to attempt now, oldest first (creation order).

        A notification is due when its ``next_at`` has come and every older
        pending one of the same receiver and group is due too (it will be
        attempted first), so within a group order is kept.

        Args:
            now: epoch seconds.
            limit: the most to return.
            per_receiver: the most to return for any one receiver (``None``:
                no cap), so one long queue cannot hide the others.
            exclude: receivers to leave out (busy, held, out of rate).

        A row whose JSON will not decode (written by a future version, or
        damaged) is given up with a logged error instead of stopping delivery.
        """
        skip = list(exclude)
        marks = ",".join("?" * len(skip))
        sql = (
            "SELECT seq, body, added_at, attempts, next_at, detail, receiver,"
            " ROW_NUMBER() OVER (PARTITION BY receiver ORDER BY seq) AS nth"
            " FROM outbox o WHERE state = 'pending' AND next_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.state = 'pending'"
            " AND e.receiver = o.receiver AND e.grp = o.grp AND e.seq < o.seq AND e.next_at > ?)"
            + (f" AND receiver NOT IN ({marks})" if skip else "")
        )
        cap = "" if per_receiver is None else " WHERE nth <= ?"
        params: list[object] = [now, now, *skip]
        if per_receiver is not None:
            params.append(per_receiver)
        params.append(limit)
        with self._lock:
            rows = self._db.execute(
                f"SELECT seq, body, added_at, attempts, next_at, detail FROM ({sql}){cap}"
                " ORDER BY seq LIMIT ?",
                params,
            ).fetchall()
        out: list[Pending] = []
        for seq, body, added_at, attempts, next_at, detail in rows:
            try:
                n = notification_from_json(body)
            except (ValueError, KeyError, TypeError) as exc:
                self._give_up_row(seq, now, f"undecodable: {exc!r}")
                log.error("alert notification unreadable, given up", seq=seq, error=repr(exc))
                continue
            out.append(Pending(n, added_at, attempts, next_at, detail))
        return out

    def delivered(self, key: str, receiver: str, now: float, detail: str = "") -> None:
        """Mark a notification delivered (the receiver accepted it at ``now``; ``detail``
        says how when not by us: "told by the peer replica")."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET state = 'delivered', done_at = ?, last_attempt_at = ?,"
                " detail = CASE WHEN ? != '' THEN ? ELSE detail END"
                " WHERE key = ? AND receiver = ? AND state = 'pending'",
                (now, now, detail, detail, key, receiver),
            )

    def pending_for(self, receivers: Collection[str]) -> list[Pending]:
        """Every pending notification for ``receivers``, oldest first (unreadable ones
        are left out; :meth:`due` gives them up)."""
        marks = ",".join("?" * len(receivers))
        with self._lock:
            rows = self._db.execute(
                "SELECT body, added_at, attempts, next_at, detail FROM outbox WHERE state ="
                f" 'pending' AND receiver IN ({marks}) ORDER BY seq", tuple(receivers)).fetchall()
        out = []
        for body, added_at, attempts, next_at, detail in rows:
            try:
                out.append(Pending(notification_from_json(body), added_at, attempts, next_at,
                                   detail))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def failed(self, key: str, receiver: str, now: float, detail: str, next_at: float) -> None:
        """Record a failed attempt at ``now``; the next is not before ``next_at``."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, detail = ?,"
                " next_at = ? WHERE key = ? AND receiver = ? AND state = 'pending'",
                (now, detail, next_at, key, receiver),
            )

    def given_up(self, key: str, receiver: str, now: float, detail: str, attempted: bool) -> None:
        """Stop trying a notification.

        Args:
            detail: why (the last failure, "unknown receiver").
            attempted: whether an attempt was just made (counted with ``now``).
        """
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET state = 'given_up', done_at = ?, detail = ?,"
                " attempts = attempts + ?,"
                " last_attempt_at = CASE WHEN ? THEN ? ELSE last_attempt_at END"
                " WHERE key = ? AND receiver = ? AND state = 'pending'",
                (now, detail, int(attempted), int(attempted), now, key, receiver),
            )

    def escalations_pending(self, receiver: str) -> list[Pending]:
        """``receiver``'s pending escalation steps that have another receiver to go to."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body, added_at, attempts, next_at, detail FROM outbox"
                " WHERE state = 'pending' AND receiver = ?"
                " AND json_extract(body, '$.kind') = 'escalation'"
                " AND json_array_length(json_extract(body, '$.fallbacks')) > 0 ORDER BY seq",
                (receiver,)).fetchall()
        return [Pending(notification_from_json(b), a, n, t, d) for b, a, n, t, d in rows]

    def hand_on(self, p: Pending, now: float, why: str) -> str:
        """Pass a pending escalation step to its next receiver (a new row, due now; the
        old one ends ``given_up``, saying to whom and why); the new receiver's name."""
        note = p.notification
        successor = replace(note, receiver=note.fallbacks[0], fallbacks=note.fallbacks[1:])
        body = notification_to_json(successor)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO outbox (key, receiver, grp, body, added_at, next_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (note.key, successor.receiver, note.group, body, p.added_at, now))
            self._db.execute(
                "UPDATE outbox SET state = 'given_up', done_at = ?, detail = ?"
                " WHERE key = ? AND receiver = ? AND state = 'pending'",
                (now, f"handed on to {successor.receiver}: {why}", note.key, note.receiver))
        return successor.receiver

    def _give_up_row(self, seq: int, now: float, detail: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET state = 'given_up', done_at = ?, detail = ? WHERE seq = ?",
                (now, detail, seq),
            )

    def status(self, key: str, receiver: str) -> str | None:
        """``pending``, ``delivered``, ``given_up``, or ``None`` if never added."""
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM outbox WHERE key = ? AND receiver = ?", (key, receiver)
            ).fetchone()
        return None if row is None else str(row[0])

    def pending_count(self) -> int:
        """How many notifications are pending."""
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
            ).fetchone()
        return int(n)

    def oldest_pending_at(self) -> float | None:
        """Epoch seconds the oldest pending notification was added; ``None`` if none."""
        with self._lock:
            (t,) = self._db.execute(
                "SELECT MIN(added_at) FROM outbox WHERE state = 'pending'"
            ).fetchone()
        return None if t is None else float(t)

    def next_due_at(self) -> float | None:
        """Epoch seconds the next notification falls due (may be past); ``None`` if none.

        Only the oldest pending notification of each receiver and group counts:
        the ones behind it wait for it.
        """
        with self._lock:
            (t,) = self._db.execute(
                f"SELECT MIN(next_at) FROM outbox o WHERE state = 'pending' AND {_IS_HEAD}"
            ).fetchone()
        return None if t is None else float(t)

    def next_due_by_receiver(self) -> dict[str, float]:
        """Receiver -> epoch seconds its next notification falls due (as :meth:`next_due_at`)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT receiver, MIN(next_at) FROM outbox o WHERE state = 'pending'"
                f" AND {_IS_HEAD} GROUP BY receiver"
            ).fetchall()
        return {str(r): float(t) for r, t in rows}

    def rewind(self, seconds: float) -> None:
        """Move every pending row's next attempt ``seconds`` earlier (the clock
        stepped back by that much)."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET next_at = next_at - ? WHERE state = 'pending'", (seconds,)
            )

    def prune(self, before: float) -> int:
        """Forget delivered and given-up notifications finished before ``before``,
        and ack links that expired before it.

        Keep them long enough that the alerting core cannot re-add the same
        key after a restart (its state says what was already sent).

        Returns:
            how many notification rows were deleted.
        """
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM outbox WHERE state != 'pending' AND done_at < ?", (before,)
            )
            self._db.execute("DELETE FROM ack_links WHERE expires < ?", (before,))
        return cur.rowcount

    # -- saved state --------------------------------------------------------

    # -- ack links ----------------------------------------------------------------

    def add_link(self, link: AckLink) -> None:
        """Record an ack link as it goes out in a message."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO ack_links (jti, grp, opened, level, role, action, expires)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (link.jti, link.group, link.opened, link.level, link.role, link.action,
                 link.expires))

    def link(self, jti: str) -> AckLink | None:
        """The ack link ``jti``, ``None`` when none was issued."""
        with self._lock:
            row = self._db.execute(
                "SELECT jti, grp, opened, level, role, action, expires, used_at, used_by"
                " FROM ack_links WHERE jti = ?", (jti,)).fetchone()
        return None if row is None else AckLink(*row)

    def use_link(self, jti: str, now: float, by: str) -> bool:
        """Spend ``jti`` (single use): ``False`` when it was used already."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE ack_links SET used_at = ?, used_by = ? WHERE jti = ? AND used_at IS NULL",
                (now, by, jti))
        return cur.rowcount == 1

    def get_state(self, name: str) -> str | None:
        """The JSON text saved under ``name`` (unpacked if it was saved as
        :class:`PackedText`), or ``None``.

        Raises:
            zlib.error, UnicodeDecodeError: a packed value that will not unpack.
        """
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        value = row[0]
        return zlib.decompress(value).decode() if isinstance(value, bytes) else str(value)

    def put_state(self, name: str, json_text: str | bytes) -> None:
        """Save (replace) the JSON text under ``name``, durably, in one step; ``bytes``
        are a :class:`PackedText`'s value (kept as a BLOB, unpacked by
        :meth:`get_state`)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO state (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, json_text),
            )


class PackedText:
    """A large state's UTF-8 text for :meth:`Outbox.put_state`, zlib-compressed as it is
    written (the fastest level: JSON repeats itself), so the whole text is never held
    at once: the rules' memory is 15 MiB of JSON at 20 000 devices, about a tenth
    packed."""

    def __init__(self) -> None:
        self._packer = zlib.compressobj(1)
        self._parts: list[bytes] = []

    def write(self, text: bytes) -> None:
        """Add the next piece of the text."""
        self._parts.append(self._packer.compress(text))

    def value(self) -> bytes:
        """The packed text, for :meth:`Outbox.put_state` (ends the writing)."""
        self._parts.append(self._packer.flush())
        return b"".join(self._parts)


# -- serialisation ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AckLink:
    """An ack link sent in a message (``/a/<token>``).

    Attributes:
        jti: its id.
        group: the group it acknowledges.
        opened: when that group began firing (the link dies with the episode).
        level: the group's level when it was sent (JSON: severity, alerts).
        role: the role it was sent to.
        action: ``ack``.
        expires: epoch seconds.
        used_at: epoch seconds it was used, ``None`` before.
        used_by: who used it.
    """

    jti: str
    group: str
    opened: float
    level: str
    role: str
    action: str
    expires: float
    used_at: float | None = None
    used_by: str = ""


def notification_to_json(n: Notification) -> str:
    """A notification as JSON text (ASCII-only, so any string survives SQLite).

    :func:`notification_from_json` gives back an equal (``==``) notification.
    """
    doc = {
        "v": _FORMAT,
        "key": n.key,
        "receiver": n.receiver,
        "group": n.group,
        "status": n.status,
        "alerts": [_alert_doc(a) for a in n.alerts],
        "folded": [_alert_doc(a) for a in n.folded],
        "site": None if n.site is None else _site_doc(n.site),
        "created_at": n.created_at,
        "language": n.language,
    }
    if n.kind != "news":
        doc["kind"] = n.kind
    if n.escalation is not None:
        doc["escalation"] = fact_to_json(n.escalation)
    if n.fallbacks:
        doc["fallbacks"] = list(n.fallbacks)
    if n.drill:
        doc["drill"] = n.drill
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"))


def notification_from_json(text: str) -> Notification:
    """The notification that :func:`notification_to_json` wrote.

    Raises:
        ValueError: not JSON, an unknown format version, or a bad field value.
        KeyError: a field is missing.
        TypeError: a field has the wrong shape.
    """
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("v") not in _READABLE:
        raise ValueError(f"not a notification of format {_READABLE}")
    status = doc["status"]
    if status not in ("firing", "resolved"):
        raise ValueError(f"bad status {status!r}")
    language = doc["language"]
    if language not in ("zh", "en"):
        raise ValueError(f"bad language {language!r}")
    site = doc["site"]
    kind = doc.get("kind", "news")
    if kind not in ("news", "repeat", "escalation", "digest"):
        raise ValueError(f"bad kind {kind!r}")
    escalation = doc.get("escalation")
    return Notification(
        key=_str(doc["key"]),
        receiver=_str(doc["receiver"]),
        group=_str(doc["group"]),
        status=status,
        alerts=tuple(_alert(a) for a in doc["alerts"]),
        folded=tuple(_alert(a) for a in doc["folded"]),
        site=None if site is None else _site(site),
        created_at=_float(doc["created_at"]),
        language=language,
        kind=kind,
        escalation=None if escalation is None else fact_from_json(escalation),
        fallbacks=tuple(_str(r) for r in doc.get("fallbacks", ())),
        drill=_str(doc.get("drill", "")),
    )


def _alert_doc(a: Alert) -> dict[str, Any]:
    return {
        "rule": a.rule,
        "severity": a.severity,
        "labels": dict(a.labels),
        "facts": facts_to_json(a.facts),
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
    }


def _alert(d: Mapping[str, Any]) -> Alert:
    severity = d["severity"]
    if severity not in SEVERITIES:
        raise ValueError(f"bad severity {severity!r}")
    ends_at = d["ends_at"]
    return Alert(
        rule=_str(d["rule"]),
        severity=severity,
        labels=_str_map(d["labels"]),
        facts=facts_from_json(d["facts"]),
        starts_at=_float(d["starts_at"]),
        ends_at=None if ends_at is None else _float(ends_at),
    )


def _site_doc(s: SiteContext) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "town": s.town,
        "state": s.state,
        "channels_up": list(s.channels_up),
        "channels_lost": dict(s.channels_lost),
        "readiness": dict(s.readiness),
        "outages": list(s.outages),
        "now": None if s.now is None else fact_to_json(s.now),
    }


def _site(d: Mapping[str, Any]) -> SiteContext:
    readiness = d["readiness"]
    if not isinstance(readiness, dict) or not all(
        isinstance(k, str) and isinstance(v, bool) for k, v in readiness.items()
    ):
        raise TypeError("readiness must map text to true/false")
    return SiteContext(
        id=_str(d["id"]),
        name=_str(d["name"]),
        town=_str(d["town"]),
        state=_str(d["state"]),
        channels_up=tuple(_str(c) for c in d["channels_up"]),
        channels_lost=_str_map(d["channels_lost"]),
        readiness=dict(readiness),
        outages=tuple(_str(o) for o in d["outages"]),
        now=None if d.get("now") is None else fact_from_json(d["now"]),
    )


def _str(v: object) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected text, got {type(v).__name__}")
    return v


def _float(v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"expected a number, got {type(v).__name__}")
    return float(v)


def _str_map(v: object) -> dict[str, str]:
    if not isinstance(v, dict):
        raise TypeError(f"expected an object, got {type(v).__name__}")
    return {_str(k): _str(x) for k, x in v.items()}
