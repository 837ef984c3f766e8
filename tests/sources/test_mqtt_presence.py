"""Presence, retained messages, reconnects and client ids against a real Mosquitto
(issue 13, findings 1, 2, 7 and 8).

Devices are :class:`SimMqttDevice` sessions with a retained ``offline`` Last Will that
publish ``online`` once per session, as the 4G cameras do; the source under test is
the daemon's own :class:`MqttSource`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiomqtt
import pytest

from commsmon.config.services import MqttSpec
from commsmon.core.facts import Fact
from commsmon.core.types import Observation
from commsmon.selfmetrics import MQTT_MESSAGES
from commsmon.sim.broker import Mosquitto
from commsmon.sim.mqttdevices import SimMqttDevice
from commsmon.sources.mqtt import MqttSource, Route
from tests.fleetharness import until

pytestmark = pytest.mark.integration

CAMERAS = ("cam1", "cam2", "cam3")


def topic(device: str) -> str:
    return f"t/v01/{device}/status"


ROUTES = {topic(d): Route(d, "status", {}) for d in CAMERAS}


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    async with Mosquitto() as b:
        yield b


@contextlib.asynccontextmanager
async def running(*tasks: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    started = [asyncio.create_task(t) for t in tasks]
    try:
        yield
    finally:
        for task in started:
            task.cancel()
        await asyncio.wait(started)


def cameras(broker: Mosquitto) -> list[SimMqttDevice]:
    return [SimMqttDevice(broker.host, broker.port, d, topic(d), None, None) for d in CAMERAS]


class Recorder:
    """What the source emitted, and its link and fault callbacks."""

    def __init__(self) -> None:
        self.seen: list[Observation] = []
        self.links: list[bool] = []
        self.faults: list[tuple[str, Fact | None]] = []

    def source(self, spec: MqttSpec, **kw: Any) -> MqttSource:
        return MqttSource(spec, ROUTES, self.seen.append, self.links.append,
                          on_fault=lambda name, fact: self.faults.append((name, fact)), **kw)

    def online(self, since: int = 0) -> set[str]:
        """Devices seen online (live or retained) from observation ``since`` on."""
        return {o.device for o in self.seen[since:] if o.reachable}

    def live(self, device: str, reachable: bool) -> list[Observation]:
        return [o for o in self.seen
                if o.device == device and o.reachable is reachable and not o.retained]


def spec(broker: Mosquitto, **kw: Any) -> MqttSpec:
    return MqttSpec(host=broker.host, port=broker.port, **kw)


def dropped_wills() -> float:
    return MQTT_MESSAGES.labels("status", "will_at_disconnect")._value.get()


async def test_broker_shutdown_wills_are_not_deaths(broker: Mosquitto) -> None:
    """Mosquitto publishes every connected client's Will as it shuts down, then closes
    our session: those ``offline`` messages that reach us are dropped (counted), never
    applied (the broker may close our session before it has sent us all three: two
    reached us once, in a full ``make test`` on a slow machine); when
    the broker is back each camera says ``online`` once (live, or retained if it
    reconnected before us: the broker's view then, which the core's relearning takes
    when it agrees with what we knew, tests/core/test_presence.py)."""
    rec = Recorder()
    devices = cameras(broker)
    source = rec.source(spec(broker, client_id="presence-a", will_grace=3.0))
    async with running(source.run(), *(d.run() for d in devices)):
        await until("three online", lambda: rec.online() == set(CAMERAS), 20)
        before = dropped_wills()
        births = len(rec.seen)
        await broker.stop()  # SIGTERM: the Wills go out, then the sessions close
        await until("our link lost", lambda: rec.links[-1] is False, 20)
        await broker.start()
        await until("three cameras online again",
                    lambda: rec.online(births) == set(CAMERAS), 30)
        await asyncio.sleep(3.5)  # past will_grace: nothing held may come out late
        assert [o for o in rec.seen if not o.reachable and not o.retained] == []
        assert 1 <= dropped_wills() - before <= 3


async def test_a_live_offline_is_applied_after_the_grace(broker: Mosquitto) -> None:
    """A camera whose gateway says offline while our session lives: down it goes."""
    rec = Recorder()
    devices = cameras(broker)
    source = rec.source(spec(broker, client_id="presence-b", will_grace=0.5))
    async with running(source.run(), *(d.run() for d in devices)):
        await until("three online", lambda: rec.online() == set(CAMERAS), 20)
        devices[0].set_up(False)
        await until("cam1 offline", lambda: bool(rec.live("cam1", False)), 10)
        assert not rec.live("cam2", False)


async def test_retained_at_subscribe_is_marked_retained(broker: Mosquitto) -> None:
    """A dead camera's stale retained ``online`` and a live camera's stale retained
    ``offline``, replayed at subscribe: both reach the core as retained (the last known
    state); the live camera's own ``online`` (published without retain-as-live) is not."""
    async with aiomqtt.Client(broker.host, broker.port, identifier="seed") as seed:
        await seed.publish(topic("cam1"), b"online", qos=1, retain=True)
        await seed.publish(topic("cam2"), b"offline", qos=1, retain=True)
    rec = Recorder()
    source = rec.source(spec(broker, client_id="presence-c"))
    async with running(source.run()):
        await until("two retained", lambda: len(rec.seen) >= 2, 20)
        assert {(o.device, o.reachable, o.retained) for o in rec.seen} == {
            ("cam1", True, True), ("cam2", False, True)}
        async with aiomqtt.Client(broker.host, broker.port, identifier="cam2") as cam2:
            await cam2.publish(topic("cam2"), b"online", qos=1, retain=True)
        await until("cam2 live", lambda: bool(rec.live("cam2", True)), 10)


async def test_backoff_starts_over_after_a_good_session(broker: Mosquitto) -> None:
    """Five broker restarts, each after a session that lived longer than good_session:
    every first wait is the shortest step (at most 1 s), not 2, 4, 8, 16 s."""
    rec = Recorder()
    waits: list[tuple[int, float]] = []  # (restart, seconds)
    restarts = [0]

    async def sleep(seconds: float) -> None:
        waits.append((restarts[-1], seconds))
        await asyncio.sleep(seconds)

    source = rec.source(spec(broker, client_id="presence-d"), good_session=1.0, sleep=sleep)
    async with running(source.run()):
        for restart in range(1, 6):
            restarts.append(restart)
            await until("linked", lambda: rec.links and rec.links[-1] is True, 30)
            await asyncio.sleep(1.2)  # a good session
            await broker.kill()
            await until("link lost", lambda: rec.links[-1] is False, 20)
            await broker.start()
        await until("linked", lambda: rec.links[-1] is True, 30)
    firsts = {r: s for r, s in reversed(waits)}  # the first wait after each restart
    assert sorted(firsts) == [1, 2, 3, 4, 5], waits
    assert all(s <= 1.0 for s in firsts.values()), waits


@pytest.mark.idle  # half a minute of sessions taken over and backoff waits
async def test_a_taken_client_id_is_a_monitor_fault(broker: Mosquitto) -> None:
    """Two instances configured with one client id take the session from each other:
    the fault is raised (naming the id), and cleared once one instance stops."""
    random.seed(13)
    first, second = Recorder(), Recorder()
    a = first.source(spec(broker, client_id="same-id"))
    b = second.source(spec(broker, client_id="same-id"))

    def raised(rec: Recorder) -> bool:
        return any(name == "mqtt_client_id" and fact is not None for name, fact in rec.faults)

    async with running(a.run()):
        async with running(b.run()):
            await until("a client-id fault", lambda: raised(first) or raised(second), 90)
        taken = [f for r in (first, second) for n, f in r.faults if f is not None]
        assert taken[0].code == "client_id_taken" and taken[0].arg("client_id") == "same-id"
        if raised(first):  # b is gone: a's next session lives on and clears the fault
            await until("fault cleared", lambda: first.faults[-1] == ("mqtt_client_id", None),
                        60)

