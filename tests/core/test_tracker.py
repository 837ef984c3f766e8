"""A device tracker's readings as snapshots see them: a view given out keeps what it
showed while the tracker moves on, and the maps most trackers never need are one
shared empty map, never written."""

from __future__ import annotations

from commsmon.core.model import Device
from commsmon.core.state import DeviceTracker
from commsmon.core.types import Observation

T0 = 1_764_400_000.0


def _ups() -> DeviceTracker:
    return DeviceTracker(Device("ups", "v01", "ups", "UPS", "snmp", "ups-rfc1628"))


def test_a_view_given_out_keeps_what_it_showed() -> None:
    tracker = _ups()
    tracker.observe(Observation("ups", T0, True, {"charge": 0.9, "input_line_bads": 1}))
    first = tracker.frozen_readings()
    assert tracker.frozen_readings() is first  # nothing changed: the same view
    tracker.observe(Observation("ups", T0 + 60, True, {"charge": 0.9}))  # the same value
    assert tracker.frozen_readings() is first
    tracker.observe(Observation("ups", T0 + 120, True, {"charge": 0.8, "input_line_bads": 2}))
    second = tracker.frozen_readings()
    assert dict(first) == {"charge": 0.9, "input_line_bads": 1}  # as it was given
    assert dict(second) == {"charge": 0.8, "input_line_bads": 2}
    tracker.observe(Observation("ups", T0 + 180, True, missing=frozenset({"charge"})))
    assert dict(second) == {"charge": 0.8, "input_line_bads": 2}
    assert dict(tracker.frozen_readings()) == {"input_line_bads": 2}
    assert tracker.unavailable == {"charge": T0 + 180}
    assert tracker.rose_at == {"input_line_bads": T0 + 120}


def test_one_trackers_times_never_show_in_anothers() -> None:
    told, quiet = _ups(), _ups()
    told.observe(Observation("ups", T0, True, {"output_source": "battery"},
                             unconfirmed=True))  # a trap
    told.observe(Observation("ups", T0 + 1, True, {"load": 3.0}, missing=frozenset({"x"})))
    told.observe(Observation("ups", T0 + 2, True, {"load": 4.0}))
    assert told.unconfirmed == {"output_source": T0}
    assert told.unavailable == {"x": T0 + 1} and told.rose_at == {"load": T0 + 2}
    assert quiet.unconfirmed == {} and quiet.unavailable == {} and quiet.rose_at == {}
    assert _ups().unconfirmed == {}
