"""Delivering the outbox: retries with backoff, per-receiver rate limits and order.

The :class:`Deliverer` takes due notifications from the :class:`Outbox` and
hands each to its receiver, one request in flight per receiver, receivers side
by side.  It owns the aiohttp session, the retry schedule and the rate limits;
receivers make one attempt each and judge the answer.

Semantics:

- **At least once, with a stable key.**  A notification is written before any
  attempt and marked only after its receiver accepted it; after a crash
  between the two it is sent again with the same idempotency key.
- **Order.**  A receiver gets its notifications in creation order; a failed
  one holds back the later ones of its group (a resolution never overtakes
  its firing message).  A receiver that fails (answers an error, times out) is
  left alone until the failed notification's next attempt, so a dead receiver
  sees one request per backoff step, not one per notification.  A *permanent*
  failure (the receiver rejected this request) holds back only its own group.
- **Backoff.**  After the n-th failure in a row the next attempt is a random
  time (full jitter) within ``min(backoff_max, backoff_base * 2**(n-1))``
  seconds, never sooner than the receiver's ``retry_after``; after a
  permanent failure it is ``backoff_max``.
- **Give up.**  The last attempt falls at ``give_up_after`` seconds after the
  notification was added; if that fails too it is given up: logged as an
  error, counted, kept in the outbox as ``given_up``.  One that its turn
  reaches only after that age (it waited behind a failing receiver) is given
  up without an attempt: a day-old page would cry wolf.
- **Rate.**  No 60 s window (half-open) holds more than the receiver's
  ``max_per_minute`` requests (nor 1 s window its ``max_per_second``): a token
  is spent per request and comes back one window later.  Notifications over
  the limit stay pending and go when a token is back; none is dropped;
  ``commsmon_receiver_throttled{receiver}`` is 1 meanwhile.
- **Priority.**  Within a receiver's share of a pass, groups whose next
  notification is an escalation step or a resolution go first, then news,
  then repeats (an unchanged group told again); a group's own notifications
  keep their order.  When more are due than the receiver's budget lets go now,
  the due repeats go as one **digest** (their titles in one message); each is
  marked delivered with it.
- **Escalation steps re-check and fall through.**  Just before an escalation
  step is attempted, ``withdrawn`` is asked whether it is still due (the group
  still firing, unacknowledged, the same episode); if not it is withdrawn
  (kept as ``given_up`` with the reason, counted ``withdrawn``).  A step whose
  receiver is throttled, failing or rejecting is handed on to the step's next
  receiver (``fallbacks``) instead of waiting (counted ``handed_on``).
- **Ack links.**  ``decorate`` gives each attempt its notification with a
  fresh single-use ack link (:mod:`commsmon.outputs.alerts.links`).
- A notification for a receiver that is no longer configured is given up
  with an error line, not retried.
- **Rejecting receivers.**  A receiver whose answer refuses our messages or
  credentials (a result with a :class:`~commsmon.outputs.alerts.base.Rejection`:
  a robot's keyword, signature or IP allow-list check, HTTP 401/403) is
  *rejecting* until it accepts a notification again: ``on_fault`` is called
  with ``receiver:<name>`` and a ``receiver_rejecting`` fact (the fleet makes
  it a ``monitor_fault`` alert, which the other receivers carry) and
  ``commsmon_receiver_rejecting{receiver}`` is 1; then with ``None``, and 0.
  Failures (timeouts, 5xx) leave the state as it was.  The state is saved in
  the outbox, so a restart or a reload neither forgets nor falsely resolves it.

Metrics (module-level): ``commsmon_alert_notifications_total{receiver,result}``
(every receiver's results start at 0, so ``increase()`` sees the first),
``commsmon_outbox_pending``, ``commsmon_outbox_oldest_age_seconds``, and
``commsmon_receiver_rejecting{receiver}`` (:mod:`commsmon.selfmetrics`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Protocol

import aiohttp
import structlog

from commsmon.core.alerting import Notification
from commsmon.core.facts import Fact
from commsmon.core.handover import Told, begun, signature, told_count
from commsmon.log import LogOnce
from commsmon.outputs.alerts.base import DeliveryResult, Receiver, Rejection
from commsmon.outputs.alerts.messages import title
from commsmon.selfmetrics import (
    NOTIFICATIONS,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PENDING,
    RECEIVER_REJECTING,
    RECEIVER_THROTTLED,
)
from commsmon.state.outbox import Outbox, Pending

__all__ = [
    "Deliverer",
    "FaultCallback",
    "Handover",
    "fault_name",
]

log = structlog.get_logger("commsmon.alerts")

_WINDOW = 60.0  # seconds: the window of max_per_minute
_MAX_SLEEP = 30.0  # seconds: run() looks again at least this often (clock steps)
_IDLE_SLEEP = 1.0  # seconds: the least run() waits after a pass that could do nothing
_BATCH = 500  # notifications taken per pass
_PER_RECEIVER = 100  # ... of which for any one receiver
_PRUNE_EVERY = 3600.0  # seconds between prunes of finished rows
_RESULTS = ("delivered", "failed", "given_up", "withdrawn", "handed_on", "told_by_peer")
_PRIORITY = {"escalation": 0, "news": 1, "repeat": 2}  # resolutions rank with escalations
_REJECTING_STATE = "rejecting"  # the outbox state holding which receivers reject us

FaultCallback = Callable[[str, Fact | None], None]
"""``(name, fact)``: a fault of the monitor is there (a fact) or gone (``None``);
``Fleet.set_fault`` in the daemon."""


class Handover(Protocol):
    """This replica's part in an HA pair, as delivery sees it (:class:`commsmon.ha.Replica`)."""

    @property
    def role(self) -> str:
        """``single``, ``leader``, ``standby`` or ``alone``."""

    def sends_all(self) -> bool:
        """Whether to send to receivers that are not ``shared``."""

    async def told(self) -> dict[tuple[str, str], Told]:
        """What the leader recorded as told, by (receiver, group)."""

    async def tell(self, receiver: str, group: str, told: Told) -> None:
        """Record, leading, what was told."""


def fault_name(receiver: str) -> str:
    """The fault (and ``monitor_fault`` alert ``fault`` label) of a rejecting receiver."""
    return f"receiver:{receiver}"


def _no_fault(name: str, fact: Fact | None) -> None:
    pass


class _RateWindow:
    """A token bucket whose tokens come back one window after use.

    Keeps the times of the last ``limit`` requests: a request may go when
    fewer than ``limit`` were made, or the oldest of them is a window old.
    (A bucket refilling at a steady rate would let up to twice the limit
    through in one window.)
    """

    def __init__(self, limit: int, window: float = _WINDOW,
                 per_second: int | None = None) -> None:
        self._sent: collections.deque[float] = collections.deque(maxlen=max(1, limit))
        self._window = window
        self._second = None if per_second is None else _RateWindow(per_second, 1.0)

    def free_at(self, now: float) -> float:
        """Epoch seconds the next request may go (``-inf``: now)."""
        if self._sent and self._sent[-1] > now + 1.0:
            self._sent.clear()  # the clock stepped back: forget the future
        second = -math.inf if self._second is None else self._second.free_at(now)
        if len(self._sent) < (self._sent.maxlen or 1):
            return second
        return max(self._sent[0] + self._window, second)

    def tokens(self, now: float) -> int:
        """How many requests may go at ``now`` (the per-second limit aside)."""
        limit = self._sent.maxlen or 1
        return limit - sum(1 for t in self._sent if t > now - self._window)

    def take(self, now: float) -> None:
        """Spend a token at ``now``."""
        self._sent.append(now)
        if self._second is not None:
            self._second.take(now)


class Deliverer:
    """Sends the outbox's due notifications to their receivers.

    Args:
        outbox: where notifications wait; called through ``asyncio.to_thread``.
        receivers: receiver name (``Notification.receiver``) -> receiver.
        clock: epoch seconds now (``time.time`` in the daemon).
        give_up_after: seconds after a notification was added after which a
            failed attempt is its last; default 86400 (a day).
        backoff_base: seconds, the first retry's jitter range; default 5.
        backoff_max: seconds, the cap of the backoff, and the wait after a
            permanent failure; default 600.
        rng: jitter source; a fresh ``random.Random()`` if ``None``.
        keep_done: seconds delivered and given-up rows are kept (idempotency
            of re-added keys, inspection); default 30 days.
        on_fault: told when a receiver starts or stops rejecting us (see the
            module docstring); called on the event loop.
        withdrawn: why an escalation step must not go out now (``None``: it must);
            asked just before each attempt.
        decorate: the notification as an attempt sends it (with its ack link);
            called in a worker thread.
        handover: this replica's part in an HA pair (:class:`commsmon.ha.Replica`):
            as standby, receivers that are not ``shared`` are held and what the
            leader told them is dropped; leading, each delivery to them is recorded.
    """

    def __init__(
        self,
        outbox: Outbox,
        receivers: Mapping[str, Receiver],
        *,
        clock: Callable[[], float],
        give_up_after: float = 86400.0,
        backoff_base: float = 5.0,
        backoff_max: float = 600.0,
        rng: random.Random | None = None,
        keep_done: float = 30 * 86400.0,
        on_fault: FaultCallback | None = None,
        withdrawn: Callable[[Notification], str | None] | None = None,
        decorate: Callable[[Notification], Notification] | None = None,
        handover: Handover | None = None,
    ) -> None:
        self._handover = handover
        self._settled = False  # leading, and what the leader told is dropped
        self._withdrawn = withdrawn or (lambda note: None)
        self._decorate = decorate or (lambda note: note)
        self._outbox = outbox
        self._receivers = dict(receivers)
        self._clock = clock
        self._give_up_after = give_up_after
        self._base = backoff_base
        self._max = backoff_max
        self._rng = rng if rng is not None else random.Random()
        self._keep_done = keep_done
        self._windows = {name: _RateWindow(r.max_per_minute, per_second=r.max_per_second)
                         for name, r in receivers.items()}
        self._hold: dict[str, float] = {}  # receiver -> no request before (after a failure)
        self._streak: dict[str, int] = {}  # receiver -> failures in a row
        self._once = LogOnce()
        self._wake = asyncio.Event()
        self._pass = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._last_prune = -math.inf
        self._last_actions = 0
        self._last_pass = -math.inf  # the clock at the last pass, to see it step back
        self._on_fault = on_fault or _no_fault
        self._rejecting: dict[str, Rejection] = {}  # receiver -> how it rejects us
        self._forget: set[str] = set()  # rejecting under a previous configuration
        self._published = False  # gauges and faults told since restore()
        self._rejecting_dirty = False  # to be saved in the outbox
        for name in self._receivers:
            for result in _RESULTS:
                NOTIFICATIONS.labels(receiver=name, result=result)

    def restore(self) -> None:
        """Bring back which receivers were rejecting us (blocking: reads the outbox).

        They are told to ``on_fault`` and the gauge at the first pass, on the
        event loop; receivers no longer configured have their fault cleared.
        """
        saved = json.loads(self._outbox.get_state(_REJECTING_STATE) or "{}")
        for name, item in saved.items():
            if name in self._receivers:
                self._rejecting[name] = Rejection(str(item["code"]), str(item["detail"]))
            else:
                self._forget.add(name)
                self._rejecting_dirty = True

    @property
    def rejecting(self) -> dict[str, Rejection]:
        """Receiver name -> how it rejects us, for the receivers rejecting now."""
        return dict(self._rejecting)

    # -- public ---------------------------------------------------------------

    def wake(self) -> None:
        """Cut ``run()``'s sleep short: a notification was added (call on the event loop)."""
        self._wake.set()

    async def deliver_due(self, now: float) -> int:
        """One pass: attempt every due notification that its receiver's rate and state allow.

        Receivers are served side by side, each one request at a time in
        order; results are recorded in the outbox as they come.

        Args:
            now: epoch seconds, the pass's time.

        Returns:
            how many notifications were delivered.

        Raises:
            sqlite3.Error: the outbox could not be read or written.
        """
        async with self._pass:
            self._publish_all()
            await self._rewind_if_stepped_back(now)
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession()
            exclude = [name for name in self._receivers if self._not_before(name, now) > now]
            held = await self._hold_for_leader(now)
            for name, window in self._windows.items():
                RECEIVER_THROTTLED.labels(receiver=name).set(int(window.free_at(now) > now))
            # Held for the leader is not failing: a step stays with its receiver, where
            # the leader's record of it can match.
            for name in sorted({*exclude, *self._rejecting} - set(held)):
                await self._hand_on(name, now)
            items = await asyncio.to_thread(
                self._outbox.due, now, _BATCH, per_receiver=_PER_RECEIVER,
                exclude=[*exclude, *held]
            )
            queues: dict[str, list[Pending]] = {}
            for p in items:
                queues.setdefault(p.receiver, []).append(p)
            try:
                async with asyncio.TaskGroup() as tg:
                    tasks = [
                        tg.create_task(self._drain(name, queue, now, self._session))
                        for name, queue in queues.items()
                    ]
            except ExceptionGroup as group:  # the outbox failed under one receiver's share
                raise group.exceptions[0] from group
            outcomes = [t.result() for t in tasks]
            self._last_actions = sum(acted for _, acted in outcomes)
            await self._save_rejecting()
            await self._housekeep(max(now, self._clock()))
            return sum(done for done, _ in outcomes)

    async def next_due(self) -> float | None:
        """Epoch seconds a pass could next send something (may be past); ``None`` if idle.

        Counts the outbox's schedule, receivers left alone after a failure,
        and rate limits.
        """
        heads = await asyncio.to_thread(self._outbox.next_due_by_receiver)
        now = self._clock()
        times = [max(t, self._not_before(name, now)) for name, t in heads.items()]
        return min(times, default=None)

    async def run(self) -> None:
        """Deliver forever: a pass, then sleep until the next due time or :meth:`wake`.

        A pass that fails (the outbox cannot be read) is logged once and tried
        again after ``backoff_base`` seconds.  Cancel the task to stop; then
        :meth:`close`.
        """
        while True:
            self._wake.clear()
            try:
                await self.deliver_due(self._clock())
                wake_at = await self.next_due()
                if self._once.clear(("deliverer", "pass")):
                    log.info("alert delivery works again")
            except Exception as exc:
                if self._once.first(("deliverer", "pass"), repr(exc)):
                    log.error("alert delivery pass failed", exc_info=True)
                wake_at = self._clock() + self._base
                self._last_actions = 0
            delay = _MAX_SLEEP if wake_at is None else wake_at - self._clock()
            if self._last_actions == 0:
                delay = max(delay, _IDLE_SLEEP)  # nothing could be done: do not spin
            delay = min(delay, _MAX_SLEEP)
            if delay > 0:
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def _rewind_if_stepped_back(self, now: float) -> None:
        """If the wall clock stepped back, move every retry time and hold back by the
        step, so a backoff of 30 s does not become an hour and 30 s."""
        step = self._last_pass - now
        self._last_pass = now
        if step > 1.0:
            log.warning("clock stepped back; delivery times moved with it", seconds=step)
            await asyncio.to_thread(self._outbox.rewind, step)
            self._hold = {name: t - step for name, t in self._hold.items()}

    async def close(self) -> None:
        """Close the HTTP session (the outbox is the caller's to close)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- one receiver's share of a pass -----------------------------------------

    def _not_before(self, name: str, now: float) -> float:
        window = self._windows.get(name)
        if window is None:
            return -math.inf  # unknown receiver: due at once, to be given up
        return max(self._hold.get(name, -math.inf), window.free_at(now))

    async def _drain(
        self, name: str, queue: list[Pending], now: float, session: aiohttp.ClientSession
    ) -> tuple[int, int]:
        """Attempt one receiver's due notifications in order; (delivered, actions)."""
        receiver = self._receivers.get(name)
        if receiver is None:
            for p in queue:
                await self._give_up(p, now, f"receiver {name!r} is not configured", False)
            return 0, len(queue)
        window = self._windows[name]
        stalled: set[str] = set()  # groups with a failure in this pass
        delivered = acted = 0
        repeats = [p for p in queue if p.notification.kind == "repeat"]
        t0 = max(now, self._clock())
        if len(repeats) >= 2 and len(queue) > window.tokens(t0) and window.free_at(t0) <= t0:
            queue = [p for p in queue if p.notification.kind != "repeat"]
            window.take(t0)
            acted += 1
            delivered += await self._digest(receiver, repeats, t0, session)
        for p in _by_priority(queue):
            if p.group in stalled:
                continue
            reason = self._withdrawn(p.notification)
            if reason is not None:
                await self._withdraw(p, max(now, self._clock()), reason)
                acted += 1
                continue
            t = max(now, self._clock())
            deadline = p.added_at + self._give_up_after
            if t >= deadline and p.next_at < deadline:
                # held up past its give-up age behind a failing or busy receiver
                last = p.detail or "never attempted"
                await self._give_up(
                    p, t, f"not sent within {self._give_up_after:g} s ({last})", False
                )
                acted += 1
                continue
            if window.free_at(t) > t:
                RECEIVER_THROTTLED.labels(receiver=name).set(1)
                await self._hand_on(name, t, "throttled")
                break  # out of tokens: the rest stay pending
            window.take(t)
            acted += 1
            note = await asyncio.to_thread(self._decorate, p.notification)
            result = await self._attempt(receiver, note, session)
            t = max(now, self._clock())
            if result.ok:
                await asyncio.to_thread(self._outbox.delivered, p.key, name, t)
                NOTIFICATIONS.labels(receiver=name, result="delivered").inc()
                await self._tell(receiver, p.notification)
                delivered += 1
                self._streak.pop(name, None)
                self._hold.pop(name, None)
                self._set_rejecting(name, None)
                if self._once.clear(name):
                    log.info("alert receiver accepts again", receiver=name, key=p.key)
                continue
            if result.rejection is not None:
                self._set_rejecting(name, result.rejection)
            stalled.add(p.group)
            await self._failed(name, p, result, t)
            if p.notification.fallbacks:
                await self._hand_on(name, t, "failing")  # a step must not wait for it
            if not result.permanent:
                break  # the receiver is in trouble: leave it alone until its hold ends
        return delivered, acted

    # -- an HA pair ---------------------------------------------------------------

    async def _hold_for_leader(self, now: float) -> list[str]:
        """The receivers this replica must not send to now (standby: those not
        ``shared``); first drops what the leader has told them — as standby, and once
        on taking over, before anything is sent."""
        handover = self._handover
        if handover is None or handover.role == "single":
            return []
        held = sorted(name for name, r in self._receivers.items() if not r.shared)
        leading = handover.sends_all()
        if held and not (leading and self._settled):
            told = await handover.told()
            if told:
                await self._drop_told(held, told, now)
        self._settled = leading
        return [] if leading else held

    async def _drop_told(self, held: list[str], told: Mapping[tuple[str, str], Told],
                         now: float) -> None:
        pending = await asyncio.to_thread(self._outbox.pending_for, held)
        queues: dict[tuple[str, str], list[Pending]] = {}
        for p in pending:
            queues.setdefault((p.receiver, p.group), []).append(p)
        for key, queue in queues.items():
            count = told_count([p.notification for p in queue], told.get(key))
            for p in queue[:count]:
                await asyncio.to_thread(self._outbox.delivered, p.key, p.receiver, now,
                                        "told by the peer replica")
                NOTIFICATIONS.labels(receiver=p.receiver, result="told_by_peer").inc()
            if count:
                log.info("the leader told these; dropped", receiver=key[0], group=key[1],
                         notifications=count, kept=len(queue) - count)

    async def _tell(self, receiver: Receiver, note: Notification) -> None:
        if self._handover is not None and not receiver.shared:
            await self._handover.tell(receiver.name, note.group,
                                      Told(signature(note), begun(note), note.created_at))

    # -- rejecting receivers ------------------------------------------------------

    def _publish_all(self) -> None:
        """Once per restore: the gauge for every receiver, and the faults restored."""
        if self._published:
            return
        self._published = True
        RECEIVER_REJECTING.clear()  # receivers of a previous configuration go
        for name in self._forget:
            self._on_fault(fault_name(name), None)
        self._forget.clear()
        for name in self._receivers:
            self._publish(name)

    def _publish(self, name: str) -> None:
        rejection = self._rejecting.get(name)
        RECEIVER_REJECTING.labels(receiver=name).set(0 if rejection is None else 1)
        fact = None if rejection is None else Fact("receiver_rejecting", {
            "receiver": name, "code": rejection.code, "detail": rejection.detail})
        self._on_fault(fault_name(name), fact)

    def _set_rejecting(self, name: str, rejection: Rejection | None) -> None:
        """Record whether ``name`` rejects us; tell the gauge and ``on_fault`` on a change."""
        current = self._rejecting.get(name)
        if (current.code if current else None) == (rejection.code if rejection else None):
            return  # the same code with another message is the same news
        if rejection is None:
            del self._rejecting[name]
        else:
            self._rejecting[name] = rejection
        self._rejecting_dirty = True
        self._publish(name)

    async def _save_rejecting(self) -> None:
        if not self._rejecting_dirty:
            return
        self._rejecting_dirty = False
        text = json.dumps(
            {name: {"code": r.code, "detail": r.detail} for name, r in self._rejecting.items()},
            ensure_ascii=False,
        )
        try:
            await asyncio.to_thread(self._outbox.put_state, _REJECTING_STATE, text)
        except BaseException:
            self._rejecting_dirty = True  # saved at the next pass
            raise

    async def _attempt(
        self, receiver: Receiver, note: Notification, session: aiohttp.ClientSession
    ) -> DeliveryResult:
        """One send, bounded by the receiver's timeout (+1 s backstop), never raising."""
        limit = receiver.timeout + 1.0
        try:
            async with asyncio.timeout(limit):
                return await receiver.send(note, session)
        except TimeoutError:
            return DeliveryResult(ok=False, detail=f"no answer within {limit:g} s")
        except Exception as exc:  # a receiver's bug must not stop the others
            if self._once.first((note.receiver, "raised"), type(exc)):
                log.error("alert receiver raised", receiver=note.receiver, exc_info=True)
            return DeliveryResult(ok=False, detail=f"{type(exc).__name__}: {exc}")

    async def _digest(self, receiver: Receiver, repeats: list[Pending], t: float,
                      session: aiohttp.ClientSession) -> int:
        """Send ``repeats`` as one message; on success each is marked delivered (how
        many), on failure they stay pending as they were."""
        first = repeats[0].notification
        alerts = tuple(a for p in repeats for a in p.notification.alerts)
        digest = replace(first, key=f"digest/{first.key}", group="digest", kind="digest",
                         alerts=alerts, folded=(), site=None, escalation=Fact("digest", {
                             "titles": tuple(title(p.notification) for p in repeats)}))
        result = await self._attempt(receiver, digest, session)
        name = first.receiver
        if not result.ok:
            NOTIFICATIONS.labels(receiver=name, result="failed").inc()
            log.warning("alert digest not delivered; its repeats wait", receiver=name,
                        detail=result.detail, repeats=len(repeats))
            return 0
        for p in repeats:
            await asyncio.to_thread(self._outbox.delivered, p.key, name, t)
            NOTIFICATIONS.labels(receiver=name, result="delivered").inc()
            await self._tell(receiver, p.notification)
        log.info("repeats sent as one digest", receiver=name, repeats=len(repeats))
        return len(repeats)

    async def _withdraw(self, p: Pending, t: float, reason: str) -> None:
        """An escalation step no longer due: kept as given up, with the reason."""
        await asyncio.to_thread(self._outbox.given_up, p.key, p.receiver, t,
                                f"withdrawn: {reason}", False)
        NOTIFICATIONS.labels(receiver=p.receiver, result="withdrawn").inc()
        log.info("escalation step withdrawn before sending", receiver=p.receiver, key=p.key,
                 group=p.group, reason=reason)

    async def _hand_on(self, name: str, t: float, why: str = "") -> None:
        """Pass ``name``'s pending escalation steps to their next receivers: it is
        throttled, failing or rejecting, and a step must not wait for it."""
        why = why or ("rejecting" if name in self._rejecting else
                      "failing" if self._hold.get(name, -math.inf) > t else "throttled")
        for p in await asyncio.to_thread(self._outbox.escalations_pending, name):
            if self._withdrawn(p.notification) is not None:
                continue  # withdrawn at its turn, where it is
            successor = await asyncio.to_thread(self._outbox.hand_on, p, t, why)
            NOTIFICATIONS.labels(receiver=name, result="handed_on").inc()
            log.warning("escalation step handed on", receiver=name, to=successor, why=why,
                        key=p.key, group=p.group)
            self.wake()

    async def _failed(self, name: str, p: Pending, result: DeliveryResult, t: float) -> None:
        """Record a failed attempt: schedule the next one, or give up."""
        NOTIFICATIONS.labels(receiver=name, result="failed").inc()
        attempts = p.attempts + 1
        if result.permanent:
            delay = self._max
        else:
            streak = self._streak[name] = self._streak.get(name, 0) + 1
            n = min(max(attempts, streak), 64)
            delay = self._rng.uniform(0.0, min(self._max, self._base * 2.0 ** (n - 1)))
        retry_after = result.retry_after
        if retry_after is not None and retry_after > 0:
            delay = max(delay, retry_after)
        else:
            retry_after = 0.0
        deadline = p.added_at + self._give_up_after
        next_at = max(min(t + delay, deadline), t + retry_after)
        if not result.permanent:
            self._hold[name] = next_at if t < deadline else t + delay
        if self._once.first(name, "permanent" if result.permanent else "failing"):
            line = log.error if result.permanent else log.warning
            line(
                "alert receiver rejects notifications"
                if result.permanent
                else "alert receiver failing",
                receiver=name,
                detail=result.detail,
                key=p.key,
                retry_in_seconds=round(next_at - t, 1),
            )
        if t >= deadline:
            await self._give_up(p, t, result.detail, True)
        else:
            await asyncio.to_thread(self._outbox.failed, p.key, name, t, result.detail, next_at)

    async def _give_up(self, p: Pending, t: float, detail: str, attempted: bool) -> None:
        await asyncio.to_thread(self._outbox.given_up, p.key, p.receiver, t, detail, attempted)
        NOTIFICATIONS.labels(receiver=p.receiver, result="given_up").inc()
        log.error(
            "alert notification given up",
            receiver=p.receiver,
            key=p.key,
            group=p.group,
            status=p.notification.status,
            attempts=p.attempts + int(attempted),
            age_seconds=round(t - p.added_at, 1),
            detail=detail,
        )

    async def _housekeep(self, now: float) -> None:
        """Update the outbox gauges; prune finished rows once an hour."""
        pending = await asyncio.to_thread(self._outbox.pending_count)
        oldest = await asyncio.to_thread(self._outbox.oldest_pending_at)
        OUTBOX_PENDING.set(pending)
        OUTBOX_OLDEST_AGE.set(0.0 if oldest is None else max(0.0, now - oldest))
        if now - self._last_prune >= _PRUNE_EVERY:
            self._last_prune = now
            await asyncio.to_thread(self._outbox.prune, now - self._keep_done)


def _by_priority(queue: list[Pending]) -> list[Pending]:
    """``queue`` with the groups whose next notification matters most first
    (escalation steps and resolutions, then news, then repeats); otherwise in
    creation order, so each group's notifications keep theirs."""
    heads: dict[str, int] = {}
    for p in queue:
        if p.group not in heads:
            note = p.notification
            heads[p.group] = 0 if note.status == "resolved" else _PRIORITY.get(note.kind, 1)
    return sorted(queue, key=lambda p: heads[p.group])  # stable
