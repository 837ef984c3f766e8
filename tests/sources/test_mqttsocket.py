"""The MQTT session's socket read in chunks (commsmon/sources/mqttsocket.py): paho
still gets every byte in order, and a burst of QoS 1 telemetry through a real
Mosquitto reaches the core whole, in order, and acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator

import aiomqtt
import pytest

from commsmon.config.profiles import ReadingSpec
from commsmon.config.services import MqttSpec
from commsmon.core.types import Observation
from commsmon.sim.broker import Mosquitto
from commsmon.sources.mqtt import MqttSource, Route
from commsmon.sources.mqttsocket import CHUNK, BufferedSocket
from tests.fleetharness import until


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_recv_serves_paho_s_small_reads_from_one_chunk(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """A PUBLISH (type, length, body) and a second packet arrive together: one read of
    the socket, then each of paho's reads is served from the buffer, in order."""
    ours, peer = pair
    sock = BufferedSocket(ours)
    peer.sendall(b"\x30\x05hello\x40\x02\x00\x01")
    assert sock.recv(1) == b"\x30"
    assert sock.pending() == 10  # 11 bytes came, 1 taken
    assert sock.recv(1) == b"\x05"
    assert sock.recv(5) == b"hello"
    assert sock.recv(1) == b"\x40"
    assert sock.recv(4) == b"\x02\x00\x01"  # asks more than is left: what is left
    assert sock.pending() == 0
    with pytest.raises(BlockingIOError):  # nothing buffered, nothing in the kernel
        sock.recv(1)


def test_a_read_as_large_as_asked_is_not_buffered(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    sock = BufferedSocket(ours)
    body = bytes(range(256)) * (2 * CHUNK // 256)
    peer.sendall(body[:100])
    assert sock.recv(len(body)) == body[:100]  # all the kernel had, nothing kept back
    assert sock.pending() == 0


def test_the_peer_closing_reads_empty(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    sock = BufferedSocket(ours)
    peer.sendall(b"\xe0\x00")
    peer.close()
    assert sock.recv(1) == b"\xe0"
    assert sock.recv(1) == b"\x00"
    assert sock.recv(1) == b""
    assert sock.fileno() == ours.fileno()


@pytest.mark.integration
async def test_a_burst_arrives_whole_in_order_and_acknowledged() -> None:
    """3 devices x 1 000 QoS 1 telemetry messages published as fast as Mosquitto takes
    them: every one reaches the sink, each device's in publishing order; a second
    session with the same client id (persistent) is sent nothing again, so every
    PUBACK was written."""
    devices = ("g1", "g2", "g3")
    per_device = 1000
    routes = {f"t/{d}/telemetry": Route(d, "telemetry", {"n": ReadingSpec(field="n")})
              for d in devices}
    async with Mosquitto() as broker:
        spec = MqttSpec(host=broker.host, port=broker.port, client_id="burst")
        seen: list[Observation] = []
        links: list[bool] = []

        @contextlib.asynccontextmanager
        async def session() -> AsyncIterator[None]:
            task = asyncio.create_task(MqttSource(spec, routes, seen.append,
                                                  links.append).run())
            try:
                await until("subscribed", lambda: links[-1:] == [True], 20)
                yield
            finally:
                task.cancel()
                await asyncio.wait([task])

        async with session():
            async with aiomqtt.Client(broker.host, broker.port, identifier="pub") as pub:
                for n in range(per_device):
                    for d in devices:
                        await pub.publish(f"t/{d}/telemetry", json.dumps({"n": n}), qos=1)
            await until("all arrived", lambda: len(seen) >= len(devices) * per_device, 60)
        assert len(seen) == len(devices) * per_device
        for d in devices:
            assert [o.readings["n"] for o in seen if o.device == d] == \
                [float(n) for n in range(per_device)]
        seen.clear()
        async with session():
            await asyncio.sleep(1.0)  # a redelivery would come at once after subscribing
        assert seen == []
