"""The HTTP listener: ``/metrics`` (Prometheus exposition) and ``/healthz``.

``/metrics`` is the fleet's exposition (rendered once per snapshot, in a
worker thread, sent as it is rendered, and reused by every scrape of that
snapshot) followed by the daemon's own metrics from the prometheus_client
registry, as one gzip member (unpacked here for a client that does not take
gzip).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

import structlog
from aiohttp import HttpVersion11, web
from aiohttp.typedefs import Middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)

from commsmon.core.snapshot import Snapshot
from commsmon.outputs.gzipmember import Chunk, Member
from commsmon.outputs.webauth import ReadGuard

__all__ = ["build_app"]

log = structlog.get_logger("commsmon.http")

STALE_AFTER = 10.0  # seconds without an evaluation before /healthz says 503


def build_app(
    registry: CollectorRegistry,
    snapshot: Callable[[], Snapshot | None],
    render: Callable[[Snapshot | None], Iterable[Chunk]],
    clock: Callable[[], float] = time.time,
    guard: ReadGuard | None = None,
    before: Sequence[Middleware] = (),
) -> web.Application:
    """The aiohttp application serving metrics and health.

    Args:
        registry: the daemon's own metrics.
        snapshot: the latest fleet snapshot, ``None`` before the first.
        render: renders the fleet's metrics from a snapshot, in chunks (run in a thread;
            one at a time).
        clock: wall clock, epoch seconds.
        guard: who may read; ``None``: anyone who can reach the listener.
        before: middlewares that run before the guard (the console's sessions).
    """
    # Counters' *_created series would double the exposition, and nobody graphs them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    # The latest fleet exposition, gzipped: ~45 MB of text at 20 000 devices is ~2 MB
    # gzipped (73 ms at level 1, less for the blocks the render kept compressed), and
    # Prometheus always asks for gzip.  Keyed by the snapshot's identity without holding
    # the snapshot itself.
    latest: list[tuple[tuple[int, float] | None, _Exposition]] = []
    rendering = asyncio.Lock()

    async def fleet_exposition() -> _Exposition:
        async with rendering:  # one render per snapshot, however many scrapers
            for waited in (False, True):
                snap = snapshot()
                key = None if snap is None else (id(snap), snap.at)
                if latest and latest[0][0] == key and snap is not None \
                        and not latest[0][1].failed:
                    return latest[0][1]  # made, or being made: shared
                if latest and not waited:
                    await latest[0][1].finished()  # one render at a time, then the latest
            exposition = _Exposition(asyncio.get_running_loop())
            latest[:] = [(key, exposition)]
            asyncio.get_running_loop().run_in_executor(None, exposition.make, render, snap)
            return exposition

    async def metrics(request: web.Request) -> web.StreamResponse:
        packed = "gzip" in request.headers.get("Accept-Encoding", "")
        headers = {"Content-Type": CONTENT_TYPE_LATEST}
        if packed:
            headers["Content-Encoding"] = "gzip"
        if request.method == "HEAD":
            return web.Response(headers=headers)  # no render for a HEAD
        exposition = await fleet_exposition()
        # Sent as it is rendered (the devices' families, then the readings', then the
        # sites'): the scraper unpacks one group while the next is written.  Until the
        # first is made a failed render can still be answered 500; an HTTP/1.0 client,
        # which cannot tell a body cut short from a whole one, waits for all of it.
        await (exposition.finished() if request.version < HttpVersion11
               else exposition.started())
        if exposition.failed:
            raise web.HTTPInternalServerError(text="the exposition could not be rendered "
                                                   "(the daemon's log says why)")
        own = await asyncio.to_thread(generate_latest, registry)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        unpack = None if packed else zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            async for chunk in exposition:
                await response.write(chunk if unpack is None
                                     else await asyncio.to_thread(unpack.decompress, chunk))
            end = exposition.end(own)  # the same member: one CRC over all the text
            await response.write(end if unpack is None else unpack.decompress(end))
            await response.write_eof()
        except ConnectionResetError:  # the scraper hung up (its timeout): nothing to tell
            pass
        return response

    async def healthz(_: web.Request) -> web.Response:
        snap = snapshot()
        if snap is None:
            return web.json_response({"status": "starting"}, status=503)
        age = clock() - snap.at
        healthy = age < STALE_AFTER
        body = {
            "status": "ok" if healthy else "stalled",
            "devices": len(snap.devices),
            "sites": len(snap.sites),
            "evaluation_age_seconds": round(age, 3),
        }
        return web.json_response(body, status=200 if healthy else 503)

    app = web.Application(middlewares=[*before, *([guard.middleware] if guard else [])])
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


class _Exposition:
    """One snapshot's fleet exposition as the start of one gzip member, in chunks as a
    worker thread compresses them (:meth:`make`); each scrape iterates them, waiting for
    the rest, then ends the member with its own text (:meth:`end`).

    Raises (iterating): ``RuntimeError`` naming what the render raised (logged with its
    traceback), after the chunks made before it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._chunks: list[bytes] = []
        self._error: BaseException | None = None
        self._done = False
        self._more: asyncio.Future[None] = loop.create_future()
        self._member: Member | None = None

    def make(self, render: Callable[[Snapshot | None], Iterable[Chunk]],
             snap: Snapshot | None) -> None:
        """Render and compress ``snap``'s text, handing each piece to the loop (in a
        worker thread)."""
        try:
            member = Member()
            head = member.header()  # sent with the first family: until then a 500 can be
            for chunk in render(snap):
                data = member.text(chunk) if isinstance(chunk, bytes | bytearray) \
                    else b"".join(map(member.piece, chunk))
                self._hand(head + data, None, done=False)
                head = b""
                del chunk, data  # before the render writes the next family
            self._member = member
            self._hand(head, None, done=True)
        except Exception as exc:
            log.error("exposition render failed", exc_info=exc)
            # Not the exception itself: its traceback holds the snapshot.
            self._hand(b"", RuntimeError(f"render failed: {exc!r}"), done=True)

    def end(self, text: bytes) -> bytes:
        """The rest of the member once every chunk is sent: ``text`` (the daemon's own
        metrics, each scrape's) and the gzip trailer."""
        assert self._member is not None, "ended before the render finished"
        member = self._member.copy()
        return member.text(text) + member.end()

    def _hand(self, chunk: bytes, error: BaseException | None, done: bool) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            self._loop.call_soon_threadsafe(self._add, chunk, error, done)

    def _add(self, chunk: bytes, error: BaseException | None, done: bool) -> None:
        if chunk:
            self._chunks.append(chunk)
        self._error, self._done = error, done
        more, self._more = self._more, self._loop.create_future()
        more.set_result(None)

    @property
    def failed(self) -> bool:
        """Whether the render raised (the next scrape renders again)."""
        return self._error is not None

    async def started(self) -> None:
        """Return once the first chunk is made (or the render ended)."""
        while not self._chunks and not self._done:
            await asyncio.shield(self._more)  # others wait on it too

    async def finished(self) -> None:
        """Return once every chunk is made (or the render failed)."""
        while not self._done:
            await asyncio.shield(self._more)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        while True:
            while sent < len(self._chunks):
                yield self._chunks[sent]
                sent += 1
            if self._done:
                if self._error is not None:
                    raise self._error
                return
            await asyncio.shield(self._more)  # others wait on it too
