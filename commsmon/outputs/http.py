"""The HTTP listener: ``/metrics`` (Prometheus exposition) and ``/healthz``.

``/metrics`` is the fleet's exposition (rendered once per snapshot, in a
worker thread, and reused by every scrape of that snapshot) followed by the
daemon's own metrics from the prometheus_client registry.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import Callable, Iterable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)

from commsmon.core.snapshot import Snapshot
from commsmon.outputs.webauth import ReadGuard

__all__ = ["build_app"]

STALE_AFTER = 10.0  # seconds without an evaluation before /healthz says 503
GZIP_LEVEL = 1  # fastest: the text repeats itself so much that level 1 gets ~18x


def build_app(
    registry: CollectorRegistry,
    snapshot: Callable[[], Snapshot | None],
    render: Callable[[Snapshot | None], Iterable[bytes | bytearray]],
    clock: Callable[[], float] = time.time,
    guard: ReadGuard | None = None,
    before: Sequence[Middleware] = (),
) -> web.Application:
    """The aiohttp application serving metrics and health.

    Args:
        registry: the daemon's own metrics.
        snapshot: the latest fleet snapshot, ``None`` before the first.
        render: renders the fleet's metrics from a snapshot, in chunks (run in a thread).
        clock: wall clock, epoch seconds.
        guard: who may read; ``None``: anyone who can reach the listener.
        before: middlewares that run before the guard (the console's sessions).
    """
    # Counters' *_created series would double the exposition, and nobody graphs them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    # The latest fleet exposition, gzipped: ~40 MB of text at 20 000 devices is ~2 MB
    # gzipped (73 ms at level 1), and Prometheus always asks for gzip.  Keyed by the
    # snapshot's identity without holding the snapshot itself.
    cache: dict[str, object] = {"key": None, "gzip": b""}
    rendering = asyncio.Lock()

    async def fleet_gzip(snap: Snapshot | None) -> bytes:
        async with rendering:  # one render per snapshot, however many scrapers
            key = None if snap is None else (id(snap), snap.at)
            if cache["key"] != key or snap is None:
                cache.update(key=key, gzip=await asyncio.to_thread(_gzipped, render, snap))
            body = cache["gzip"]
            assert isinstance(body, bytes)
            return body

    async def metrics(request: web.Request) -> web.Response:
        fleet = await fleet_gzip(snapshot())
        own = await asyncio.to_thread(generate_latest, registry)
        body = fleet + gzip.compress(own, GZIP_LEVEL)  # two gzip members make one stream
        headers = {"Content-Type": CONTENT_TYPE_LATEST}
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
        else:
            body = await asyncio.to_thread(gzip.decompress, body)
        return web.Response(body=body, headers=headers)

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


def _gzipped(
    render: Callable[[Snapshot | None], Iterable[bytes | bytearray]], snap: Snapshot | None
) -> bytes:
    """One gzip member of the rendered text, compressed chunk by chunk as it comes."""
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    out = [packer.compress(chunk) for chunk in render(snap)]
    out.append(packer.flush())
    return b"".join(out)
