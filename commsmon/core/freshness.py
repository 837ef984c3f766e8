"""Which readings are still true now (DESIGN.md §3 "Freshness").

Every reading carries the time it was taken, and the device its ``max_age``
per reading (from the profile; by default three poll intervals for SNMP,
three expected telemetry periods for MQTT, the check-in validity for a
keeper's check-in).  A reading is fresh while its age is at most its
``max_age`` — a reading exactly ``max_age`` old still counts — and older ones
are not known: they drop out of every judgement (health rules, endurance,
outage evidence), and the reason gives their age.  Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from commsmon.core.model import Device
from commsmon.core.types import Reading

__all__ = ["fresh_readings", "fresh_until"]

_NONE: Mapping[str, float] = MappingProxyType({})


def fresh_readings(
    device: Device,
    readings: Mapping[str, Reading],
    taken_at: Mapping[str, float],
    now: float,
) -> tuple[Mapping[str, Reading], Mapping[str, float]]:
    """The readings of ``device`` fresh at ``now``, and the stale ones' ages.

    Args:
        device: the device (its ``max_age`` per reading, seconds).
        readings: its latest readings by name.
        taken_at: when each was taken, epoch seconds.
        now: epoch seconds.

    Returns:
        (fresh readings — ``readings`` itself when all are fresh — and
        reading name -> age in seconds for those older than their ``max_age``).
    """
    limits = device.max_age
    if not limits:
        return readings, _NONE
    stale = {}
    for name in readings:
        limit = limits.get(name)
        at = taken_at.get(name)
        if limit is not None and at is not None and now - at > limit:
            stale[name] = now - at
    if not stale:
        return readings, _NONE
    return {k: v for k, v in readings.items() if k not in stale}, stale


def fresh_until(device: Device, readings: Mapping[str, Reading],
                taken_at: Mapping[str, float]) -> float | None:
    """Epoch seconds the first of ``device``'s readings with a ``max_age`` stops being
    fresh (its time plus its ``max_age``: fresh up to that instant, stale after);
    ``None`` when none has a ``max_age``.  Arguments as :func:`fresh_readings`."""
    limits = device.max_age
    times = [at + limit for name in readings
             if (limit := limits.get(name)) is not None and (at := taken_at.get(name)) is not None]
    return min(times, default=None)
