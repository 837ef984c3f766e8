"""Rates from SNMP counters, across wraps and agent restarts (pure).

A Counter32 or Counter64 (RFC 2578 §7.1.6, §7.1.10) only means something as
the difference between two reads.  Between two samples of one counter:

- The time elapsed is read on the agent's own clock, ``sysUpTime``
  (1.3.6.1.2.1.1.3.0, TimeTicks in 1/100 s), when the poll fetched it, so a
  slow answer or a step of our clock does not bend the rate; else on ours.
- ``sysUpTime`` that falls, or that is smaller than the time since the
  previous sample, means the agent restarted in between (RFC 3418
  sysUpTime): its counters started again from zero, so the interval gives no
  rate and the new sample is the new baseline.  ``sysUpTime`` itself wraps
  after 2**32 ticks (about 497 days); a fall that our clock accounts for is
  that wrap, not a restart.
- A Counter32 that falls without a restart wrapped once at 2**32
  (``4294967000 -> 704`` is 1000).  Two wraps in one interval cannot be seen;
  poll fast links through their Counter64 (ifHCInOctets).
- A Counter64 that falls was reset (it would take centuries to wrap): no
  rate, new baseline.

So a rate is never negative and a restart never leaves a device without
rates for more than one interval.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UPTIME_WRAP_SECONDS", "CounterRates", "CounterSample", "rate_between"]

#: sysUpTime wraps at 2**32 TimeTicks of 1/100 s (RFC 2578 §7.1.8): about 497 days.
UPTIME_WRAP_SECONDS = 2**32 / 100
# Two clocks read the same interval a little differently (request latency,
# retries); a disagreement within this much is not a restart.
_SLACK_SECONDS = 2.0
_SLACK_RATIO = 0.1
_MIN_ELAPSED = 0.01  # one TimeTick: a shorter interval is no time to take a rate over


@dataclass(frozen=True, slots=True)
class CounterSample:
    """One read of a counter.

    Attributes:
        value: the counter, a non-negative integer below 2**bits.
        at: when it was read, seconds on our clock (monotonic for polls, the
            message timestamp for MQTT).
        uptime: the agent's sysUpTime in seconds at the same read, or
            ``None`` where there is none (MQTT, an agent without it).
    """

    value: int
    at: float
    uptime: float | None = None


def rate_between(prev: CounterSample, cur: CounterSample, bits: int) -> float | None:
    """Per-second increase of a ``bits``-bit counter from ``prev`` to ``cur``.

    Returns:
        The rate (units per second, >= 0), or ``None`` for an interval that
        gives none: an agent restart, a reset Counter64, no time elapsed, or
        samples out of order.
    """
    elapsed = _elapsed(prev, cur)
    if elapsed is None or elapsed < _MIN_ELAPSED:
        return None
    delta = cur.value - prev.value
    if delta < 0:
        if bits != 32:
            return None
        delta += 2**32
    return delta / elapsed


def _elapsed(prev: CounterSample, cur: CounterSample) -> float | None:
    """Seconds between the samples on the agent's clock; ``None`` across a restart."""
    ours = cur.at - prev.at
    if prev.uptime is None or cur.uptime is None:
        return ours
    slack = _SLACK_SECONDS + _SLACK_RATIO * abs(ours)
    theirs = cur.uptime - prev.uptime
    if theirs < 0:
        wrapped = theirs + UPTIME_WRAP_SECONDS
        return wrapped if abs(wrapped - ours) <= slack else None
    if cur.uptime < ours - slack:
        return None  # up for less time than since the last sample: restarted meanwhile
    return theirs


class CounterRates:
    """The last sample of every counter, turning each new sample into a rate.

    Memory: one sample per counter of each device that has counters.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, dict[str, CounterSample]] = {}

    def update(self, device: str, reading: str, sample: CounterSample, bits: int) -> float | None:
        """Record ``sample`` of ``device``'s counter ``reading``; the rate since the last one.

        The first sample of a counter gives ``None`` (a baseline).  A sample
        without uptime that is not newer than the last one (a replayed
        message) is ignored.
        """
        samples = self._last.setdefault(device, {})
        prev = samples.get(reading)
        if prev is not None and sample.uptime is None and sample.at <= prev.at:
            return None
        samples[reading] = sample
        return None if prev is None else rate_between(prev, sample, bits)

    def forget(self, device: str) -> None:
        """Drop every counter of ``device`` (removed, or its readings changed)."""
        self._last.pop(device, None)

    def __len__(self) -> int:
        return sum(len(samples) for samples in self._last.values())
