"""A device tracker's readings as snapshots see them: a view given out keeps what it
showed while the tracker moves on, and the maps most trackers never need are one
shared empty map, never written."""

from __future__ import annotations

import math
from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from commsmon.core.model import Device
from commsmon.core.state import DeviceTracker, TakenTogether
from commsmon.core.types import Observation

T0 = 1_764_400_000.0


def _ups() -> DeviceTracker:
    return DeviceTracker(Device("ups", "v01", "ups", "UPS", "snmp", "ups-rfc1628"))


def test_a_view_given_out_keeps_what_it_showed() -> None:
    tracker = _ups()
    tracker.observe(Observation("ups", T0, True, {"charge": 0.9, "input_line_bads": 1}))
    first = tracker.shared_readings()
    assert tracker.shared_readings() is first  # nothing changed: the same view
    tracker.observe(Observation("ups", T0 + 60, True, {"charge": 0.9}))  # the same value
    assert tracker.shared_readings() is first
    tracker.observe(Observation("ups", T0 + 120, True, {"charge": 0.8, "input_line_bads": 2}))
    second = tracker.shared_readings()
    assert dict(first) == {"charge": 0.9, "input_line_bads": 1}  # as it was given
    assert dict(second) == {"charge": 0.8, "input_line_bads": 2}
    tracker.observe(Observation("ups", T0 + 180, True, missing=frozenset({"charge"})))
    assert dict(second) == {"charge": 0.8, "input_line_bads": 2}
    assert dict(tracker.shared_readings()) == {"input_line_bads": 2}
    assert tracker.unavailable == {"charge": T0 + 180}
    assert tracker.rose_at == {"input_line_bads": T0 + 120}


def test_one_trackers_times_never_show_in_anothers() -> None:
    told, quiet = _ups(), _ups()
    told.observe(Observation("ups", T0, True, {"output_source": "battery"},
                             unconfirmed=True))  # a trap
    told.observe(Observation("ups", T0 + 1, True, {"input_line_bads": 3, "load": 0.3},
                             missing=frozenset({"x"})))
    told.observe(Observation("ups", T0 + 2, True, {"input_line_bads": 4, "load": 0.4}))
    assert told.unconfirmed == {"output_source": T0}
    # Only an event counter's rise is noted: a load going up is no event.
    assert told.unavailable == {"x": T0 + 1} and told.rose_at == {"input_line_bads": T0 + 2}
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
    told = tracker.shared_readings()
    tracker.observe(Observation("genset", T0 + 60, True,
                                {"mains_present": False, "running": True}))
    readings = tracker.shared_readings()
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


def test_readings_taken_together_share_one_time_and_read_as_a_map() -> None:
    """A poll naming every reading (values or missing) holds one time for all; a trap
    naming one reading makes the times differ (a map of its own); the next full poll
    brings them together again.  Each map given out keeps what it showed."""
    tracker = _ups()
    tracker.observe(Observation("ups", T0, True, {"charge": 0.9, "load": 0.3},
                                missing=frozenset({"runtime"})))
    first = tracker.reading_at
    assert isinstance(first, TakenTogether)
    assert dict(first) == {"charge": T0, "load": T0, "runtime": T0}
    assert first.get("charge") == first["load"] == T0 and first.get("rssi") is None
    assert "runtime" in first and "rssi" not in first and len(first) == 3
    tracker.observe(Observation("ups", T0 + 60, True, {"charge": 0.8, "load": 0.3},
                                missing=frozenset({"runtime"})))
    second = tracker.reading_at
    assert isinstance(second, TakenTogether) and second.names is first.names
    tracker.observe(Observation("ups", T0 + 90, True, {"output_source": "battery"},
                                unconfirmed=True))
    told = tracker.reading_at
    assert not isinstance(told, TakenTogether)
    assert told == {"charge": T0 + 60, "load": T0 + 60, "runtime": T0 + 60,
                    "output_source": T0 + 90}
    tracker.observe(Observation("ups", T0 + 120, True, {
        "charge": 0.8, "load": 0.3, "output_source": "battery"}, missing=frozenset({"runtime"})))
    assert isinstance(tracker.reading_at, TakenTogether)
    assert tracker.reading_at == dict.fromkeys(("charge", "load", "runtime", "output_source"),
                                               T0 + 120)
    assert dict(first) == {"charge": T0, "load": T0, "runtime": T0}  # as given out
    assert dict(second) == dict.fromkeys(("charge", "load", "runtime"), T0 + 60)


NAMES = ("charge", "load", "runtime", "output_source")


@given(st.lists(st.tuples(
    st.integers(-2, 6),  # seconds after the previous observation's time (back: a replay)
    st.sets(st.sampled_from(NAMES)),  # read
    st.sets(st.sampled_from(NAMES)),  # missing (those read too are read)
    st.booleans()),  # unconfirmed (a trap)
    max_size=12))
def test_each_reading_is_timed_by_the_newest_observation_naming_it(
        steps: list[tuple[int, set[str], set[str], bool]]) -> None:
    """Whatever the order, the tracker's times are those of a plain model: each reading
    at the newest observation that named it (read or missing; an older one changes
    nothing); every map given out keeps what it showed."""
    tracker, at = _ups(), T0
    model: dict[str, float] = {}
    given_out: list[tuple[Mapping[str, float], dict[str, float]]] = []
    for step, read, missing, unconfirmed in steps:
        at += step
        tracker.observe(Observation("ups", at, True, dict.fromkeys(read, 0.5),
                                    missing=frozenset(missing - read), unconfirmed=unconfirmed))
        for name in read | missing:
            if at >= model.get(name, -math.inf):
                model[name] = at
        assert dict(tracker.reading_at) == model
        given_out.append((tracker.reading_at, dict(model)))
    for times, shown in given_out:
        assert dict(times) == shown
