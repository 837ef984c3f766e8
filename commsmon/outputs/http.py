"""The HTTP listener: ``/metrics`` (Prometheus exposition) and ``/healthz``.

Rendering the exposition runs in a worker thread so a large scrape never
blocks the pollers; the collector only reads frozen snapshots.
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
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The aiohttp application serving metrics and health.

    Args:
        registry: what ``/metrics`` exposes.
        snapshot: the latest fleet snapshot, ``None`` before the first.
        clock: wall clock, epoch seconds.
    """

    async def metrics(_: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

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
