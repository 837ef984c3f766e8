"""/metrics over real HTTP: gzip for Prometheus, plain text for the rest, one render per
snapshot however many scrapes, sent as it is rendered."""

from __future__ import annotations

import asyncio
import gzip
import threading
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

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


@asynccontextmanager
async def _serving(render: Callable[[Snapshot | None], Iterator[bytearray]],
                   snap: Callable[[], Snapshot | None]) -> AsyncIterator[str]:
    runner = web.AppRunner(build_app(CollectorRegistry(), snap, render, lambda: T0 + 2))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
    finally:
        await runner.cleanup()


async def test_a_scrape_reads_each_family_as_it_is_rendered() -> None:
    """The first family reaches the scraper, unpacked, while the render still waits to
    write the second; a second scrape of the same snapshot meanwhile shares that
    render and gets the same text."""
    snap = Fleet(load_config(DEMO).inventory(), T0).evaluate(T0 + 1)
    second = threading.Event()
    renders = []

    def render(s: Snapshot | None) -> Iterator[bytearray]:
        renders.append(s)
        yield bytearray(b"# TYPE first gauge\nfirst 1.0\n")
        assert second.wait(30)
        yield bytearray(b"# TYPE second gauge\nsecond 2.0\n")

    async def scrape(url: str, s: aiohttp.ClientSession, first: asyncio.Event) -> bytes:
        async with s.get(url, headers={"Accept-Encoding": "gzip"}) as r:
            unpack, text = zlib.decompressobj(16 + zlib.MAX_WBITS), b""
            while chunk := await r.content.readany():
                text += unpack.decompress(chunk)
                if b"first 1.0\n" in text:
                    first.set()
            return text

    async with _serving(render, lambda: snap) as url, \
            aiohttp.ClientSession(auto_decompress=False) as s:
        firsts = [asyncio.Event(), asyncio.Event()]
        scrapes = [asyncio.create_task(scrape(url, s, e)) for e in firsts]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in firsts)), 30)
        assert not any(t.done() for t in scrapes)  # the second family is not written yet
        second.set()
        texts = await asyncio.wait_for(asyncio.gather(*scrapes), 30)
    assert texts[0] == texts[1]
    assert texts[0].startswith(b"# TYPE first gauge\nfirst 1.0\n# TYPE second gauge\n"
                               b"second 2.0\n")
    assert renders == [snap]


async def test_a_render_that_fails_breaks_that_scrape_and_the_next_renders_again() -> None:
    """A render that raises mid-way: the scrape, already answered 200, ends broken (the
    scraper counts a failed scrape, not a short exposition); the next scrape of the same
    snapshot renders it again."""
    snap = Fleet(load_config(DEMO).inventory(), T0).evaluate(T0 + 1)
    renders = []

    def render(s: Snapshot | None) -> Iterator[bytearray]:
        renders.append(s)
        yield bytearray(b"first 1.0\n")
        if len(renders) == 1:
            raise RuntimeError("a bug in a family")
        yield bytearray(b"second 2.0\n")

    async with _serving(render, lambda: snap) as url, aiohttp.ClientSession() as s:
        try:
            async with s.get(url) as r:
                await r.read()
        except aiohttp.ClientPayloadError:
            pass
        else:
            raise AssertionError("a broken render was sent as a whole exposition")
        async with s.get(url) as r:
            assert (await r.read()).startswith(b"first 1.0\nsecond 2.0\n")
    assert renders == [snap, snap]
