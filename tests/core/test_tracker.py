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


def test_a_reading_that_changes_type_but_compares_equal_takes_the_new_type() -> None:
    """A trap's varbind with no decode tells mains_present 0.0; the poll reads False
    (decode: bool).  0.0 == False, but the judgements ask `is False` (a generator
    running without mains is a power outage): the reading must become False, or the
    village reads ready through a cut.  The same for running 1.0, then True."""
    tracker = DeviceTracker(Device("genset", "v01", "generator", "发电机", "mqtt",
                                   "genset-gateway"))
    tracker.observe(Observation("genset", T0, True, {"mains_present": 0.0, "running": 1.0},
                                unconfirmed=True))
    told = tracker.frozen_readings()
    tracker.observe(Observation("genset", T0 + 60, True,
                                {"mains_present": False, "running": True}))
    readings = tracker.frozen_readings()
    assert readings["mains_present"] is False and readings["running"] is True
    assert told["mains_present"] == 0.0 and type(told["mains_present"]) is float


def test_a_copied_tracker_shares_the_empty_map_and_still_takes_times() -> None:
    import copy
    import pickle

    for again in (copy.deepcopy(_ups()), pickle.loads(pickle.dumps(_ups()))):
        assert again.unavailable is _ups().unavailable  # the one shared map
        again.observe(Observation("ups", T0, True, {"charge": 0.5},
                                  missing=frozenset({"runtime"})))
        assert again.unavailable == {"runtime": T0} and _ups().unavailable == {}
