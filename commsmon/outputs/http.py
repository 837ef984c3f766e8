"""The HTTP listener: ``/metrics`` (Prometheus exposition) and ``/healthz``.

``/metrics`` is the fleet's exposition (rendered once per snapshot, in a
worker thread, and reused by every scrape of that snapshot) followed by the
daemon's own metrics from the prometheus_client registry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from commsmon.core.fleet import Snapshot

__all__ = ["build_app"]

STALE_AFTER = 10.0  # seconds without an evaluation before /healthz says 503


def build_app(
    registry: CollectorRegistry,
    snapshot: Callable[[], Snapshot | None],
    render: Callable[[Snapshot | None], bytes],
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The aiohttp application serving metrics and health.

    Args:
        registry: the daemon's own metrics.
        snapshot: the latest fleet snapshot, ``None`` before the first.
        render: renders the fleet's metrics from a snapshot (run in a thread).
        clock: wall clock, epoch seconds.
    """
    cache: dict[str, object] = {"snap": None, "text": b""}
    rendering = asyncio.Lock()

    async def fleet_text(snap: Snapshot | None) -> bytes:
        async with rendering:  # one render per snapshot, however many scrapers
            if cache["snap"] is not snap:
                cache.update(snap=snap, text=await asyncio.to_thread(render, snap))
            body = cache["text"]
            assert isinstance(body, bytes)
            return body

    async def metrics(_: web.Request) -> web.Response:
        fleet = await fleet_text(snapshot())
        own = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=fleet + own, headers={"Content-Type": CONTENT_TYPE_LATEST})

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

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app
