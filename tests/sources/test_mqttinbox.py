"""The MQTT session's inbox (commsmon/sources/mqttinbox.py): paho's messages are held
in order up to the configured size, beyond it dropped and counted, never lost
silently; messages a persistent session was owed while away arrive on reconnect."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest
import structlog
from paho.mqtt.client import MQTTMessage
from prometheus_client import REGISTRY

from commsmon.config.profiles import ReadingSpec
from commsmon.config.services import MqttSpec
from commsmon.core.types import Observation
from commsmon.sim.broker import Mosquitto
from commsmon.sources.mqtt import MqttSource, Route
from commsmon.sources.mqttinbox import Inbox, Received
from tests.fleetharness import until


def message(n: int, topic: bytes = b"t/g1/telemetry", retain: bool = False) -> MQTTMessage:
    m = MQTTMessage(mid=n, topic=topic)
    m.payload = json.dumps({"n": n}).encode()
    m.retain = retain
    return m


def n_of(received: Received) -> int:
    topic, payload, retained = received
    assert (topic, retained) == ("t/g1/telemetry", False)
    n: int = json.loads(payload)["n"]
    return n


def dropped() -> float:
    return REGISTRY.get_sample_value(
        "commsmon_mqtt_messages_total", {"kind": "unrouted", "result": "dropped"}) or 0.0


def test_the_inbox_keeps_order_and_drops_beyond_its_size_counted_and_logged_once() -> None:
    inbox = Inbox(3)
    before = dropped()
    with structlog.testing.capture_logs() as logs:
        for n in range(5):  # 0-2 kept, 3 and 4 dropped: logged once
            inbox.put(None, None, message(n))
        assert [n_of(m) for m in inbox.take(2)] == [0, 1]
        for n in (5, 6, 7):  # room for two again: 7 dropped, not logged a second time
            inbox.put(None, None, message(n))
        assert [n_of(m) for m in inbox.take(10)] == [2, 5, 6]
        for n in (8, 9, 10, 11):  # emptied in between: this overflow is logged anew
            inbox.put(None, None, message(n))
    assert dropped() - before == 4  # 3, 4, 7, 11
    assert [e["event"] for e in logs] == ["mqtt messages dropped: the inbox is full"] * 2
    assert len(inbox) == 3


def test_the_inbox_keeps_topic_payload_and_retain_flag() -> None:
    """What handling reads of a message; a topic that is not UTF-8 (no broker passes
    one on) is kept as "", which no route has: counted as an unknown topic."""
    inbox = Inbox(10)
    inbox.put(None, None, message(1, retain=True))
    inbox.put(None, None, message(2, topic=b"t/\xff/telemetry"))
    assert inbox.take(10) == [("t/g1/telemetry", b'{"n": 1}', True), ("", b'{"n": 2}', False)]


async def test_a_wait_ends_when_a_message_comes_or_the_inbox_is_woken() -> None:
    inbox = Inbox(10)
    waiting = asyncio.create_task(inbox.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    inbox.put(None, None, message(1))
    await asyncio.wait_for(waiting, 1)
    inbox.take(1)
    waiting = asyncio.create_task(inbox.wait())
    await asyncio.sleep(0)
    inbox.wake()
    await asyncio.wait_for(waiting, 1)
    assert len(inbox) == 0
    await asyncio.wait_for(inbox.wait(), 1)  # woken for good: the session is lost


@pytest.mark.integration
async def test_what_arrives_while_the_session_is_away_is_handled_on_reconnect() -> None:
    """QoS 1 telemetry published while commsmon is disconnected waits at the broker
    (a persistent session), which sends it as soon as we connect, before our
    SUBSCRIBE is answered: paho hands it to the inbox set up before connecting, and
    every message reaches the sink, in order."""
    routes = {"t/g1/telemetry": Route("g1", "telemetry", {"n": ReadingSpec(field="n")})}
    async with Mosquitto() as broker:
        spec = MqttSpec(host=broker.host, port=broker.port, client_id="away")
        seen: list[Observation] = []
        links: list[bool] = []

        async def session(until_seen: int) -> None:
            task = asyncio.create_task(MqttSource(spec, routes, seen.append,
                                                  links.append).run())
            try:
                await until("subscribed", lambda: links[-1:] == [True], 20)
                await until("all arrived", lambda: len(seen) >= until_seen, 30)
            finally:
                task.cancel()
                await asyncio.wait([task])

        await session(0)  # the broker now keeps a session for "away"
        links.clear()  # a cancelled session tells no link change
        async with aiomqtt.Client(broker.host, broker.port, identifier="pub") as pub:
            for n in range(50):
                await pub.publish("t/g1/telemetry", json.dumps({"n": n}), qos=1)
        await session(50)
    assert [o.readings["n"] for o in seen] == [float(n) for n in range(50)]


async def test_a_message_leaves_no_reference_cycle_behind() -> None:
    """paho matched every message against per-topic callbacks nobody added, in a way
    that left a reference cycle (a closure referring to itself) for the garbage
    collector to find: six objects a message, 10 000 messages a minute at province
    scale.  Now what a message makes goes as soon as it is handled.  A per-topic
    callback, were one added, still gets its messages."""
    import gc

    routes = {"t/g1/telemetry": Route("g1", "telemetry", {"n": ReadingSpec(field="n")})}
    async with Mosquitto() as broker:
        spec = MqttSpec(host=broker.host, port=broker.port, client_id="cycles")
        seen: list[Observation] = []
        links: list[bool] = []
        task = asyncio.create_task(MqttSource(spec, routes, seen.append, links.append).run())
        try:
            await until("subscribed", lambda: links[-1:] == [True], 20)
            async with aiomqtt.Client(broker.host, broker.port, identifier="pub") as pub:
                gc.collect()
                gc.disable()
                try:
                    for n in range(300):
                        await pub.publish("t/g1/telemetry", json.dumps({"n": n}), qos=1)
                    await until("all arrived", lambda: len(seen) >= 300, 30)
                    cyclic = gc.collect()
                finally:
                    gc.enable()
        finally:
            task.cancel()
            await asyncio.wait([task])
    assert [o.readings["n"] for o in seen] == [float(n) for n in range(300)]
    assert cyclic < 100, f"{cyclic} objects in cycles after 300 messages"

    from commsmon.sources.mqttinbox import Inbox, receive_into

    client = receive_into(aiomqtt.Client("127.0.0.1", 1), Inbox(10))
    got: list[str] = []
    client._client.message_callback_add("a/+", lambda c, u, m: got.append(m.topic))
    for topic in (b"a/b", b"c/d"):
        client._client._handle_on_message(message(0, topic))
    assert got == ["a/b"]
