"""Subscribes to presence and telemetry topics and emits observations.

Presence topics carry retained ``online``/``offline`` (``offline`` also as the
device's Last Will); telemetry topics carry a JSON object decoded per the
device's profile.  The source owns its reconnect loop: on broker loss it tells
the core (devices go ``unknown``, not ``down``), backs off with jitter (reset
after a session that lived ``GOOD_SESSION`` seconds) and subscribes again,
getting retained presence anew.  A bad message is counted and logged once,
never fatal, never a new time series.

What counts as evidence (README "Presence and retained messages"):

* A live ``online`` is a birth: the device is up at once.
* A live ``offline`` is held ``will_grace`` seconds: if our own session ends
  meanwhile it was the broker shutting down and publishing every client's Last
  Will, and it is dropped (counted ``will_at_disconnect``).
* A retained message, replayed at subscribe, is the last known state only
  (``Observation.retained``): it never makes a device up or down.  Retained
  telemetry whose own ``ts`` is within the device's ``stale_after`` of now is
  live evidence; older, its readings count at their ``ts`` (and age as any
  reading); without a ``ts`` its readings are dropped: their time is unknown.
* Sessions the broker drops right after they begin, ``TAKEOVER_COUNT`` times in
  a row, mean another client uses our client id: a ``monitor_fault``.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiomqtt
import orjson
import structlog
from pydantic import ValidationError

from commsmon.aio import raise_if_cancel_swallowed
from commsmon.config.profiles import ReadingSpec
from commsmon.config.services import MqttSpec
from commsmon.config.settings import Config
from commsmon.core.facts import Fact
from commsmon.core.shard import ShardPlan
from commsmon.core.types import CheckIn, Observation, Reading
from commsmon.log import LogOnce
from commsmon.operations.checkin import CheckInBody
from commsmon.selfmetrics import (
    MQTT_CONNECTED,
    MQTT_CONNECTS,
    MQTT_MESSAGES,
    READING_ERRORS,
    SHARD_FORWARDED,
)
from commsmon.sources import peers
from commsmon.sources.convert import (
    DecodeError,
    decode_json_field,
    json_field_present,
    rate_reading,
    unsupported,
)
from commsmon.sources.counters import CounterRates, CounterSample
from commsmon.sources.mqttinbox import Inbox, receive_into, until_lost
from commsmon.sources.mqttsocket import read_in_chunks

__all__ = ["MqttSource", "Route", "routes_from_config"]

log = structlog.get_logger("commsmon.mqtt")

Sink = Callable[[Observation], None]
LinkCallback = Callable[[bool], None]
FaultCallback = Callable[[str, Fact | None], None]

#: Seconds a session must live for the reconnect backoff to start over.
GOOD_SESSION = 30.0
#: A session the broker ends within this many seconds of subscribing is "short";
#: ``TAKEOVER_COUNT`` short sessions in a row point at another client with our id.
SHORT_SESSION = 10.0
TAKEOVER_COUNT = 3

MAX_PAYLOAD = 256 * 1024  # bytes; a telemetry document is a few hundred
# The per-message counters, resolved once: labels() on every message cost ~8 % of a burst.
_OK = {kind: MQTT_MESSAGES.labels(kind, "ok") for kind in ("status", "telemetry", "peer")}
# Topics per SUBSCRIBE: one packet for a province's 20 000 topics outlasts the timeout.
_SUBSCRIBE_BATCH = 1000
_FORWARD_BATCH = 256  # observations published to other shards before awaiting their PUBACKs
_FUTURE_SKEW = 300.0  # seconds a device clock may run ahead before we distrust it
# Of every presence route: one empty map (read-only by its type), not one per device
# (10 000 in a province); a dict, as a setup is pickled.
_NO_READINGS: Mapping[str, ReadingSpec] = {}
_ONLINE = {"online", "1", "true", "up"}
_OFFLINE = {"offline", "0", "false", "down"}


@dataclass(frozen=True, slots=True)
class Route:
    """What a topic means.

    Attributes:
        device: device id put on the observations.
        kind: ``status`` (online/offline), ``telemetry`` (JSON object),
            ``checkin`` (a check-in body naming its own device) or ``peer``
            (an observation another shard forwards, :mod:`.peers`).
        readings: reading name -> spec, for telemetry.
        stale_after: seconds of silence after which the device counts as
            failed; a retained telemetry message younger than that (by its own
            ``ts``) is live evidence.  ``None``: never.
    """

    device: str
    kind: Literal["status", "telemetry", "checkin", "peer"]
    readings: Mapping[str, ReadingSpec]
    stale_after: float | None = None


def routes_from_config(config: Config, plan: ShardPlan | None = None) -> dict[str, Route]:
    """Topic -> route for the MQTT topics this instance reads.

    Presence is read by every shard that tracks the device (retained
    messages never reach a shared subscription); telemetry of every device is
    read through the shared subscription, whichever shard owns it.
    """
    routes: dict[str, Route] = {}
    for site, device in config.devices():
        status, telemetry = config.topics(site, device)
        if device.profile is None:
            continue
        profile = config.profiles[device.profile]
        if status and (plan is None or plan.tracks(device.id)):
            routes[status] = Route(device.id, "status", _NO_READINGS)
        if telemetry:
            routes[telemetry] = Route(device.id, "telemetry", profile.readings,
                                      device.stale_after or profile.stale_after)
    if config.mqtt is not None:
        routes[config.mqtt.checkins] = Route("", "checkin", _NO_READINGS)
        if plan is not None and plan.count > 1:
            routes[peers.inbox(config.mqtt.topic_prefix, plan.index)] = Route(
                "", "peer", _NO_READINGS)
    return routes


class MqttSource:
    """Keeps a session with the broker and turns messages into observations.

    Args:
        spec: broker settings.
        routes: topic -> route.
        sink: receives each telemetry observation, in the event loop.
        on_link: called with True once subscribed, False when the session is lost.
        on_checkin: receives check-ins from the check-in topic.
        local_sink: receives presence observations and those other shards
            forward (each already went to every shard that needs it); ``sink``
            unless given.
        clock: wall clock, epoch seconds (injected for tests).
        client_id: the MQTT client id (``spec.identity(0)`` unless given).
        on_fault: told of a fault of ours (``mqtt_client_id``: another client
            takes our session) and of its end (``None``).
        good_session: seconds a session must live to reset the backoff.
        sleep: waits between reconnect attempts (injected for tests).
    """

    def __init__(
        self,
        spec: MqttSpec,
        routes: Mapping[str, Route],
        sink: Sink,
        on_link: LinkCallback,
        *,
        on_checkin: Callable[[CheckIn], None] | None = None,
        local_sink: Sink | None = None,
        clock: Callable[[], float] = time.time,
        client_id: str | None = None,
        on_fault: FaultCallback | None = None,
        good_session: float = GOOD_SESSION,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
    ) -> None:
        self._on_checkin = on_checkin
        self._spec = spec
        self.client_id = client_id or spec.identity(0)
        self._on_fault = on_fault
        self._good_session = good_session
        self._sleep = sleep
        self._subscribed_at: float | None = None  # monotonic, while a session is up
        self._short_sessions = 0
        # Live presence "offline" held for will_grace seconds, by hold number.
        self._held: dict[int, Observation] = {}
        self._hold_numbers = itertools.count()
        self._routes = dict(routes)
        self._sink = sink
        self._local_sink = local_sink or sink
        # Observations for other shards, kept across reconnects until the broker has them.
        self._outgoing: collections.deque[tuple[str, bytes]] = collections.deque()
        self._outgoing_ready = asyncio.Event()
        self._on_link = on_link
        self._clock = clock
        self._once = LogOnce()
        self._rates = CounterRates()  # last sample of every counter reading, by message ts

    async def run(self) -> None:
        """Connect, subscribe and consume forever; returns only by cancellation."""
        failures = 0
        while True:
            try:
                await _cancellable(self._session())
            except aiomqtt.MqttError as exc:
                MQTT_CONNECTED.set(0)
                self._drop_held()
                self._on_link(False)
                lived = self._session_ended()
                if lived is not None and lived >= self._good_session:
                    failures = 0  # a good session: the next outage starts from a short wait
                if failures == 0 or self._once.first("broker", str(exc)):
                    log.warning("mqtt broker unreachable", error=str(exc),
                                broker=f"{self._spec.host}:{self._spec.port}")
                failures += 1
                MQTT_CONNECTS.labels("error").inc()
                # Exponential backoff with full jitter, capped (aiomqtt reconnection docs).
                cap = min(self._spec.reconnect_max, 0.5 * 2 ** min(failures, 10))
                await self._sleep(random.uniform(cap / 2, cap))
            else:  # the session ended without error: broker closed it cleanly
                failures = 0
                self._session_ended()

    def _session_ended(self) -> float | None:
        """Seconds the session that just ended had been subscribed (``None``: it
        never was); counts sessions the broker ends at once (a client id taken)."""
        if self._subscribed_at is None:
            return None
        lived = time.monotonic() - self._subscribed_at
        self._subscribed_at = None
        if lived >= SHORT_SESSION:
            self._short_sessions = 0
            return lived
        self._short_sessions += 1
        if self._short_sessions >= TAKEOVER_COUNT:
            MQTT_CONNECTS.labels("taken_over").inc()
            if self._once.first("client_id", "taken"):
                log.error("mqtt session taken over: another client uses our client id",
                          client_id=self.client_id, short_sessions=self._short_sessions)
            if self._on_fault is not None:
                self._on_fault("mqtt_client_id", Fact("client_id_taken", {
                    "client_id": self.client_id, "count": self._short_sessions}))
        return lived

    async def _session(self) -> None:
        spec = self._spec
        inbox = Inbox(spec.queue_size)
        async with read_in_chunks(receive_into(aiomqtt.Client(
            spec.host,
            spec.port,
            identifier=self.client_id,
            username=spec.username,
            password=spec.password.get_secret_value() if spec.password else None,
            keepalive=spec.keepalive,
            tls_params=_tls(spec),
            tls_insecure=spec.tls.insecure if spec.tls else None,
            timeout=10,
            # A persistent session: what arrives while we reconnect (QoS 1) waits at
            # the broker for us instead of being lost.
            clean_session=False,
        ), inbox)) as client:
            # aiomqtt warns at every publish while more than this many await their
            # PUBACK; a batch forwarded to other shards is that many by design.
            client.pending_calls_threshold = _FORWARD_BATCH
            lost = asyncio.ensure_future(until_lost(client))
            lost.add_done_callback(lambda _: inbox.wake())
            try:
                topics = sorted(self._routes)
                for start in range(0, len(topics), _SUBSCRIBE_BATCH):
                    batch = topics[start:start + _SUBSCRIBE_BATCH]
                    await client.subscribe([(self._subscription(t), 1) for t in batch])
                MQTT_CONNECTS.labels("ok").inc()
                MQTT_CONNECTED.set(1)
                self._once.clear("broker")
                log.info("mqtt subscribed", broker=f"{spec.host}:{spec.port}",
                         topics=len(self._routes))
                self._on_link(True)
                self._subscribed_at = time.monotonic()
                publisher = asyncio.create_task(self._publish(client), name="mqtt-forward")
                long_lived = asyncio.get_running_loop().call_later(
                    SHORT_SESSION, self._long_lived)
                try:
                    await self._consume(inbox, lost)
                finally:
                    long_lived.cancel()
                    publisher.cancel()
                    await asyncio.wait([publisher])
            finally:
                lost.cancel()  # also, once it is done, keeps its error from being logged

    async def _consume(self, inbox: Inbox, lost: asyncio.Future[None]) -> None:
        """Handle what the inbox holds, a bounded batch per turn of the event loop,
        until the session is lost and everything read before is handled.

        Raises:
            aiomqtt.MqttError: the session was lost.
        """
        while True:
            batch = inbox.take(DRAIN_BATCH)
            if not batch:
                if lost.done():
                    lost.result()  # raises: until_lost never returns
                    return
                await inbox.wait()
                continue
            for topic, payload, retained in batch:
                self.handle(topic, payload, retained=retained)
            await asyncio.sleep(0)

    def _long_lived(self) -> None:
        """The session outlived SHORT_SESSION: whoever took it over has stopped."""
        self._short_sessions = 0
        self._once.clear("client_id")
        if self._on_fault is not None:
            self._on_fault("mqtt_client_id", None)

    def _hold(self, obs: Observation) -> None:
        """Apply a live ``offline`` after ``will_grace`` unless our session ends first."""
        grace = self._spec.will_grace
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the daemon (a unit test): no grace
            loop = None
        if grace <= 0 or loop is None:
            self._local_sink(obs)
            return
        number = next(self._hold_numbers)
        self._held[number] = obs
        loop.call_later(grace, self._release, number)

    def _release(self, number: int) -> None:
        obs = self._held.pop(number, None)
        if obs is not None:
            self._local_sink(obs)

    def _drop_held(self) -> None:
        """Our session ended: the ``offline`` messages just before were the broker's
        Last Wills at shutdown (or our own link going), not the devices' news."""
        if not self._held:
            return
        devices = sorted({obs.device for obs in self._held.values()})
        MQTT_MESSAGES.labels("status", "will_at_disconnect").inc(len(self._held))
        log.info("mqtt offline messages dropped: our session ended within will_grace",
                 count=len(self._held), devices=devices[:10])
        self._held.clear()

    def take_pending(self, old: MqttSource) -> None:
        """Send what ``old`` (a source this one replaces) had not handed over yet."""
        self._outgoing.extend(old._outgoing)
        old._outgoing.clear()
        if self._outgoing:
            self._outgoing_ready.set()

    def forward(self, shard: int, obs: Observation) -> None:
        """Queue ``obs`` for shard ``shard``; sent QoS 1 as soon as the session allows."""
        if len(self._outgoing) >= self._spec.queue_size:
            SHARD_FORWARDED.labels("dropped").inc()
            if self._once.first("forward", "full"):
                log.error("observations for other shards dropped: broker away too long",
                          queued=len(self._outgoing))
            return
        self._outgoing.append((peers.inbox(self._spec.topic_prefix, shard), peers.encode(obs)))
        self._outgoing_ready.set()

    async def _publish(self, client: aiomqtt.Client) -> None:
        """Send queued observations in batches; an item leaves the queue once acknowledged."""
        while True:
            await self._outgoing_ready.wait()
            if not self._outgoing:
                self._outgoing_ready.clear()
                continue
            batch = list(itertools.islice(self._outgoing, _FORWARD_BATCH))
            try:
                await asyncio.gather(*(client.publish(t, p, qos=1) for t, p in batch))
                raise_if_cancel_swallowed()  # aiomqtt waits for PUBACKs with wait_for
            except aiomqtt.MqttError:
                # The session is going; the reader sees it too and reconnects.  What was
                # not acknowledged stays queued and is sent again (at least once).
                await asyncio.sleep(1.0)
                continue
            for _ in batch:
                self._outgoing.popleft()
            SHARD_FORWARDED.labels("sent").inc(len(batch))
            self._once.clear("forward")

    def _subscription(self, topic: str) -> str:
        """Telemetry through a shared subscription when the instance is one of a group."""
        if self._spec.share_group and self._routes[topic].kind == "telemetry":
            return f"$share/{self._spec.share_group}/{topic}"
        return topic

    def handle(self, topic: str, payload: Any, *, retained: bool = False) -> Observation | None:
        """Turn one message into an observation and emit it; ``None`` if rejected.

        ``retained``: the broker replayed it at subscribe (the MQTT retain flag
        on delivery): the last known state, not live evidence.
        """
        now = self._clock()
        route = self._routes.get(topic)
        if route is None:
            MQTT_MESSAGES.labels("unrouted", "unknown_topic").inc()
            return None
        if not isinstance(payload, bytes | bytearray):
            payload = str(payload).encode() if payload is not None else b""
        if len(payload) > MAX_PAYLOAD:
            return self._reject(route, "too_large", f"{len(payload)} bytes")
        if route.kind == "checkin":
            self._checkin(route, payload, now)
            return None
        if route.kind == "telemetry":
            obs = self._telemetry(route, payload, now, retained)
            sink = self._sink
        else:
            obs = self._presence(route, payload, now, retained) if route.kind == "status" \
                else self._peer(route, payload)
            sink = self._local_sink
        if obs is not None:
            _OK[route.kind].inc()
            if obs.error == "offline" and not obs.retained:
                self._hold(obs)
            else:
                sink(obs)
        return obs

    def _peer(self, route: Route, payload: bytes) -> Observation | None:
        try:
            return peers.decode(payload)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return self._reject(route, "bad_payload", str(exc)[:80])

    def _presence(
        self, route: Route, payload: bytes, now: float, retained: bool
    ) -> Observation | None:
        word = payload.decode("utf-8", errors="replace").strip().lower()
        if word in _ONLINE:  # a live one is a birth: no hysteresis
            return Observation(route.device, now, True, conclusive=True, retained=retained)
        if word in _OFFLINE:
            return Observation(route.device, now, False, conclusive=True, error="offline",
                               retained=retained)
        return self._reject(route, "bad_payload", f"presence {word[:20]!r}")

    def _telemetry(
        self, route: Route, payload: bytes, now: float, retained: bool = False
    ) -> Observation | None:
        try:
            document = _json(payload)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            return self._reject(route, "bad_json", str(exc)[:80])
        if not isinstance(document, dict):
            return self._reject(route, "not_object", type(document).__name__)
        readings: dict[str, Reading] = {}
        missing: list[str] = []  # sent, but with no usable value: not known from now
        own = _own_time(document, now)
        at = now if own is None else own
        if retained:
            if own is None:  # when these values held is unknown: only "it was online"
                return Observation(route.device, now, True, retained=True)
            live = route.stale_after is not None and now - own <= route.stale_after
            retained = not live
        for name, spec in route.readings.items():
            try:
                value = decode_json_field(spec, document)
            except DecodeError as exc:
                READING_ERRORS.labels("mqtt", exc.reason).inc()
                if self._once.first((route.device, name), exc.reason):
                    log.warning("mqtt value not decoded", device=route.device,
                                reading=name, problem=str(exc))
                missing.append(name)
                continue
            self._once.clear((route.device, name))
            if value is None:
                if json_field_present(spec, document):  # null or a sentinel ("N/A", -1)
                    READING_ERRORS.labels("mqtt", "sentinel").inc()
                    missing.append(name)
                continue
            if spec.counter is not None:
                sample = CounterSample(int(value), at)
                value = rate_reading(spec, self._rates, route.device, name, sample)
            if value is not None:
                readings[name] = value
        for name in unsupported(route.readings, readings):
            READING_ERRORS.labels("mqtt", "unsupported").inc()
            del readings[name]
            missing.append(name)
        return Observation(route.device, at, True, readings, missing=frozenset(missing),
                           retained=retained)

    def _checkin(self, route: Route, payload: bytes, now: float) -> None:
        try:
            body = CheckInBody.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            self._reject(route, "bad_checkin", f"{where}: {first['msg']}")
            return
        MQTT_MESSAGES.labels("checkin", "ok").inc()
        if self._on_checkin is not None:
            self._on_checkin(body.checkin(now))

    def _reject(self, route: Route, reason: str, detail: str) -> Observation | None:
        MQTT_MESSAGES.labels(route.kind, reason).inc()
        if self._once.first((route.device, route.kind), reason):
            log.warning("mqtt message rejected", device=route.device, reason=reason,
                        detail=detail)
        return None


def _tls(spec: MqttSpec) -> aiomqtt.TLSParameters | None:
    tls = spec.tls
    if tls is None:
        return None
    return aiomqtt.TLSParameters(
        ca_certs=tls.ca_file,
        certfile=tls.cert_file,
        keyfile=tls.key_file,
        keyfile_password=tls.key_password.get_secret_value() if tls.key_password else None,
    )


async def _cancellable(coro: Coroutine[Any, Any, None]) -> None:
    """Await ``coro`` in its own task so that our cancel always ends the wait.

    aiomqtt 2.5 waits with ``asyncio.wait_for``, which on Python 3.11 can swallow a
    cancel that lands just as its wait ends; a daemon asked to stop would then keep
    running until systemd kills it.  Shielded, our task leaves at once and the
    session task gets its own cancel and two seconds to go.
    """
    session = asyncio.ensure_future(coro)
    try:
        await asyncio.shield(session)
    except asyncio.CancelledError:
        session.cancel()
        await asyncio.wait([session], timeout=2.0)
        raise


#: Messages handled at most between two turns of the event loop (a few ms of work).
DRAIN_BATCH = 256


def _json(payload: bytes) -> Any:
    """``json.loads(payload)``, through orjson (2.5 of a message's 15 us of our own
    CPU, down to 0.5).  What orjson refuses and the standard module takes (``NaN``,
    ``1e999``, lone surrogates) is parsed again by the standard module; a document
    neither takes is parsed twice.  Two differences are kept: an integer beyond 64
    bits comes as a float, which every reading but ``text`` makes of it anyway and
    no counter can hold; a document nested 900 to 1 024 levels deep is read, where
    the standard module ran out of recursion (``bad_json``).

    Raises:
        json.JSONDecodeError, UnicodeDecodeError, RecursionError: as ``json.loads``.
    """
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)


def _own_time(document: Mapping[str, Any], now: float) -> float | None:
    """The message's own time (``ts``, epoch s or ms) if plausible, else ``None``."""
    ts = document.get("ts", document.get("timestamp"))
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return None
    seconds = ts / 1000 if ts > 1e11 else float(ts)
    if not 0 < seconds <= now + _FUTURE_SKEW:
        return None
    return min(seconds, now)
