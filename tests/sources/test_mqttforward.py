"""Observations forwarded to another shard over a real Mosquitto (commsmon/sources/
mqtt.py ``forward``): a burst reaches the owning shard whole and in order, and
forwarding in batches is not logged as a warning per observation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from commsmon.config.services import MqttSpec
from commsmon.core.types import Observation
from commsmon.sim.broker import Mosquitto
from commsmon.sources import peers
from commsmon.sources.mqtt import MqttSource, Route
from tests.fleetharness import until


@pytest.mark.integration
async def test_a_burst_forwarded_arrives_in_order_without_a_warning_per_observation(
        caplog: pytest.LogCaptureFixture) -> None:
    """600 observations handed to shard 1's source at once for shard 0 (two and a bit
    batches of 256, each published before its PUBACKs come back): shard 0 gets all
    600 in order, and aiomqtt's "There are N pending publish calls" is not logged."""
    async with Mosquitto() as broker:
        received: list[Observation] = []
        links: dict[int, list[bool]] = {0: [], 1: []}

        def source(shard: int, routes: dict[str, Route]) -> MqttSource:
            spec = MqttSpec(host=broker.host, port=broker.port, client_id=f"shard{shard}")
            return MqttSource(spec, routes, received.append, links[shard].append)

        owner = source(0, {peers.inbox("commsmon", 0): Route("", "peer", {})})
        sender = source(1, {peers.inbox("commsmon", 1): Route("", "peer", {})})
        tasks = [asyncio.create_task(s.run()) for s in (owner, sender)]
        try:
            await until("both subscribed",
                        lambda: links[0][-1:] == [True] == links[1][-1:], 20)
            with caplog.at_level(logging.WARNING):
                for n in range(600):
                    sender.forward(0, Observation(f"d{n % 7}", 1_000_000.0 + n, True,
                                                  {"n": float(n)}))
                await until("all forwarded", lambda: len(received) >= 600, 30)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
    assert [o.readings["n"] for o in received] == [float(n) for n in range(600)]
    assert [o.device for o in received[:8]] == [f"d{n % 7}" for n in range(8)]
    assert not [r.getMessage() for r in caplog.records
                if "pending publish calls" in r.getMessage()]
