"""The alert outbox: written before any attempt, ordered per group, whole after kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commsmon.core.alerting import Alert, Notification, SiteContext
from commsmon.core.facts import Fact
from commsmon.state.outbox import Outbox, notification_from_json, notification_to_json

T0 = 1_764_400_000.0
ROOT = Path(__file__).resolve().parents[2]


def make(i: int, receiver: str = "duty", group: str | None = None) -> Notification:
    """A notification numbered ``i``, the same in this process and in the killed one."""
    alert = Alert(
        rule="site_isolated",
        severity="critical",
        labels={"alertname": "site_isolated", "severity": "critical", "site": f"v{i % 14:02d}"},
        facts=(Fact("channel_state", {"channel": "pdt370", "state": "down"}),
               Fact("checkin_failed", {"at": T0 + i, "note": f"所有信道中断 #{i}"})),
        starts_at=T0 + i,
        ends_at=None if i % 3 else T0 + i + 60.5,
    )
    site = SiteContext(
        id=f"v{i % 14:02d}",
        name="石门村",
        town="龙泉镇",
        state="down",
        channels_up=(),
        channels_lost={"pdt370": "down", "public": "unknown"},
        readiness={"power": False, "road": True},
        outages=("power",),
    )
    return Notification(
        key=f"k{i:06d}",
        receiver=receiver,
        group=group if group is not None else f"site:v{i % 14:02d}",
        status="firing" if i % 3 else "resolved",
        alerts=(alert,),
        site=site,
        created_at=T0 + i,
    )


@pytest.fixture
def box(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "state" / "outbox.db")


def test_add_is_idempotent_on_key_and_receiver(box: Outbox) -> None:
    """Adding the same (key, receiver) twice stores it once; another receiver is another row."""
    n = make(1)
    assert box.add(n, T0) is True
    assert box.add(n, T0 + 5) is False
    assert box.add(make(1, receiver="sms"), T0) is True
    assert box.pending_count() == 2
    assert [p.notification for p in box.due(T0, 10)] == [n, make(1, receiver="sms")]


def test_re_adding_a_delivered_key_does_not_send_it_again(box: Outbox) -> None:
    """A key already delivered stays delivered when the core decides it again."""
    box.add(make(1), T0)
    box.delivered("k000001", "duty", T0 + 1)
    assert box.add(make(1), T0 + 2) is False
    assert box.status("k000001", "duty") == "delivered"
    assert box.due(T0 + 10, 10) == []


def test_due_is_oldest_first_and_waits_for_next_at(box: Outbox) -> None:
    """Creation order; a failed one is not due before its next attempt time."""
    for i in range(3):
        box.add(make(i, group=f"g{i}"), T0 + i)
    assert [p.key for p in box.due(T0 + 10, 10)] == ["k000000", "k000001", "k000002"]
    assert [p.key for p in box.due(T0 + 10, 2)] == ["k000000", "k000001"]
    assert [p.key for p in box.due(T0 + 1, 10)] == ["k000000", "k000001"]
    box.failed("k000000", "duty", T0 + 10, "HTTP 500", T0 + 30)
    (p,) = [p for p in box.due(T0 + 30, 10) if p.key == "k000000"]
    assert (p.attempts, p.next_at, p.detail, p.added_at) == (1, T0 + 30, "HTTP 500", T0)
    assert [p.key for p in box.due(T0 + 29, 10)] == ["k000001", "k000002"]


def test_a_later_notification_never_overtakes_an_earlier_one_of_its_group(box: Outbox) -> None:
    """While the firing message of a group waits, its resolution waits too; other groups go."""
    box.add(make(1, group="site:v01"), T0)  # firing
    box.add(make(2, group="site:v02"), T0)
    box.add(make(3, group="site:v01"), T0 + 1)  # its resolution
    box.failed("k000001", "duty", T0 + 2, "HTTP 400", T0 + 600)
    assert [p.key for p in box.due(T0 + 2, 10)] == ["k000002"]
    assert box.next_due_at() == T0
    box.delivered("k000002", "duty", T0 + 2)
    assert box.next_due_at() == T0 + 600
    assert box.next_due_by_receiver() == {"duty": T0 + 600}
    assert [p.key for p in box.due(T0 + 600, 10)] == ["k000001", "k000003"]
    box.given_up("k000001", "duty", T0 + 600, "HTTP 400", True)
    assert [p.key for p in box.due(T0 + 600, 10)] == ["k000003"]


def test_due_caps_per_receiver_and_leaves_out_excluded(box: Outbox) -> None:
    """One receiver's long queue cannot hide another's notifications."""
    for i in range(5):
        box.add(make(i, receiver="slow"), T0)
    box.add(make(9, receiver="fast"), T0)
    assert [p.key for p in box.due(T0, 100, per_receiver=2)] == ["k000000", "k000001", "k000009"]
    assert [p.key for p in box.due(T0, 100, exclude=["slow"])] == ["k000009"]


def test_counts_and_times(box: Outbox) -> None:
    """pending_count, oldest_pending_at, next_due_at; None when nothing is pending."""
    assert (box.pending_count(), box.oldest_pending_at(), box.next_due_at()) == (0, None, None)
    box.add(make(1), T0 + 5)
    box.add(make(2), T0 + 7)
    assert (box.pending_count(), box.oldest_pending_at(), box.next_due_at()) == (2, T0 + 5, T0 + 5)
    box.delivered("k000001", "duty", T0 + 8)
    box.given_up("k000002", "duty", T0 + 9, "unknown receiver", False)
    assert (box.pending_count(), box.oldest_pending_at(), box.next_due_at()) == (0, None, None)
    assert box.status("k000002", "duty") == "given_up"
    assert box.status("nope", "duty") is None


def test_marks_apply_to_pending_rows_only(box: Outbox) -> None:
    """A late 'failed' after 'delivered' does not bring a row back."""
    box.add(make(1), T0)
    box.delivered("k000001", "duty", T0 + 1)
    box.failed("k000001", "duty", T0 + 2, "HTTP 500", T0 + 10)
    box.given_up("k000001", "duty", T0 + 3, "late", True)
    assert box.status("k000001", "duty") == "delivered"


def test_prune_forgets_only_finished_rows_older_than_the_cut(box: Outbox) -> None:
    """Delivered and given-up rows go after their time; pending rows stay."""
    for i in range(4):
        box.add(make(i, group=f"g{i}"), T0)
    box.delivered("k000000", "duty", T0 + 10)
    box.given_up("k000001", "duty", T0 + 10, "x", False)
    box.delivered("k000002", "duty", T0 + 100)
    assert box.prune(T0 + 50) == 2
    assert [box.status(f"k00000{i}", "duty") for i in range(4)] == [
        None,
        None,
        "delivered",
        "pending",
    ]


def test_state_is_a_durable_key_value_table(box: Outbox, tmp_path: Path) -> None:
    """put_state replaces, get_state reads back, a new Outbox on the file sees it."""
    assert box.get_state("rules") is None
    box.put_state("rules", '{"a": 1}')
    box.put_state("rules", '{"a": 2, "名": "村"}')
    box.put_state("dispatch", "[]")
    again = Outbox(box.path)
    assert again.get_state("rules") == '{"a": 2, "名": "村"}'
    assert again.get_state("dispatch") == "[]"


def test_a_compressed_state_reads_as_its_text(box: Outbox) -> None:
    """bytes are the text zlib-compressed (the rules' memory, 15 MiB of JSON at 20 000
    devices): kept as a BLOB and read back as the text; a TEXT value beside it (what
    every version before saved) reads as before."""
    text = '[{"rule": "site_isolated", "labels": {"site": "v01", "名": "村"}}]'
    box.put_state("engine", zlib.compress(text.encode()))
    box.put_state("dispatcher", "{}")
    again = Outbox(box.path)
    assert again.get_state("engine") == text
    assert again.get_state("dispatcher") == "{}"


def test_undecodable_row_is_given_up_not_fatal(box: Outbox) -> None:
    """A damaged body costs that row only; the others are still due."""
    box.add(make(1, group="a"), T0)
    box.add(make(2, group="b"), T0)
    db = sqlite3.connect(box.path)
    db.execute("UPDATE outbox SET body = '{\"v\": 99}' WHERE key = 'k000001'")
    db.commit()
    db.close()
    assert [p.key for p in box.due(T0, 10)] == ["k000002"]
    assert box.status("k000001", "duty") == "given_up"


def test_crash_keeps_pending_due_and_delivered_done(tmp_path: Path) -> None:
    """Drop the Outbox without closing, open the file again: pending still due, delivered not."""
    path = tmp_path / "outbox.db"
    first = Outbox(path)
    for i in range(4):
        first.add(make(i, group=f"g{i}"), T0)
    first.delivered("k000001", "duty", T0 + 1)
    first.failed("k000002", "duty", T0 + 1, "HTTP 503", T0 + 40)
    first.put_state("dispatch", '{"sent": ["k000001"]}')
    # no close(): the process "dies" here; the object is simply abandoned
    second = Outbox(path)
    assert [p.key for p in second.due(T0 + 40, 10)] == ["k000000", "k000002", "k000003"]
    assert [p.key for p in second.due(T0 + 1, 10)] == ["k000000", "k000003"]
    assert second.status("k000001", "duty") == "delivered"
    assert second.get_state("dispatch") == '{"sent": ["k000001"]}'
    assert [p.notification for p in second.due(T0 + 40, 10)] == [
        make(0, group="g0"),
        make(2, group="g2"),
        make(3, group="g3"),
    ]


_WRITER = """
import sys
from pathlib import Path
from commsmon.state.outbox import Outbox
from tests.state.test_outbox import make
box = Outbox(Path(sys.argv[1]))
i = 0
while True:
    n = make(i)
    box.add(n, float(i))
    if i % 2 == 0:
        box.delivered(n.key, n.receiver, float(i))
    if i % 5 == 0:
        box.put_state("counter", str(i))
    print(i, flush=True)
    i += 1
"""


def test_kill_9_while_writing_leaves_whole_rows(tmp_path: Path) -> None:
    """SIGKILL a process that is busy adding and marking: the file is sound, every row whole."""
    path = tmp_path / "outbox.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = -1
    deadline = time.monotonic() + 60
    try:
        assert proc.stdout is not None
        while last < 300 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            last = int(line)
        os.kill(proc.pid, signal.SIGKILL)  # mid-way: it is still writing
    finally:
        proc.kill()
        proc.wait(timeout=30)
        assert proc.stderr is not None
        err = proc.stderr.read()
        if proc.stdout is not None:
            proc.stdout.close()
        proc.stderr.close()
    assert last >= 300, err
    assert proc.returncode == -signal.SIGKILL

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    rows = db.execute("SELECT key, receiver, grp, state, body, added_at FROM outbox").fetchall()
    (counter,) = db.execute("SELECT value FROM state WHERE name = 'counter'").fetchone()
    db.close()
    assert len(rows) >= last + 1  # every acknowledged add is there
    assert int(counter) >= last - last % 5
    for key, receiver, grp, state, body, added_at in rows:
        i = int(key[1:])
        n = notification_from_json(body)
        assert n == make(i)
        assert (receiver, grp, added_at) == (n.receiver, n.group, float(i))
        assert state in ("pending", "delivered")
        if i <= last:
            assert state == ("delivered" if i % 2 == 0 else "pending")
    pending = {p.key for p in Outbox(path).due(1e12, 100_000)}
    assert {f"k{i:06d}" for i in range(1, last + 1, 2)} <= pending


# -- serialisation ---------------------------------------------------------------

_CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
_text = st.one_of(st.text(max_size=12), st.text(alphabet=_CJK, max_size=12))
_time = st.floats(allow_nan=False)
_labels = st.dictionaries(_text, _text, max_size=4)
_terms = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), _time, _text,
                   st.lists(_text, max_size=3).map(tuple))
_leaf = st.builds(Fact, code=st.sampled_from(["no_answer", "battery", "fuel", "outage"]),
                  args=st.dictionaries(_text, _terms, max_size=4))
_facts = st.lists(st.one_of(_leaf, st.builds(
    Fact, code=st.just("device"),
    args=st.fixed_dictionaries({"causes": st.lists(_leaf, max_size=2).map(tuple)}))),
    max_size=3).map(tuple)
_alerts = st.builds(
    Alert,
    rule=_text,
    severity=st.sampled_from(["critical", "warning", "info"]),
    labels=_labels,
    facts=_facts,
    starts_at=_time,
    ends_at=st.one_of(st.none(), _time),
)
_sites = st.builds(
    SiteContext,
    id=_text,
    name=_text,
    town=_text,
    state=st.sampled_from(["up", "degraded", "down", "unknown"]),
    channels_up=st.lists(_text, max_size=3).map(tuple),
    channels_lost=_labels,
    readiness=st.dictionaries(_text, st.booleans(), max_size=4),
    outages=st.lists(st.sampled_from(["power", "network", "road"]), max_size=3).map(tuple),
)
_notifications = st.builds(
    Notification,
    key=_text,
    receiver=_text,
    group=_text,
    status=st.sampled_from(["firing", "resolved"]),
    alerts=st.lists(_alerts, max_size=3).map(tuple),
    folded=st.lists(_alerts, max_size=2).map(tuple),
    site=st.one_of(st.none(), _sites),
    created_at=_time,
    language=st.sampled_from(["zh", "en"]),
)


@given(_notifications)
def test_json_round_trip_is_exact(n: Notification) -> None:
    """notification_from_json(notification_to_json(n)) == n, Chinese text and all."""
    assert notification_from_json(notification_to_json(n)) == n


@settings(max_examples=60)
@given(n=_notifications)
def test_round_trip_through_the_database_is_exact(n: Notification) -> None:
    """What due() hands back equals what add() was given."""
    with tempfile.TemporaryDirectory() as tmp:
        box = Outbox(Path(tmp) / "outbox.db")
        try:
            assert box.add(n, T0)
            (p,) = box.due(T0, 10)
            assert p.notification == n
        finally:
            box.close()


def test_round_trip_of_a_resolved_chinese_notification_with_empty_facts() -> None:
    """The three corners the brief names, as one fixed example."""
    n = Notification(
        key="核-1",
        receiver="值班员",
        group="site:v05",
        status="resolved",
        alerts=(Alert("site_isolated", "critical", {"site": "v05"}, (), T0, T0 + 3600.25),),
        folded=(),
        site=SiteContext("v05", "石门村", "龙泉镇", "up"),
        created_at=T0 + 3601,
        language="zh",
    )
    assert notification_from_json(notification_to_json(n)) == n
    assert notification_to_json(n).isascii()
