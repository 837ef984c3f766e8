"""A drill's record as JSON (the API and the CLI): shapes only, times as the caller
writes them, hours ``null`` when unbounded (with ``unbounded: true``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from commsmon.core.drills import DrillRecord, Figures

__all__ = ["drill_json"]


def drill_json(r: DrillRecord, when: Callable[[float | None], str | None],
               now: float) -> dict[str, Any]:
    """``r`` as the API gives it; offsets and durations in seconds, levels ratio 0-1."""
    d = r.drill
    return {
        "id": d.id, "site": d.site, "scenario": d.scenario, "by": d.by, "note": d.note,
        "start": when(d.start), "until": when(d.until), "stopped": when(d.stopped),
        "running": d.running(now), "duration_s": round(r.duration, 3), "passed": r.passed,
        "checks": [{"name": c.name, "passed": c.passed, "expected": c.expected,
                    "actual": _finite(c.actual)} for c in r.checks],
        "first_contact_s": r.first_contact,
        "kit": [{"offset_s": k.offset, "device": k.device, "reading": k.reading,
                 "old": k.old, "new": k.new} for k in r.kit],
        "contacts": [{"offset_s": c.offset, "device": c.device, "channel": c.channel,
                      "by": c.by, "ok": c.ok} for c in r.contacts],
        "at_start": _figures(r.at_start, when), "at_end": _figures(r.at_end, when),
        "burn_per_hour": dict(r.burn),
    }


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isinf(x) else x


def _figures(f: Figures | None, when: Callable[[float | None], str | None]) -> Any:
    if f is None:
        return None
    return {"at": when(f.at), "now_hours_lower": _finite(f.now_lower),
            "now_hours_upper": _finite(f.now_upper), "unbounded": math.isinf(f.now_lower),
            "scenario": f.scenario_ready, "channels": dict(f.channels),
            "levels": {k: dict(v) for k, v in f.levels.items()}}
