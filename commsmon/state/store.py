"""What operators told the daemon, kept across restarts (SQLite under the state directory).

Check-ins (every one, as a log), declared outages and the duty log are written before the
API answers, so a restart or a crash loses none of them (while the disk
refuses writes they are kept in memory until it takes them again, see
:mod:`commsmon.state.db`).  Calls are
synchronous; the daemon runs them in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

from commsmon.core.drills import Drill
from commsmon.core.outages import Declaration
from commsmon.core.types import CheckIn
from commsmon.state.db import Database
from commsmon.state.dutylog import Action, DutyEntry, Event, EventKind

__all__ = ["Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkins (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    at REAL NOT NULL,          -- epoch seconds
    ok INTEGER NOT NULL,
    by TEXT NOT NULL,
    note TEXT NOT NULL,
    charge REAL                -- ratio 0-1, NULL if not given
);
CREATE INDEX IF NOT EXISTS checkins_device_at ON checkins (device, at);
CREATE TABLE IF NOT EXISTS declarations (
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    since REAL NOT NULL,       -- epoch seconds
    until REAL,                -- epoch seconds, NULL until cleared
    by TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (site, kind)
);
CREATE TABLE IF NOT EXISTS duty_log (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,          -- epoch seconds
    user TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    site TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL       -- JSON object of strings
);
CREATE INDEX IF NOT EXISTS duty_log_at ON duty_log (at);
CREATE TABLE IF NOT EXISTS timeline (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,          -- epoch seconds
    site TEXT NOT NULL,
    kind TEXT NOT NULL,        -- device_state, site_state, outage_start ...
    subject TEXT NOT NULL,
    old TEXT NOT NULL,
    new TEXT NOT NULL,
    detail TEXT NOT NULL       -- JSON object of strings
);
CREATE INDEX IF NOT EXISTS timeline_site_at ON timeline (site, at);
CREATE INDEX IF NOT EXISTS duty_log_site_at ON duty_log (site, at);
CREATE INDEX IF NOT EXISTS timeline_subject ON timeline (kind, subject, at);
CREATE TABLE IF NOT EXISTS drills (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    scenario TEXT NOT NULL,
    start REAL NOT NULL,       -- epoch seconds
    until REAL,                -- planned end, NULL: until stopped
    stopped REAL,              -- NULL while it runs
    by TEXT NOT NULL,
    note TEXT NOT NULL,
    observed TEXT NOT NULL     -- JSON: figures at start and end, what the kit did
);
CREATE INDEX IF NOT EXISTS drills_start ON drills (start);
CREATE TABLE IF NOT EXISTS alive (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at REAL NOT NULL           -- epoch seconds the daemon last said it runs
);
"""


class Store(Database):
    """The daemon's SQLite file of check-ins and declarations.

    Args:
        path: the database file; its directory is created if missing.

    While the disk refuses writes (full, read-only) the store lives in
    memory and goes back to the file when it can (:class:`~commsmon.state.db.StateDb`).

    Raises:
        sqlite3.DatabaseError: the file is not a database.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, name="store")

    def add_checkin(self, c: CheckIn) -> None:
        """Append a check-in to the log."""
        with self._lock:
            self._db.execute(
                "INSERT INTO checkins (device, at, ok, by, note, charge) VALUES (?,?,?,?,?,?)",
                (c.device, c.at, int(c.ok), c.by, c.note, c.charge),
            )

    def checkins(self, device: str, start: float, end: float) -> list[CheckIn]:
        """``device``'s check-ins from ``start`` to ``end`` (epoch seconds), in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device, at, ok, by, note, charge FROM checkins"
                " WHERE device = ? AND at >= ? AND at < ? ORDER BY at", (device, start, end)
            ).fetchall()
        return [CheckIn(d, at, bool(ok), by, note, charge) for d, at, ok, by, note, charge in rows]

    def latest_checkins(self) -> list[CheckIn]:
        """The newest check-in of every device."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device, at, ok, by, note, charge FROM checkins c WHERE at = "
                "(SELECT MAX(at) FROM checkins WHERE device = c.device) ORDER BY device"
            ).fetchall()
        return [CheckIn(d, at, bool(ok), by, note, charge) for d, at, ok, by, note, charge in rows]

    def put_declaration(self, d: Declaration) -> None:
        """Record (or replace) a declared outage."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO declarations VALUES (?,?,?,?,?,?)",
                (d.site, d.kind, d.since, d.until, d.by, d.note),
            )

    def delete_declaration(self, site: str, kind: str) -> None:
        """Forget a declared outage."""
        with self._lock:
            self._db.execute("DELETE FROM declarations WHERE site = ? AND kind = ?", (site, kind))

    def declarations(self) -> list[Declaration]:
        """Every declared outage on record."""
        with self._lock:
            rows = self._db.execute(
                "SELECT site, kind, since, until, by, note FROM declarations ORDER BY site, kind"
            ).fetchall()
        return [Declaration(s, k, since, until, by, note) for s, k, since, until, by, note in rows]

    def add_duty(self, e: DutyEntry) -> None:
        """Append an entry to the duty log."""
        with self._lock:
            self._db.execute(
                "INSERT INTO duty_log (at, user, address, action, site, subject, detail) "
                "VALUES (?,?,?,?,?,?,?)",
                (e.at, e.user, e.address, e.action, e.site, e.subject,
                 json.dumps(e.detail, ensure_ascii=False)),
            )

    def duty_entries(self, start: float, end: float, user: str | None = None) -> list[DutyEntry]:
        """Duty-log entries from ``start`` (inclusive) to ``end`` (exclusive), epoch
        seconds, oldest first; only ``user``'s when given."""
        sql = ("SELECT at, user, address, action, site, subject, detail FROM duty_log "
               "WHERE at >= ? AND at < ?")
        params: list[object] = [start, end]
        if user is not None:
            sql += " AND user = ?"
            params.append(user)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY at, id", params).fetchall()
        return [DutyEntry(at, u, addr, cast(Action, action), site, subject, json.loads(detail))
                for at, u, addr, action, site, subject, detail in rows]

    def add_events(self, events: list[Event]) -> None:
        """Append what the monitor saw change to the timeline."""
        with self._lock:
            self._db.executemany(
                "INSERT INTO timeline (at, site, kind, subject, old, new, detail)"
                " VALUES (?,?,?,?,?,?,?)",
                [(e.at, e.site, e.kind, e.subject, e.old, e.new,
                  json.dumps(e.detail, ensure_ascii=False)) for e in events])

    def events(self, site: str, start: float, end: float, limit: int,
               every: bool = False) -> list[Event]:
        """``site``'s timeline from ``start`` to ``end`` (epoch seconds), newest first,
        at most ``limit``: what changed (not the states a run first saw, nor verdicts,
        which are history for reports — unless ``every``)."""
        news = "" if every else (
            " AND kind NOT IN ('readiness', 'channel_state', 'monitor_gap') AND NOT"
            " (kind IN ('device_state', 'site_state') AND old = '')")
        with self._lock:
            rows = self._db.execute(
                "SELECT at, site, kind, subject, old, new, detail FROM timeline"
                f" WHERE site = ? AND at >= ? AND at < ?{news} ORDER BY at DESC, id DESC"
                " LIMIT ?", (site, start, end, limit)).fetchall()
        return [Event(at, s, cast(EventKind, kind), subject, old, new, json.loads(detail))
                for at, s, kind, subject, old, new, detail in rows]

    def marks(self, site: str, kinds: tuple[EventKind, ...], end: float) -> list[Event]:
        """``site``'s timeline events of ``kinds`` before ``end``, oldest first (outages
        and alerts, whose starts may lie before a report's period)."""
        marks = ",".join("?" * len(kinds))
        with self._lock:
            rows = self._db.execute(
                "SELECT at, site, kind, subject, old, new, detail FROM timeline WHERE"
                f" site = ? AND at < ? AND kind IN ({marks}) ORDER BY at, id",
                (site, end, *kinds)).fetchall()
        return [Event(at, s, cast(EventKind, kind), subject, old, new, json.loads(detail))
                for at, s, kind, subject, old, new, detail in rows]

    def site_duty(self, site: str, start: float, end: float, limit: int) -> list[DutyEntry]:
        """Duty-log entries about ``site``, newest first, at most ``limit``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT at, user, address, action, site, subject, detail FROM duty_log"
                " WHERE site = ? AND at >= ? AND at < ? ORDER BY at DESC, id DESC LIMIT ?",
                (site, start, end, limit)).fetchall()
        return [DutyEntry(at, u, addr, cast(Action, action), s, subject, json.loads(detail))
                for at, u, addr, action, s, subject, detail in rows]

    def prune_history(self, before: float) -> int:
        """Forget timeline events, duty-log entries, check-ins and drills older than
        ``before`` (the retention) — but each subject's last state change before it,
        which still says what held at ``before`` — and give the space back; how many
        rows went."""
        with self._lock:
            n = self._db.execute(
                "DELETE FROM timeline WHERE at < ? AND id NOT IN (SELECT MAX(id) FROM"
                " timeline WHERE at < ? AND kind IN ('device_state', 'site_state',"
                " 'channel_state', 'readiness') GROUP BY kind, subject)", (before, before)).rowcount
            n += self._db.execute("DELETE FROM duty_log WHERE at < ?", (before,)).rowcount
            n += self._db.execute(
                "DELETE FROM checkins WHERE at < ? AND id NOT IN (SELECT MAX(id) FROM"
                " checkins GROUP BY device)", (before,)).rowcount
            n += self._db.execute("DELETE FROM drills WHERE COALESCE(stopped, until, 1e300)"
                                  " < ?", (before,)).rowcount
            if n:
                self._db.execute("PRAGMA incremental_vacuum")
        return n

    def put_drill(self, d: Drill, observed: dict[str, object]) -> None:
        """Record (or update) a drill and what the monitor saw of it so far."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO drills VALUES (?,?,?,?,?,?,?,?,?)",
                (d.id, d.site, d.scenario, d.start, d.until, d.stopped, d.by, d.note,
                 json.dumps(observed, ensure_ascii=False)))

    def drills(self, start: float, end: float,
               drill_id: str | None = None) -> list[tuple[Drill, dict[str, object]]]:
        """Drills that overlap [start, end) (or the one ``drill_id``), oldest first, each
        with what the monitor saw of it; ones still running overlap every later time."""
        sql = ("SELECT id, site, scenario, start, until, stopped, by, note, observed"
               " FROM drills WHERE ")
        params: tuple[object, ...]
        if drill_id is not None:
            sql, params = sql + "id = ?", (drill_id,)
        else:
            sql += "start < ? AND COALESCE(stopped, until, 1e300) > ?"
            params = (end, start)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY start, id", params).fetchall()
        return [(Drill(i, site, sc, st, until, by, note, stopped), json.loads(observed))
                for i, site, sc, st, until, stopped, by, note, observed in rows]

    def put_alive(self, at: float) -> None:
        """Note that the daemon runs at ``at`` (once a minute: history's gaps)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO alive (id, at) VALUES (1, ?)", (at,))

    def alive(self) -> float | None:
        """When the daemon last noted it runs, ``None`` if never."""
        with self._lock:
            row = self._db.execute("SELECT at FROM alive WHERE id = 1").fetchone()
        return None if row is None else float(row[0])

    def state_changes(self, kind: EventKind, subject: str, start: float,
                      end: float) -> list[tuple[float, str]]:
        """(epoch seconds, new state) of ``subject``'s ``kind`` events from the last one
        at or before ``start`` (the state the period begins in) to ``end``, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT at, new FROM timeline WHERE kind = ? AND subject = ? AND at < ? AND"
                " at >= COALESCE((SELECT MAX(at) FROM timeline WHERE kind = ? AND subject = ?"
                " AND at <= ?), 0) ORDER BY at, id",
                (kind, subject, end, kind, subject, start)).fetchall()
        return [(float(at), str(new)) for at, new in rows]

    def gaps(self, start: float, end: float) -> list[tuple[float, float]]:
        """Times the daemon did not run that overlap [start, end)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT at, detail FROM timeline WHERE kind = 'monitor_gap' AND at < ?",
                (end,)).fetchall()
        out = []
        for at, detail in rows:
            until = float(json.loads(detail).get("until", at))
            if until > start:
                out.append((float(at), until))
        return out
