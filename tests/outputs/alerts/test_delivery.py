"""The deliverer against real HTTP servers on 127.0.0.1, on injected time.

Long scenarios (a receiver down for ten minutes, a day of permanent failure)
run on a fake clock that the test moves to the deliverer's next due time, so
they take milliseconds and are deterministic (seeded jitter).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from commsmon.core.alerting import Alert, Notification
from commsmon.core.facts import Fact
from commsmon.core.handover import Told, begun, signature
from commsmon.outputs.alerts.base import DeliveryResult, Receiver
from commsmon.outputs.alerts.delivery import Deliverer
from commsmon.state.outbox import Outbox

T0 = 1_764_400_000.0


class FakeClock:
    """Epoch seconds that move only when the test says."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Hit:
    """One request the server received."""

    t: float  # the sender's (fake) clock
    key: str
    header_key: str
    group: str
    status: int


# What the server answers: (sim time, key, how many times this key came before) -> (status, headers)
Answer = Callable[[float, str, int], tuple[int, dict[str, str]]]


@dataclass
class Sink:
    """A webhook endpoint that counts what it receives and answers as told."""

    url: str = ""
    answer: Answer = lambda t, key, n: (200, {})
    hits: list[Hit] = field(default_factory=list)
    gate: asyncio.Event | None = None  # if set, hold each request until it is set
    seen: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        before = sum(1 for h in self.hits if h.key == body["key"])
        status, headers = self.answer(body["t"], body["key"], before)
        self.hits.append(
            Hit(body["t"], body["key"], request.headers["Idempotency-Key"], body["group"], status)
        )
        self.seen.set()
        if self.gate is not None:
            await self.gate.wait()
        return web.json_response({"status": status}, status=status, headers=headers)

    def accepted(self) -> list[str]:
        """Keys the server answered 2xx, in arrival order."""
        return [h.key for h in self.hits if 200 <= h.status < 300]


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    app = web.Application()
    app.router.add_post("/hook", s.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    s.url = str(server.make_url("/hook"))
    try:
        yield s
    finally:
        if s.gate is not None:
            s.gate.set()
        await server.close()


class PostReceiver(Receiver):
    """A minimal webhook receiver: POST JSON with an Idempotency-Key, judge the status."""

    def __init__(
        self,
        name: str,
        url: str,
        clock: Callable[[], float],
        *,
        max_per_minute: int = 60,
        timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.url = url
        self.clock = clock
        self.max_per_minute = max_per_minute
        self.timeout = timeout

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        body = {
            "key": notification.key,
            "group": notification.group,
            "status": notification.status,
            "t": self.clock(),
        }
        try:
            async with session.post(
                self.url,
                json=body,
                headers={"Idempotency-Key": notification.key},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as r:
                await r.read()
                if 200 <= r.status < 300:
                    return DeliveryResult(ok=True, detail=f"HTTP {r.status}")
                after = r.headers.get("Retry-After")
                return DeliveryResult(
                    ok=False,
                    detail=f"HTTP {r.status}",
                    retry_after=float(after) if after else None,
                    permanent=r.status in (400, 401, 403),
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return DeliveryResult(ok=False, detail=repr(exc))


def note(
    key: str, group: str = "site:v01", status: str = "firing", receiver: str = "duty"
) -> Notification:
    alert = Alert("site_isolated", "critical", {"site": group}, {}, T0)
    return Notification(
        key=key,
        receiver=receiver,
        group=group,
        status=status,  # type: ignore[arg-type]
        alerts=(alert,),
        created_at=T0,
    )


@pytest.fixture
async def made(tmp_path: Path) -> AsyncIterator[list[Deliverer]]:
    """Deliverers to close after the test."""
    out: list[Deliverer] = []
    yield out
    for d in out:
        await d.close()


def deliverer(
    made: list[Deliverer], box: Outbox, clock: FakeClock, *receivers: Receiver, **kw: Any
) -> Deliverer:
    d = Deliverer(box, {r.name: r for r in receivers}, clock=clock, rng=random.Random(7), **kw)
    made.append(d)
    return d


async def drive(d: Deliverer, box: Outbox, clock: FakeClock, until: float = float("inf")) -> int:
    """Move the fake clock to each next due time (up to ``until``) and run a pass there."""
    passes = 0
    while box.pending_count():
        t = await d.next_due()
        if t is None or t > until:
            break
        clock.now = max(clock.now, t)
        await d.deliver_due(clock.now)
        passes += 1
        assert passes < 10_000, "no progress"
    return passes


def counter(receiver: str, result: str) -> float:
    v = REGISTRY.get_sample_value(
        "commsmon_alert_notifications_total", {"receiver": receiver, "result": result}
    )
    return v or 0.0


def gauge(name: str) -> float:
    v = REGISTRY.get_sample_value(name)
    assert v is not None
    return v


@pytest.mark.fault
async def test_receiver_down_ten_minutes_then_each_notification_arrives_once(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """500s for 600 s then 200: all delivered once, in order, one backed-off request at a time."""
    clock = FakeClock()
    sink.answer = lambda t, key, n: (500, {}) if t < T0 + 600 else (200, {})
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("down10", sink.url, clock))
    r = "down10"
    first = [
        note("a1", "site:v01", receiver=r),
        note("b1", "site:v02", receiver=r),
        note("a2", "site:v01", "resolved", r),
        note("c1", "site:v03", receiver=r),
        note("b2", "site:v02", "resolved", r),
    ]
    later = [
        note("d1", "site:v04", receiver=r),
        note("a3", "site:v01", receiver=r),
        note("d2", "site:v04", "resolved", r),
    ]
    before = (counter("down10", "delivered"), counter("down10", "failed"))
    with capture_logs() as logs:
        for n in first:
            box.add(n, clock.now)
        await drive(d, box, clock, until=T0 + 100)
        clock.now = T0 + 100
        for n in later:
            box.add(n, clock.now)
        await drive(d, box, clock)

    keys = [n.key for n in first + later]
    assert sink.accepted() == keys  # every one, once, in creation order
    assert collections.Counter(h.header_key for h in sink.hits if h.status == 200) == dict.fromkeys(
        keys, 1
    )
    assert box.pending_count() == 0
    failed = [h for h in sink.hits if h.status == 500]
    # a dead receiver sees one request per backoff step, always the oldest notification
    assert {h.key for h in failed} == {"a1"}
    times = [h.t for h in failed] + [sink.hits[len(failed)].t]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g > 0 for g in gaps)
    for i, g in enumerate(gaps):
        assert g <= min(600.0, 5.0 * 2**i) + 1e-6, (i, gaps)
    assert max(gaps) <= 600.0 + 1e-6
    half = len(gaps) // 2
    assert sum(gaps[half:]) / (len(gaps) - half) > sum(gaps[:half]) / half  # they grow
    assert 4 <= len(failed) <= 20
    assert T0 + 600 <= sink.hits[len(failed)].t <= T0 + 1200
    assert counter("down10", "delivered") - before[0] == len(keys)
    assert counter("down10", "failed") - before[1] == len(failed)
    events = [e["event"] for e in logs if e.get("receiver") == "down10"]
    assert events.count("alert receiver failing") == 1
    assert events.count("alert receiver accepts again") == 1


async def test_retry_after_is_respected(sink: Sink, made: list[Deliverer], tmp_path: Path) -> None:
    """429 with Retry-After: 30 -> no attempt before +30 s, then delivered."""
    clock = FakeClock()
    sink.answer = lambda t, key, n: (429, {"Retry-After": "30"}) if n == 0 else (200, {})
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("r429", sink.url, clock))
    box.add(note("x", receiver="r429"), T0)
    assert await d.deliver_due(T0) == 0
    due = await d.next_due()
    assert due is not None and due >= T0 + 30
    clock.now = T0 + 29.9
    assert await d.deliver_due(clock.now) == 0
    assert len(sink.hits) == 1
    await drive(d, box, clock)
    assert [(h.status, h.t >= T0 + 30) for h in sink.hits] == [(429, False), (200, True)]


async def test_rate_limit_never_exceeded_and_nothing_dropped(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """50 notifications, max 20 a minute: at most 20 in any 60 s window, all 50 arrive in order."""
    clock = FakeClock()
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("robot", sink.url, clock, max_per_minute=20))
    keys = [f"n{i:02d}" for i in range(50)]
    for i, key in enumerate(keys):
        box.add(note(key, f"site:v{i % 14:02d}", receiver="robot"), T0)
    await drive(d, box, clock)
    assert sink.accepted() == keys
    times = [h.t for h in sink.hits]
    for t in times:
        assert sum(1 for u in times if t <= u < t + 60) <= 20
    assert times[-1] >= T0 + 120  # 50 needs three windows
    assert box.pending_count() == 0


async def test_rate_limited_items_wait_in_the_outbox(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """Over the limit, a pass leaves the rest pending and says when the next token is back."""
    clock = FakeClock()
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("robot2", sink.url, clock, max_per_minute=3))
    for i in range(5):
        box.add(note(f"n{i}", f"g{i}", receiver="robot2"), T0)
    assert await d.deliver_due(T0) == 3
    assert box.pending_count() == 2
    assert await d.next_due() == T0 + 60
    assert await d.deliver_due(T0 + 59) == 0
    assert await d.deliver_due(T0 + 60) == 2


async def test_permanent_failure_retried_slowly_then_given_up(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """401 forever: one attempt per backoff_max until give_up_after, then given up and counted."""
    clock = FakeClock()
    sink.answer = lambda t, key, n: (401, {})
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("badkey", sink.url, clock), give_up_after=3600.0)
    box.add(note("p", receiver="badkey"), T0)
    before = counter("badkey", "given_up")
    with capture_logs() as logs:
        await drive(d, box, clock)
    assert [h.t - T0 for h in sink.hits] == [0, 600, 1200, 1800, 2400, 3000, 3600]
    assert box.status("p", "badkey") == "given_up"
    assert counter("badkey", "given_up") - before == 1
    gave_up = [e for e in logs if e["event"] == "alert notification given up"]
    assert len(gave_up) == 1 and gave_up[0]["log_level"] == "error"
    assert gave_up[0]["attempts"] == 7 and gave_up[0]["detail"] == "HTTP 401"
    rejects = [e for e in logs if e["event"] == "alert receiver rejects notifications"]
    assert len(rejects) == 1


async def test_unknown_receiver_is_given_up_and_others_still_go(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """A notification for a receiver no longer configured is given up loudly; no crash."""
    clock = FakeClock()
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("duty", sink.url, clock))
    box.add(note("lost", receiver="removed"), T0)
    box.add(note("ok", receiver="duty"), T0)
    before = counter("removed", "given_up")
    with capture_logs() as logs:
        assert await d.deliver_due(T0) == 1
    assert box.status("lost", "removed") == "given_up"
    assert box.status("ok", "duty") == "delivered"
    assert counter("removed", "given_up") - before == 1
    (line,) = [e for e in logs if e["event"] == "alert notification given up"]
    assert "not configured" in line["detail"] and line["receiver"] == "removed"
    assert await d.next_due() is None


async def test_permanent_failure_holds_back_only_its_group(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """A rejected firing message blocks its own resolution, not the other villages."""
    clock = FakeClock()
    sink.answer = lambda t, key, n: (400, {}) if key == "v1-fire" and n == 0 else (200, {})
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("duty", sink.url, clock))
    box.add(note("v1-fire", "site:v01"), T0)
    box.add(note("v2-fire", "site:v02"), T0)
    box.add(note("v1-ok", "site:v01", "resolved"), T0 + 1)
    assert await d.deliver_due(T0 + 1) == 1
    assert sink.accepted() == ["v2-fire"]
    assert await d.next_due() == T0 + 1 + 600
    await drive(d, box, clock)
    assert sink.accepted() == ["v2-fire", "v1-fire", "v1-ok"]


async def test_crash_between_send_and_mark_resends_with_the_same_key(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """Killed while the answer is in flight: after restart the same key goes again; nothing lost."""
    clock = FakeClock()
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    d = deliverer(made, box, clock, PostReceiver("duty", sink.url, clock, timeout=30))
    box.add(note("sent-not-marked", "site:v01"), T0)
    box.add(note("done", "site:v02"), T0)
    box.delivered("done", "duty", T0)
    sink.gate = asyncio.Event()
    task = asyncio.create_task(d.deliver_due(T0))
    await asyncio.wait_for(sink.seen.wait(), 10)
    task.cancel()  # the process dies with the request answered but not marked
    with pytest.raises(asyncio.CancelledError):
        await task
    sink.gate.set()
    sink.gate = None

    box2 = Outbox(path)  # the restarted daemon; the old object is abandoned
    d2 = deliverer(made, box2, clock, PostReceiver("duty", sink.url, clock))
    assert await d2.deliver_due(T0 + 1) == 1
    assert [h.header_key for h in sink.hits] == ["sent-not-marked", "sent-not-marked"]
    assert box2.status("sent-not-marked", "duty") == "delivered"
    assert await d2.deliver_due(T0 + 2) == 0  # the delivered one is never sent again
    assert len(sink.hits) == 2


class Hang(Receiver):
    """A receiver that ignores its own timeout."""

    name = "hang"
    timeout = 0.2

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        await asyncio.sleep(3600)
        return DeliveryResult(ok=True)


class Boom(Receiver):
    """A receiver with a bug: it raises."""

    name = "boom"

    async def send(
        self, notification: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        raise RuntimeError("bug")


async def test_a_hanging_receiver_is_cut_off_and_does_not_hold_the_others(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """send() bounded by timeout + 1 s; the other receiver's notification goes meanwhile."""
    clock = FakeClock()
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, Hang(), PostReceiver("duty", sink.url, clock))
    box.add(note("h", receiver="hang"), T0)
    box.add(note("d", receiver="duty"), T0)
    started = time.monotonic()
    assert await asyncio.wait_for(d.deliver_due(T0), 10) == 1
    assert time.monotonic() - started < 5
    (p,) = box.due(T0 + 10_000, 10)
    assert (p.key, p.attempts, p.detail) == ("h", 1, "no answer within 1.2 s")
    assert sink.accepted() == ["d"]


async def test_a_receiver_that_raises_is_a_failed_attempt(
    made: list[Deliverer], tmp_path: Path
) -> None:
    """A receiver's bug is logged once and retried, never crashes the pass."""
    clock = FakeClock()
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, Boom())
    box.add(note("b", receiver="boom"), T0)
    with capture_logs() as logs:
        await d.deliver_due(T0)
        await drive(d, box, clock, until=T0 + 100)
    (p,) = box.due(T0 + 10_000, 10)
    assert p.attempts >= 2 and p.detail == "RuntimeError: bug"
    assert [e["event"] for e in logs].count("alert receiver raised") == 1


async def test_gauges_follow_the_outbox(sink: Sink, made: list[Deliverer], tmp_path: Path) -> None:
    """Pending count and oldest age after each pass; 0 and 0 once empty."""
    clock = FakeClock()
    sink.answer = lambda t, key, n: (503, {}) if t < T0 + 60 else (200, {})
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("duty", sink.url, clock))
    box.add(note("g1", "a"), T0)
    box.add(note("g2", "b"), T0 + 5)
    clock.now = T0 + 10
    await d.deliver_due(clock.now)
    assert gauge("commsmon_outbox_pending") == 2
    assert gauge("commsmon_outbox_oldest_age_seconds") == 10
    await drive(d, box, clock)
    assert gauge("commsmon_outbox_pending") == 0
    assert gauge("commsmon_outbox_oldest_age_seconds") == 0


async def test_run_wakes_promptly_on_wake(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """run() sleeping with nothing to do delivers a new notification as soon as wake() is called."""
    clock = FakeClock()
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("duty", sink.url, clock))
    task = asyncio.create_task(d.run())
    try:
        await asyncio.sleep(0.3)  # first pass done: idle, asleep for up to 30 s
        assert not sink.hits
        box.add(note("now"), clock.now)
        started = time.monotonic()
        d.wake()
        await asyncio.wait_for(sink.seen.wait(), 5)
        assert time.monotonic() - started < 5
        for _ in range(100):
            if box.status("now", "duty") == "delivered":
                break
            await asyncio.sleep(0.02)
        assert box.status("now", "duty") == "delivered"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_run_survives_a_failing_pass_and_logs_it_once(
    made: list[Deliverer], tmp_path: Path
) -> None:
    """An outbox that cannot be read is logged once; run() keeps trying instead of dying."""
    clock = FakeClock()
    box = Outbox(tmp_path / "outbox.db")
    box.close()  # every call now raises sqlite3.ProgrammingError
    d = deliverer(made, box, clock, Boom(), backoff_base=0.05)
    with capture_logs() as logs:
        task = asyncio.create_task(d.run())
        await asyncio.sleep(1.5)  # room for two or more passes at the 1 s idle floor
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [e["event"] for e in logs].count("alert delivery pass failed") == 1


async def test_notifications_stuck_past_give_up_age_are_given_up_without_a_request(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """Down longer than give_up_after: the head gets its last try, the rest are dropped unsent."""
    clock = FakeClock()
    sink.answer = lambda t, key, n: (500, {})
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("dead", sink.url, clock), give_up_after=1000.0)
    for key, group in (("a", "g1"), ("b", "g2"), ("c", "g3")):
        box.add(note(key, group, receiver="dead"), T0)
    before = counter("dead", "given_up")
    with capture_logs() as logs:
        await drive(d, box, clock)
    assert {h.key for h in sink.hits} == {"a"}
    assert sink.hits[-1].t == T0 + 1000
    assert [box.status(k, "dead") for k in "abc"] == ["given_up"] * 3
    assert counter("dead", "given_up") - before == 3
    details = [e["detail"] for e in logs if e["event"] == "alert notification given up"]
    never = "not sent within 1000 s (never attempted)"
    assert details == ["HTTP 500", never, never]


async def test_clock_stepping_back_moves_the_backoff_with_it(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """A receiver backing off when the wall clock steps back an hour is tried again one
    backoff later on the new clock, not an hour later."""
    clock = FakeClock()
    sink.answer = lambda t, key, n: (500, {}) if n == 0 else (200, {})
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("stepped", sink.url, clock))
    box.add(note("s1", "site:v01", receiver="stepped"), clock.now)
    await d.deliver_due(clock.now)  # fails: backs off a few seconds
    retry_at = await d.next_due()
    assert retry_at is not None and T0 < retry_at < T0 + 60
    clock.now = T0 - 3600
    await d.deliver_due(clock.now)  # the pass after the step moves the schedule
    retry_at = await d.next_due()
    assert retry_at is not None and clock.now < retry_at < clock.now + 60
    await drive(d, box, clock)
    assert sink.accepted() == ["s1"] and box.pending_count() == 0


async def test_repeats_over_the_budget_go_as_one_digest(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    """A robot with 3 requests a minute and 5 groups' repeats plus one piece of news due:
    the news goes on its own, the 5 repeats as one digest; all 6 are delivered, with 2
    requests, and the third token is left."""
    from dataclasses import replace

    clock = FakeClock()
    box = Outbox(tmp_path / "outbox.db")
    d = deliverer(made, box, clock, PostReceiver("small", sink.url, clock, max_per_minute=3))
    repeats = [replace(note(f"r{i}", f"site:v0{i}", receiver="small"), kind="repeat")
               for i in range(1, 6)]
    news = note("n1", "site:v09", receiver="small")
    for n in [*repeats, news]:
        box.add(n, clock.now)
    await d.deliver_due(clock.now)
    assert sink.accepted() == ["digest/r1", "n1"]
    assert box.pending_count() == 0
    assert all(box.status(n.key, "small") == "delivered" for n in [*repeats, news])


@dataclass
class FakePair:
    """This replica's part in an HA pair, as the deliverer sees it (a fake beside the
    Handover interface; tests/integration/test_ha.py runs the real one on etcd)."""

    role: str = "standby"
    records: dict[tuple[str, str], Told] = field(default_factory=dict)
    told_here: list[tuple[str, str, Told]] = field(default_factory=list)

    def sends_all(self) -> bool:
        return self.role != "standby"

    async def told(self) -> dict[tuple[str, str], Told]:
        return dict(self.records)

    async def tell(self, receiver: str, group: str, told: Told) -> None:
        self.told_here.append((receiver, group, told))


async def test_a_standby_holds_drops_what_the_leader_told_and_sends_the_rest(
    sink: Sink, made: list[Deliverer], tmp_path: Path
) -> None:
    clock = FakeClock()
    box = Outbox(tmp_path / "outbox.db")
    pair = FakePair()
    duty = PostReceiver("duty", sink.url, clock)
    backup = PostReceiver("backup", sink.url, clock)
    d = deliverer(made, box, clock, duty, backup, handover=pair)
    v01, v02 = note("standby/duty/site:v01/0"), note("standby/duty/site:v02/0", group="site:v02")
    step = replace(note("standby/duty/site:v03/0", group="site:v03"), kind="escalation",
                   escalation=Fact("escalation", {"step": 1, "role": "duty", "restarts": 0}),
                   fallbacks=("backup",))
    for n in (v01, v02, step):
        box.add(n, T0)
    before = counter("duty", "told_by_peer")

    await d.deliver_due(T0)  # standby: nothing goes out, the step stays with its receiver
    assert sink.hits == []
    assert box.status(step.key, "duty") == "pending" and box.status(step.key, "backup") is None

    # The leader told v01 (its own notification, its own key): dropped here.
    pair.records[("duty", "site:v01")] = Told(signature(v01), begun(v01), T0 + 2)
    await d.deliver_due(T0 + 1)
    assert box.status(v01.key, "duty") == "delivered"
    assert counter("duty", "told_by_peer") == before + 1
    assert sink.hits == []

    # The leader dies: this replica leads and sends exactly what was not told, and
    # records it for the next standby.
    pair.role = "leader"
    await d.deliver_due(T0 + 10)
    assert sorted(sink.accepted()) == sorted([v02.key, step.key])
    assert {(r, g) for r, g, _ in pair.told_here} == {("duty", "site:v02"), ("duty", "site:v03")}
