"""Observations handed between shards over the broker (DESIGN.md §7).

One compact JSON object per observation on ``<topic_prefix>/_shard/<index>``,
QoS 1, read by that shard's persistent session:
``{"d": device, "t": epoch s, "ok": bool, "r": {reading: value}, "c": bool, "e": failure,
"x": detail, "m": [missing reading], "k": retained, "u": unconfirmed}``.
"""

from __future__ import annotations

import json
import math
from typing import Any, cast

from commsmon.core.types import FAILURES, Failure, Observation, Reading

__all__ = ["decode", "encode", "inbox"]


def inbox(topic_prefix: str, shard: int) -> str:
    """The topic shard ``shard`` reads its peers' observations from."""
    return f"{topic_prefix}/_shard/{shard}"


def encode(obs: Observation) -> bytes:
    """``obs`` as the compact JSON above (non-finite readings are left out)."""
    readings = {
        k: v for k, v in obs.readings.items() if not isinstance(v, float) or math.isfinite(v)
    }
    body: dict[str, Any] = {"d": obs.device, "t": obs.at, "ok": obs.reachable, "r": readings}
    if obs.conclusive:
        body["c"] = True
    if obs.error:
        body["e"] = obs.error
    if obs.detail:
        body["x"] = obs.detail
    if obs.missing:
        body["m"] = sorted(obs.missing)
    if obs.retained:
        body["k"] = True
    if obs.unconfirmed:
        body["u"] = True
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def decode(payload: bytes) -> Observation:
    """The observation in ``payload``.

    Raises:
        ValueError: not the JSON object :func:`encode` writes.
    """
    body = json.loads(payload)
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    device, at, ok, readings = body.get("d"), body.get("t"), body.get("ok"), body.get("r", {})
    if not isinstance(device, str) or not isinstance(ok, bool):
        raise ValueError("'d' must be a device id and 'ok' a boolean")
    if isinstance(at, bool) or not isinstance(at, int | float) or not isinstance(readings, dict):
        raise ValueError("'t' must be epoch seconds and 'r' an object")
    values: dict[str, Reading] = {}
    for name, value in readings.items():
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, float | str | bool):
            raise ValueError(f"reading {name!r} is not a number, text or boolean")
        values[name] = value
    error, detail, missing = body.get("e"), body.get("x", ""), body.get("m", [])
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        raise ValueError("'m' must be a list of reading names")
    return Observation(device, float(at), ok, values, conclusive=body.get("c") is True,
                       error=_failure(error, ok), detail=detail if isinstance(detail, str) else "",
                       missing=frozenset(missing), retained=body.get("k") is True,
                       unconfirmed=body.get("u") is True)


def _failure(error: Any, ok: bool) -> Failure | None:
    """A failure a peer named; one this version does not know is a plain no-answer."""
    if ok:
        return None
    return cast(Failure, error) if error in FAILURES else "no_answer"
