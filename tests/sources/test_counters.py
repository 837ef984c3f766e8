"""Counter rates across wraps and agent restarts (commsmon.sources.counters)."""

from __future__ import annotations

import pytest

from commsmon.sources.counters import UPTIME_WRAP_SECONDS, CounterRates, CounterSample, rate_between

S = CounterSample


@pytest.mark.parametrize(("prev", "cur", "bits", "rate"), [
    # plain increase, timed on sysUpTime (our clock saw 61 s, the agent 60 s)
    (S(100, 0.0, 1000.0), S(700, 61.0, 1060.0), 64, 10.0),
    # Counter32 wraps once: 4294967000 -> 704 is 1000
    (S(4294967000, 0.0, 8_640_000.0), S(704, 60.0, 8_640_060.0), 32, 1000 / 60),
    # Counter64 that falls while sysUpTime falls: agent restart, no rate
    (S(9_000_000_000_000, 0.0, 8_640_000.0), S(5000, 60.0, 30.0), 64, None),
    # Counter32 that "wraps" across a restart is no wrap either
    (S(4294967000, 0.0, 8_640_000.0), S(704, 60.0, 30.0), 32, None),
    # agent up for less time than since the last sample: restarted in between
    (S(100, 0.0, 20.0), S(900, 600.0, 500.0), 64, None),
    # a Counter64 that falls without a restart was reset
    (S(5000, 0.0, 100.0), S(10, 60.0, 160.0), 64, None),
    # sysUpTime wraps at 2**32 ticks (497 days) while our clock says 60 s: not a restart
    (S(100, 0.0, UPTIME_WRAP_SECONDS - 30), S(700, 60.0, 30.0), 64, 10.0),
    # same uptime twice (a stale agent cache): no time, no rate
    (S(100, 0.0, 50.0), S(100, 10.0, 50.0), 64, None),
    # no sysUpTime: our clock times it; a step back of our clock gives no rate
    (S(100, 0.0), S(700, 60.0), 64, 10.0),
    (S(100, 3600.0), S(700, 60.0), 64, None),
    # a step of our clock does not bend a rate timed on sysUpTime
    (S(100, 3600.0, 1000.0), S(700, 60.0, 1060.0), 64, 10.0),
])
def test_rate_between(prev: CounterSample, cur: CounterSample, bits: int,
                      rate: float | None) -> None:
    assert rate_between(prev, cur, bits) == (None if rate is None else pytest.approx(rate))


def test_restart_gives_a_new_baseline_not_a_stuck_counter() -> None:
    """After a restart the next interval has a rate again, from the new baseline."""
    rates = CounterRates()
    assert rates.update("r", "in", S(9_000_000_000_000, 0.0, 8_640_000.0), 64) is None
    assert rates.update("r", "in", S(9_000_000_006_000, 60.0, 8_640_060.0), 64) == 100.0
    assert rates.update("r", "in", S(5000, 120.0, 30.0), 64) is None
    assert rates.update("r", "in", S(11000, 180.0, 90.0), 64) == 100.0


def test_replayed_message_is_ignored_and_forget_drops_a_device() -> None:
    rates = CounterRates()
    rates.update("g", "hours", S(10, 100.0), 64)
    assert rates.update("g", "hours", S(5, 50.0), 64) is None  # older: ignored
    assert rates.update("g", "hours", S(16, 160.0), 64) == pytest.approx(0.1)
    rates.update("h", "hours", S(1, 1.0), 64)
    assert len(rates) == 2
    rates.forget("g")
    assert len(rates) == 1
    assert rates.update("g", "hours", S(20, 200.0), 64) is None  # a new baseline


def test_less_than_one_tick_is_no_time() -> None:
    """Two reads within one TimeTick (1/100 s) give no rate, not a near-infinite one."""
    assert rate_between(S(0, 0.0, 5e-324), S(2**63, 0.0, 1e-300), 64) is None
    assert rate_between(S(0, 0.0), S(10, 0.001), 64) is None
