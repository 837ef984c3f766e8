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
from commsmon.outputs.http import _Exposition, build_app
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
    async with _serving(render, lambda: snap, registry) as url, \
            aiohttp.ClientSession(auto_decompress=False) as s:
        async with s.get(url, headers={"Accept-Encoding": "gzip"}) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            raw = await r.read()
        async with s.get(url, headers={"Accept-Encoding": "identity"}) as r:
            assert "Content-Encoding" not in r.headers
            plain = await r.read()
    assert gzip.decompress(raw) == plain
    one = zlib.decompressobj(16 + zlib.MAX_WBITS)  # as aiohttp's client reads: one member
    assert one.decompress(raw) == plain and one.eof and not one.unused_data
    text = plain.decode()
    assert 'commsmon_device_info{site="v01",device="v01-router"' in text
    assert "commsmon_test_things_total 1.0" in text
    assert renders == [snap]  # two scrapes, one render


def _snapshot(at: float = T0 + 1) -> Snapshot:
    """The demo fleet, never heard from, evaluated at ``at``."""
    return Fleet(load_config(DEMO).inventory(), T0).evaluate(at)


@asynccontextmanager
async def _serving(render: Callable[[Snapshot | None], Iterator[bytearray]],
                   snap: Callable[[], Snapshot | None],
                   registry: CollectorRegistry | None = None) -> AsyncIterator[str]:
    """/metrics of ``render`` on ``snap`` on an ephemeral 127.0.0.1 port: its URL."""
    runner = web.AppRunner(build_app(registry or CollectorRegistry(), snap, render,
                                     lambda: T0 + 2))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
    finally:
        await runner.cleanup()


async def test_a_scrape_reads_each_family_as_it_is_rendered() -> None:
    """The first family reaches the scraper, unpacked, while the render still waits to
    write the second (in the daemon, the devices' families come as one piece, then the
    readings', then the sites'); a second scrape of the same snapshot meanwhile shares that
    render and gets the same text."""
    snap = _snapshot()
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


async def test_a_render_that_fails_is_answered_500_and_the_next_scrape_renders_again() -> None:
    """A render that raises before its first family: the scrape is answered 500 (the
    scraper counts a failed scrape); the next scrape of the same snapshot renders it
    again.  An HTTP/1.0 scraper, which cannot tell a body cut short from a whole one,
    waits for the whole render: a failure after the first family is a 500 for it too."""
    snaps = [_snapshot()]
    fails: list[str] = ["at once", "never", "after the first family"]
    renders = []
    later = threading.Event()  # when the third render fails

    def render(s: Snapshot | None) -> Iterator[bytearray]:
        renders.append(s)
        how = fails.pop(0)
        if how == "at once":
            raise RuntimeError("a bug in a family")
        yield bytearray(b"first 1.0\n")
        if how == "after the first family":
            assert later.wait(30)
            raise RuntimeError("a bug in the second family")
        yield bytearray(b"second 2.0\n")

    async with _serving(render, lambda: snaps[-1]) as url, aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert r.status == 500
        async with s.get(url) as r:
            assert r.status == 200
            assert (await r.read()).startswith(b"first 1.0\nsecond 2.0\n")
        assert renders == [snaps[0], snaps[0]]
        snaps.append(_snapshot(T0 + 2))  # a new one: rendered anew
        port = int(url.split(":")[2].split("/")[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
        await asyncio.sleep(0.2)  # time enough to send the first family, were it sent
        later.set()
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    assert answer.startswith(b"HTTP/1.0 500"), answer[:80]
    assert renders == [snaps[0], snaps[0], snaps[1]]


async def test_a_render_that_fails_midway_breaks_the_scrape_it_began() -> None:
    """Once a family is sent the answer is 200: a render that fails later ends that
    scrape broken, not short, so the scraper counts a failed scrape."""
    snap = _snapshot()
    sent = threading.Event()

    def render(s: Snapshot | None) -> Iterator[bytearray]:
        yield bytearray(b"first 1.0\n")
        assert sent.wait(30)
        raise RuntimeError("a bug in the second family")

    async with _serving(render, lambda: snap) as url, aiohttp.ClientSession() as s, \
            s.get(url, headers={"Accept-Encoding": "identity"}) as r:
        assert r.status == 200
        assert await r.content.readany() == b"first 1.0\n"
        sent.set()
        try:
            await r.read()
        except aiohttp.ClientPayloadError:
            pass
        else:
            raise AssertionError("a broken render was sent as a whole exposition")


async def test_a_head_is_answered_without_a_render() -> None:
    renders = []

    def render(s: Snapshot | None) -> Iterator[bytearray]:
        renders.append(s)
        yield bytearray(b"first 1.0\n")

    snap = _snapshot()
    async with _serving(render, lambda: snap) as url, aiohttp.ClientSession() as s, \
            s.head(url) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        assert await r.read() == b""
    assert renders == []


async def test_a_scrape_given_up_leaves_the_others_waiting_on_the_render() -> None:
    """Two scrapes wait on one render; one is cancelled (its scraper gave up, the
    daemon stops its handler): the other still gets every chunk."""
    go = threading.Event()

    def render(s: Snapshot | None) -> Iterator[bytearray]:
        yield bytearray(b"first 1.0\n")
        assert go.wait(30)
        yield bytearray(b"second 2.0\n")

    exposition = _Exposition(asyncio.get_running_loop())
    asyncio.get_running_loop().run_in_executor(None, exposition.make, render, None)

    async def read() -> bytes:
        unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return b"".join([unpack.decompress(c) async for c in exposition])

    given_up, kept = asyncio.create_task(read()), asyncio.create_task(read())
    await asyncio.wait_for(exposition.started(), 30)
    await asyncio.sleep(0)  # both wait for the second chunk
    given_up.cancel()
    await asyncio.wait([given_up])
    go.set()
    assert await asyncio.wait_for(kept, 30) == b"first 1.0\nsecond 2.0\n"
