"""History survives a SIGKILL mid-write: a process writes the timeline as the evaluation
loop does (batches of events, one transaction each, the daemon's alive note between)
and is killed without warning while writing; the file opens again, passes SQLite's
integrity check, and holds every batch it said was written and no part of any other."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from commsmon.state.store import Store

BATCH = 500
WRITER = """
import sys
from commsmon.state.dutylog import Event
from commsmon.state.store import Store
store = Store(__import__("pathlib").Path(sys.argv[1]))
n = 0
while True:
    store.add_events([Event(1e9 + n, "v05", "device_state", f"d{i}", "up", "down")
                      for i in range(int(sys.argv[2]))])
    store.put_alive(1e9 + n)
    n += 1
    print(n, flush=True)
"""


def test_history_survives_a_sigkill_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "commsmon.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(BATCH)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    said = 0
    deadline = time.monotonic() + 60
    while said < 20 and time.monotonic() < deadline:  # well into its writing
        said = int(writer.stdout.readline() or said)
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    assert said >= 20, "the writer never got going"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = db.execute("SELECT count(*) FROM timeline").fetchone()[0]
    assert rows % BATCH == 0  # whole batches only
    assert rows >= said * BATCH  # every batch it said was written
    store = Store(path)  # and the daemon's store opens it and reads on
    try:
        assert store.alive() is not None
        assert len(store.state_changes("device_state", "d7", 0, 2e9)) == rows // BATCH
    finally:
        store.close()
