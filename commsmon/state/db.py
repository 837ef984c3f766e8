"""A SQLite file under the state directory that keeps working when its disk does not.

The outbox and the store must not stop the daemon when the disk is full or
the filesystem went read-only (ext4 ``errors=remount-ro``): monitoring goes
on, and what is written meanwhile must not be lost.  So when a statement
fails because the file cannot be written (SQLITE_FULL, SQLITE_READONLY,
SQLITE_IOERR, SQLITE_CANTOPEN), the database is copied into memory -- reading
still works -- and the statement runs there.  From then on every statement
runs in memory and, at most every ``retry_every`` seconds, the memory is
copied back to the file; once that succeeds the file is used again.  The same
happens if the file cannot be opened for writing at start (its contents are
read if it can be read).

While in memory, what changed is lost only if the process dies before the
disk comes back; the file still holds what it held before the trouble.
``commsmon_state_file_writable{file}`` and :attr:`StateDb.problem` say which
it is, and the daemon raises the ``monitor_fault`` alert on it.

Not thread-safe by itself: :class:`Database`, the base of the owners
(:class:`~commsmon.state.store.Store`, :class:`~commsmon.state.outbox.Outbox`),
serialises calls with a lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from commsmon.selfmetrics import STATE_FILE_WRITABLE

__all__ = ["Database", "StateDb"]

log = structlog.get_logger("commsmon.state")

# Primary result codes (the low byte of an extended code) that mean "the
# disk will not take it", not a bug in a statement.
_DISK_REFUSED = frozenset({
    sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
})


class StateDb:
    """One SQLite database file, falling back to memory while the disk refuses writes.

    Args:
        path: the database file; its directory is created if missing.
        schema: SQL run at open (``CREATE ... IF NOT EXISTS``).
        name: the ``file`` label of ``commsmon_state_file_writable``.
        retry_every: seconds between attempts to go back to the file.
        clock: monotonic seconds (injected for tests).

    Raises:
        sqlite3.DatabaseError: the file exists but is not a database (a
            disk problem never raises here, see the module docstring).
    """

    def __init__(
        self,
        path: Path,
        schema: str,
        *,
        name: str,
        retry_every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.name = name
        self._schema = schema
        self._retry_every = retry_every
        self._clock = clock
        self._tried_at = clock()
        self.problem: str | None = None  # why it runs in memory, else None
        try:
            self._db = self._open_file()
        except (OSError, sqlite3.OperationalError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _refused(exc):
                raise
            self._db = self._to_memory(self._read_only_copy(), exc)
        else:
            STATE_FILE_WRITABLE.labels(name).set(1)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement (autocommit), in memory if the file refuses it.

        Raises:
            sqlite3.Error: the statement itself is wrong.
        """
        return self._run(lambda db: db.execute(sql, params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> sqlite3.Cursor:
        """Run one statement for each of ``rows`` in one transaction (one sync to disk,
        not one per row), in memory if the file refuses it.

        Raises:
            sqlite3.Error: the statement itself is wrong.
        """
        def many(db: sqlite3.Connection) -> sqlite3.Cursor:
            db.execute("BEGIN")
            try:
                cursor = db.executemany(sql, rows)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # a refused COMMIT leaves it open: nothing half-kept
                    db.execute("ROLLBACK")
                raise
            return cursor

        return self._run(many)

    def retry(self) -> None:
        """While in memory: try the file again, if it is time to (a file written only now
        and then would otherwise wait for its next write to learn the disk took it)."""
        if self.problem is not None and self._clock() - self._tried_at >= self._retry_every:
            self._back_to_file()

    def _run(self, call: Callable[[sqlite3.Connection], sqlite3.Cursor]) -> sqlite3.Cursor:
        self.retry()
        try:
            return call(self._db)
        except sqlite3.OperationalError as exc:
            if self.problem is not None or not _refused(exc):
                raise
            self._db = self._to_memory(self._db, exc)
            return call(self._db)

    def close(self) -> None:
        """Try once more to save to the file, then close."""
        if self.problem is not None:
            self._back_to_file()
        self._db.close()

    def _open_file(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        try:
            # pages freed by pruning go back to the disk (PRAGMA incremental_vacuum);
            # takes effect on a new file only
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            # A small write-ahead log: files written every few seconds (the timeline)
            # must not hold megabytes of log that a nearly full disk then cannot move
            # into the database, nor keep it once moved.
            db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
            db.execute(f"PRAGMA journal_size_limit={WAL_BYTES}")
            db.executescript(self._schema)
        except BaseException:
            db.close()
            raise
        return db

    def _read_only_copy(self) -> sqlite3.Connection | None:
        """The file opened read-only, to copy from; ``None`` if it cannot be read.

        A WAL database on a read-only filesystem opens with ``mode=ro`` only
        while its ``-shm`` file exists (an unclean stop); after a clean stop
        only ``immutable=1`` opens it, which is right: nothing can change it.
        """
        if not self.path.exists():
            return None
        for query in ("mode=ro", "immutable=1"):
            db = sqlite3.connect(f"{self.path.as_uri()}?{query}", uri=True,
                                 check_same_thread=False)
            try:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error:
                db.close()
                continue
            return db
        return None

    def _to_memory(self, source: sqlite3.Connection | None, exc: Exception) -> sqlite3.Connection:
        memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        if source is not None:
            try:
                source.backup(memory)
            except sqlite3.Error as copy_exc:
                log.error("state file unreadable; starting it empty in memory",
                          file=str(self.path), problem=str(copy_exc))
            source.close()
        memory.executescript(self._schema)
        self.problem = f"{self.path.name}: {exc}"
        self._tried_at = self._clock()
        STATE_FILE_WRITABLE.labels(self.name).set(0)
        log.error("state file not writable; keeping it in memory until the disk takes it "
                  "again", file=str(self.path), problem=str(exc),
                  retry_every=self._retry_every)
        return memory

    def _back_to_file(self) -> None:
        self._tried_at = self._clock()
        try:
            db = self._open_file()
        except (OSError, sqlite3.Error):
            return
        try:
            self._db.backup(db)
        except sqlite3.Error:
            db.close()
            return
        self._db.close()
        self._db = db
        self.problem = None
        STATE_FILE_WRITABLE.labels(self.name).set(1)
        log.info("state file writable again; what was kept in memory is saved",
                 file=str(self.path))


WAL_PAGES = 64  # pages (4 KiB) the write-ahead log holds before a checkpoint
WAL_BYTES = 512 * 1024  # bytes the log file is cut back to after a checkpoint


def _refused(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _DISK_REFUSED


class Database:
    """A :class:`StateDb` behind a lock: the base of every state file's owner.

    Subclasses run their statements as ``with self._lock: self._db.execute(...)``;
    calls are synchronous and thread-safe, and the daemon runs them in a worker
    thread (``asyncio.to_thread``).

    Args:
        path: the database file; its directory is created if missing.
        schema: SQL run at open (``CREATE ... IF NOT EXISTS``).
        name: the ``file`` label of ``commsmon_state_file_writable``.

    Raises:
        sqlite3.DatabaseError: the file is not a database.
    """

    def __init__(self, path: Path, schema: str, name: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = StateDb(path, schema, name=name)

    @property
    def problem(self) -> str | None:
        """Why the file is kept in memory (its disk refuses writes), else ``None``."""
        return self._db.problem

    def retry(self) -> None:
        """While in memory: try the file again if it is time to (blocking)."""
        with self._lock:
            self._db.retry()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
