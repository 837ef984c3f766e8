"""A state file that keeps working in memory while its disk refuses writes (commsmon.state.db)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from commsmon.selfmetrics import STATE_FILE_WRITABLE
from commsmon.state.db import StateDb

SCHEMA = "CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY, body TEXT NOT NULL);"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [n for (n,) in db.execute("SELECT n FROM t ORDER BY n")]


def writable(name: str) -> float:
    return STATE_FILE_WRITABLE.labels(name)._value.get()


def test_full_disk_keeps_writes_in_memory_then_saves_them(tmp_path: Path) -> None:
    """SQLITE_FULL (here: the page limit of the open connection, as a full disk
    gives it) moves the file into memory with everything it held; nothing
    written meanwhile is lost, and it all reaches the file once writes work."""
    clock = Clock()
    path = tmp_path / "state" / "t.db"
    db = StateDb(path, SCHEMA, name="t1", retry_every=30.0, clock=clock)
    db.execute("INSERT INTO t VALUES (1, ?)", ("x" * 100,))
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")
    for n in range(2, 40):
        db.execute("INSERT INTO t VALUES (?, ?)", (n, "y" * 2000))
    assert db.problem is not None and "full" in db.problem
    assert writable("t1") == 0
    on_disk = rows(path)  # the file holds what it held before the trouble
    assert on_disk == list(range(1, len(on_disk) + 1)) and len(on_disk) < 39
    assert [n for (n,) in db.execute("SELECT n FROM t")] == list(range(1, 40))
    clock.now = 29.0
    db.execute("INSERT INTO t VALUES (40, 'z')")
    assert db.problem is not None  # not retried before retry_every
    clock.now = 31.0  # a new connection has no page limit: the "disk" takes it again
    db.execute("INSERT INTO t VALUES (41, 'z')")
    assert db.problem is None and writable("t1") == 1
    assert rows(path) == list(range(1, 42))
    db.close()


def test_unwritable_state_dir_at_start_runs_in_memory(tmp_path: Path) -> None:
    """A state directory that cannot be created starts the file in memory, never raises."""
    blocker = tmp_path / "state"
    blocker.write_text("a file where the directory should be")
    db = StateDb(blocker / "t.db", SCHEMA, name="t2", retry_every=0.0)
    assert db.problem is not None and writable("t2") == 0
    db.execute("INSERT INTO t VALUES (1, 'kept')")
    blocker.unlink()  # the operator fixes it: the next statement goes back to the file
    assert [n for (n,) in db.execute("SELECT n FROM t")] == [1]
    assert db.problem is None
    assert rows(blocker / "t.db") == [1]
    db.close()
