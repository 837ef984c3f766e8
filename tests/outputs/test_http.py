"""/metrics over real HTTP: gzip for Prometheus, plain text for the rest, one render per
snapshot however many scrapes."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from commsmon.config.load import load_config
from commsmon.core.fleet import Fleet
from commsmon.core.snapshot import Snapshot
from commsmon.outputs.http import build_app
from commsmon.outputs.metrics import FleetExposition
from tests.fleetharness import DEMO

T0 = 1_764_400_000.0


async def test_metrics_gzip_and_plain_carry_the_same_text() -> None:
    config = load_config(DEMO)
    fleet = Fleet(config.inventory(), T0)
    snap = fleet.evaluate(T0 + 1)
    exposition = FleetExposition(config)
    renders: list[Snapshot | None] = []

    def render(s: Snapshot | None) -> Iterator[bytearray]:
        renders.append(s)
        return exposition.chunks(s)

    registry = CollectorRegistry()
    Counter("commsmon_test_things", "Things.", registry=registry).inc()
    runner = web.AppRunner(build_app(registry, lambda: snap, render, lambda: T0 + 2))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as s:
            async with s.get(url, headers={"Accept-Encoding": "gzip"}) as r:
                assert r.headers["Content-Encoding"] == "gzip"
                raw = await r.read()
            async with s.get(url, headers={"Accept-Encoding": "identity"}) as r:
                assert "Content-Encoding" not in r.headers
                plain = await r.read()
        assert gzip.decompress(raw) == plain  # the two gzip members read as one stream
        text = plain.decode()
        assert 'commsmon_device_info{site="v01",device="v01-router"' in text
        assert "commsmon_test_things_total 1.0" in text
        assert renders == [snap]  # two scrapes, one render
    finally:
        await runner.cleanup()
