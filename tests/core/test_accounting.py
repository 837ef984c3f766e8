"""The accounting rules on a hand-worked month: November 2026 in Asia/Shanghai.

November has 30 days = 720 h, from 2026-11-01 00:00+08:00 (2026-10-31 16:00 UTC) to
2026-12-01 00:00+08:00.

Village router A:
  up      10-31 20:00 .. 11-10 23:00   (clipped to 11-01 00:00: the month's boundary)
  down    11-10 23:00 .. 11-11 01:00   2 h, across midnight
  up      11-11 01:00 .. 11-20 00:00
  unknown 11-20 00:00 .. 11-20 06:00   6 h
  up      11-20 06:00 .. 12-01 02:00   (clipped at 12-01 00:00)
  maintenance 11-15 09:00 .. 12:00     3 h, excluded and listed
  monitor cut off 11-25 10:00 .. 10:30 0.5 h, counted apart
  up = 720 - 3 - 0.5 - 6 - 2 = 708.5 h; availability = 708.5 / (708.5 + 2) = 0.997185
Camera B, added 11-16 00:00, up since: 15 d = 360 h, less the cut-off 0.5 h = 359.5 h up;
  the first 15 days (360 h) not monitored; availability 1.0.
A device never watched: nothing judged: availability not known (None), not 0 nor 100 %.
Readiness (power) of the village: ready but for not_ready 11-10 23:00 .. 11-11 01:00 (2 h)
  and unknown 11-20 00:00 .. 06:00 (6 h): judged = 720 - 3 - 0.5 = 716.5 h, ready = 716.5
  - 2 - 6 = 708.5 h -> 98.883 %.
Check-in compliance, weekly (7 d) from 11-01: windows [1,8) [8,15) [15,22) [22,29) [29,1):
  due ceil(30 / 7) = 5; accepted calls 11-03, 11-04 (one window), 11-16, 11-30 (the
  partial last window), and 10-31 (before the month): 3 windows on time -> 3 / 5.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from commsmon.core.accounting import (
    RULES_TEXT,
    RULES_VERSION,
    Span,
    Window,
    availability,
    checkin_compliance,
    period,
    readiness,
    spans,
)

TZ = ZoneInfo("Asia/Shanghai")
H = 3600.0


def at(text: str) -> float:
    return datetime.fromisoformat(f"2026-{text}").replace(tzinfo=TZ).timestamp()


START, END = period("2026-11", TZ)
MAINTENANCE = [Window(at("11-15 09:00"), at("11-15 12:00"), "UPS 换电池")]
CUT_OFF = [Window(at("11-25 10:00"), at("11-25 10:30"), "broker")]
ROUTER = [Span(at("10-31 20:00"), at("11-10 23:00"), "up"),
          Span(at("11-10 23:00"), at("11-11 01:00"), "down"),
          Span(at("11-11 01:00"), at("11-20 00:00"), "up"),
          Span(at("11-20 00:00"), at("11-20 06:00"), "unknown"),
          Span(at("11-20 06:00"), at("12-01 02:00"), "up")]


def test_periods_are_calendar_months_quarters_and_years_in_the_district() -> None:
    assert (at("11-01 00:00"), at("12-01 00:00")) == (START, END)
    assert END - START == 720 * H
    assert period("2026-Q4", TZ) == (at("10-01 00:00"), datetime(2027, 1, 1, tzinfo=TZ)
                                     .timestamp())
    assert period("2026", TZ)[1] - period("2026", TZ)[0] == 365 * 24 * H
    for bad in ("2026-13", "2026-Q5", "26-11", "November"):
        with pytest.raises(ValueError, match="2026-Q4"):
            period(bad, TZ)


def test_availability_of_the_router() -> None:
    a = availability(ROUTER, START, END, MAINTENANCE, CUT_OFF)
    assert (a.up / H, a.down / H, a.unknown / H) == (708.5, 2.0, 6.0)
    assert (a.maintenance / H, a.cut_off / H, a.not_monitored, a.degraded) == (3.0, 0.5, 0, 0)
    assert a.ratio == pytest.approx(708.5 / 710.5)  # 0.997185


def test_a_device_added_mid_month() -> None:
    b = availability([Span(at("11-16 00:00"), at("12-01 00:00"), "up")], START, END,
                     cut_off=CUT_OFF)
    assert (b.up / H, b.not_monitored / H, b.ratio) == (359.5, 360.0, 1.0)
    nothing = availability([], START, END)
    assert nothing.ratio is None and nothing.not_monitored == 720 * H


def test_readiness_counts_unknown_as_judged_and_not_ready() -> None:
    verdicts = [Span(s.start, s.end, {"up": "ready", "down": "not_ready"}.get(s.state, s.state))
                for s in ROUTER]
    r = readiness(verdicts, START, END, MAINTENANCE, CUT_OFF)
    assert (r.ready / H, r.judged / H) == (708.5, 716.5)
    assert r.ratio == pytest.approx(708.5 / 716.5)  # 98.883 %


def test_checkin_compliance_by_weekly_windows() -> None:
    calls = [at("10-31 12:00"), at("11-03 10:00"), at("11-04 10:00"), at("11-16 09:00"),
             at("11-30 18:00")]
    c = checkin_compliance(calls, 7 * 24 * H, START, END)
    assert (c.on_time, c.due, c.ratio) == (3, 5, 0.6)


def test_the_rules_are_versioned_and_stated() -> None:
    assert RULES_VERSION == "commsmon-accounting-2"
    assert "Availability** = up / (up + degraded + down)" in RULES_TEXT
    assert "never as up" in RULES_TEXT


def test_spans_from_changes_and_restarts() -> None:
    """Changes as the store keeps them: a restart notes the state it first sees again
    (up at 12:00 after up at 10:00 continues the span)."""
    changes = [(at("11-02 10:00"), "up"), (at("11-02 11:00"), "down"),
               (at("11-02 11:30"), "up"), (at("11-02 12:00"), "up")]
    assert spans(changes, at("11-02 13:00")) == [
        Span(at("11-02 10:00"), at("11-02 11:00"), "up"),
        Span(at("11-02 11:00"), at("11-02 11:30"), "down"),
        Span(at("11-02 11:30"), at("11-02 13:00"), "up")]
    assert spans([], at("11-02 13:00")) == []
