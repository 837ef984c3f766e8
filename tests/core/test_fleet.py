"""Device state machine, time accounting, channels and reachability (pure core)."""

from __future__ import annotations

import pytest

from commsmon.core.facts import Fact
from commsmon.core.fleet import Fleet
from commsmon.core.model import Device, HealthRule, Inventory
from commsmon.core.types import Observation, State
from tests.core.smallfleet import small_inventory

T0 = 1_700_000_000.0


def ok(device: str, at: float, **readings: float | str | bool) -> Observation:
    return Observation(device, at, True, readings)


def fail(device: str, at: float, conclusive: bool = False) -> Observation:
    return Observation(device, at, False, conclusive=conclusive, error="no_answer")


@pytest.fixture
def fleet() -> Fleet:
    f = Fleet(small_inventory(), T0)
    f.set_source("mqtt", True, T0)
    return f


def test_never_seen_is_unknown(fleet: Fleet) -> None:
    """A device that never answered is unknown, not down."""
    snap = fleet.evaluate(T0 + 1)
    assert snap.devices["router"].state is State.UNKNOWN
    assert snap.devices["router"].reasons == (Fact("not_seen"),)
    assert snap.sites["v1"].reachable is None


def test_down_after_three_failures_not_two(fleet: Fleet) -> None:
    """Hysteresis: two failures keep a device up, the third takes it down."""
    fleet.observe(ok("router", T0))
    fleet.observe(fail("router", T0 + 10))
    fleet.observe(fail("router", T0 + 20))
    assert fleet.evaluate(T0 + 21).devices["router"].state is State.UP
    fleet.observe(fail("router", T0 + 30))
    assert fleet.evaluate(T0 + 31).devices["router"].state is State.DOWN


def test_back_up_after_two_successes(fleet: Fleet) -> None:
    """A down device needs up_after (2) consecutive answers to come back."""
    fleet.observe(ok("router", T0))
    for i in range(1, 4):
        fleet.observe(fail("router", T0 + i))
    fleet.observe(ok("router", T0 + 4))
    assert fleet.evaluate(T0 + 4).devices["router"].state is State.DOWN
    fleet.observe(fail("router", T0 + 5))  # a failure resets the count
    fleet.observe(ok("router", T0 + 6))
    assert fleet.evaluate(T0 + 6).devices["router"].state is State.DOWN
    fleet.observe(ok("router", T0 + 7))
    assert fleet.evaluate(T0 + 7).devices["router"].state is State.UP


def test_conclusive_failure_skips_hysteresis(fleet: Fleet) -> None:
    """An MQTT offline presence takes the device down at once."""
    fleet.observe(ok("pdt", T0))
    fleet.observe(fail("pdt", T0 + 1, conclusive=True))
    assert fleet.evaluate(T0 + 2).devices["pdt"].state is State.DOWN


def test_older_observation_does_not_change_state(fleet: Fleet) -> None:
    """A replayed old message never overrides a newer state."""
    fleet.observe(fail("pdt", T0 + 10, conclusive=True))
    fleet.observe(ok("pdt", T0 + 5))
    assert fleet.evaluate(T0 + 11).devices["pdt"].state is State.DOWN


def test_time_in_state_sums_to_elapsed(fleet: Fleet) -> None:
    """Seconds per state are time-weighted and add up to the elapsed time."""
    fleet.evaluate(T0 + 10)  # unknown for 10 s
    fleet.observe(ok("router", T0 + 10))
    fleet.evaluate(T0 + 10)  # time between evaluations goes to the state at the earlier one
    fleet.evaluate(T0 + 40)  # up for 30 s
    for i in range(3):
        fleet.observe(fail("router", T0 + 40 + i))
    fleet.evaluate(T0 + 43)  # still up for 3 s
    snap = fleet.evaluate(T0 + 100)  # down for 57 s
    seconds = snap.devices["router"].seconds_at(snap.at)
    assert seconds[State.UNKNOWN] == pytest.approx(10)
    assert seconds[State.UP] == pytest.approx(33)
    assert seconds[State.DOWN] == pytest.approx(57)
    assert sum(seconds.values()) == pytest.approx(100)


def test_clock_stepping_back_never_decreases_counters(fleet: Fleet) -> None:
    """A wall clock stepped back adds nothing rather than negative seconds."""
    fleet.observe(ok("router", T0))
    fleet.evaluate(T0)
    fleet.evaluate(T0 + 100)
    snap = fleet.evaluate(T0 - 3600)
    assert snap.devices["router"].seconds_at(snap.at)[State.UP] == pytest.approx(100)


def test_since_is_time_of_state_change(fleet: Fleet) -> None:
    """since marks the evaluation at which the state changed."""
    fleet.evaluate(T0 + 1)
    fleet.observe(ok("router", T0 + 5))
    fleet.evaluate(T0 + 6)
    assert fleet.evaluate(T0 + 60).devices["router"].since == T0 + 6


def test_child_of_down_parent_is_unknown(fleet: Fleet) -> None:
    """A camera behind a down router is unknown: not its fault."""
    fleet.observe(ok("router", T0))
    fleet.observe(ok("cam", T0))
    for i in range(1, 4):
        fleet.observe(fail("router", T0 + i))
        fleet.observe(fail("cam", T0 + i))
    cam = fleet.evaluate(T0 + 5).devices["cam"]
    assert cam.state is State.UNKNOWN
    assert cam.reasons == (Fact("behind_parent", {"device": "router", "name": "router",
                                                  "state": "down"}),)


def test_health_rule_makes_degraded(fleet: Fleet) -> None:
    """An answering device whose health rule fails is degraded, and still works."""
    fleet.observe(ok("sat", T0, battery=0.2))
    snap = fleet.evaluate(T0 + 1)
    assert snap.devices["sat"].state is State.DEGRADED
    (why,) = snap.devices["sat"].reasons
    assert (why.code, why.arg("reading"), why.arg("effect")) == ("health", "battery", "degraded")
    assert snap.sites["v1"].channels["satellite"].state is State.UP


def test_mqtt_link_loss_makes_devices_unknown(fleet: Fleet) -> None:
    """While the broker is unreachable, MQTT devices are unknown, not down."""
    fleet.observe(ok("sat", T0))
    fleet.set_source("mqtt", False, T0 + 1)
    snap = fleet.evaluate(T0 + 2)
    assert snap.devices["sat"].state is State.UNKNOWN
    assert snap.devices["router"].state is State.UNKNOWN  # SNMP: never seen
    fleet.set_source("mqtt", True, T0 + 3)
    assert fleet.evaluate(T0 + 4).devices["sat"].state is State.UP


def test_silent_pushed_device_goes_down_after_stale_after(fleet: Fleet) -> None:
    """No telemetry for stale_after seconds counts as a failure."""
    fleet.observe(ok("pdt", T0))
    assert fleet.evaluate(T0 + 299).devices["pdt"].state is State.UP
    assert fleet.evaluate(T0 + 301).devices["pdt"].state is State.DOWN


def test_silence_during_broker_outage_is_not_the_device_fault(fleet: Fleet) -> None:
    """Staleness counts from the last reconnect, not through the outage."""
    fleet.observe(ok("pdt", T0))
    fleet.set_source("mqtt", False, T0 + 100)
    fleet.evaluate(T0 + 200)
    fleet.set_source("mqtt", True, T0 + 250)
    assert fleet.evaluate(T0 + 500).devices["pdt"].state is State.UP
    assert fleet.evaluate(T0 + 551).devices["pdt"].state is State.DOWN


def _all_up(fleet: Fleet, at: float) -> None:
    for d in ("rpt", "router", "cam", "pdt", "sat"):
        fleet.observe(ok(d, at))


def test_site_reachable_while_one_channel_works(fleet: Fleet) -> None:
    """A village with any working channel is reachable; losing all isolates it."""
    _all_up(fleet, T0)
    snap = fleet.evaluate(T0 + 1)
    assert snap.sites["v1"].reachable is True
    assert snap.sites["v1"].state is State.UP
    for i in range(1, 4):
        fleet.observe(fail("router", T0 + i))
    fleet.observe(fail("sat", T0 + 4, conclusive=True))
    snap = fleet.evaluate(T0 + 5)
    assert snap.sites["v1"].state is State.DEGRADED
    assert snap.sites["v1"].reachable is True  # pdt370 still works
    fleet.observe(fail("pdt", T0 + 6, conclusive=True))
    snap = fleet.evaluate(T0 + 7)
    assert snap.sites["v1"].reachable is False
    assert snap.sites["v1"].state is State.DOWN


def test_down_repeater_takes_pdt370_away(fleet: Fleet) -> None:
    """pdt370 needs the district repeater: a working terminal is not enough."""
    _all_up(fleet, T0)
    for i in range(1, 4):
        fleet.observe(fail("rpt", T0 + i))
    channels = fleet.evaluate(T0 + 5).sites["v1"].channels
    assert channels["pdt370"].state is State.DOWN
    assert channels["public"].state is State.UP


def test_centre_without_channels_takes_device_state(fleet: Fleet) -> None:
    """The district centre has no channels; its state follows its devices."""
    fleet.observe(ok("rpt", T0))
    snap = fleet.evaluate(T0 + 1)
    assert snap.sites["centre"].state is State.UP
    assert snap.sites["centre"].reachable is None


def test_unknown_device_observation_is_refused(fleet: Fleet) -> None:
    """Observations for devices not in the inventory are refused, never added."""
    assert fleet.observe(ok("ghost", T0)) is False
    assert "ghost" not in fleet.evaluate(T0 + 1).devices


def test_every_site_silent_at_once_is_the_monitor(fleet: Fleet) -> None:
    """All sites silent together: the monitor is cut off, devices unknown, not down."""
    _all_up(fleet, T0)
    for d in ("rpt", "router", "cam"):
        for i in range(1, 4):
            fleet.observe(fail(d, T0 + i))
    for d in ("pdt", "sat"):
        fleet.observe(fail(d, T0 + 4, conclusive=True))
    snap = fleet.evaluate(T0 + 5)
    assert snap.cut_off == Fact("cut_off", {"sources": ()})  # every site went silent at once
    assert snap.devices["router"].state is State.UNKNOWN
    assert snap.sites["v1"].state is State.UNKNOWN
    assert snap.sites["v1"].reachable is None


def test_one_village_silent_is_not_the_monitor(fleet: Fleet) -> None:
    """A village going silent while the centre answers is the village's trouble."""
    _all_up(fleet, T0)
    for d in ("router", "cam"):
        for i in range(1, 4):
            fleet.observe(fail(d, T0 + i))
    for d in ("pdt", "sat"):
        fleet.observe(fail(d, T0 + 4, conclusive=True))
    snap = fleet.evaluate(T0 + 5)
    assert snap.cut_off is None
    assert snap.sites["v1"].reachable is False


def test_reconfigure_keeps_devices_that_stay(fleet: Fleet) -> None:
    """A reload: the router keeps state, since and seconds; the camera goes, a new one
    starts unknown; a changed definition applies (the router's new health rule)."""
    for t in (1, 2):
        fleet.observe(ok("router", T0 + t, cpu=0.9))
        fleet.observe(ok("cam", T0 + t))
    before = fleet.evaluate(T0 + 10)
    old = small_inventory()
    router = Device("router", "v1", "router", "router", "snmp", "router-mib2", channel="public",
                    health=(HealthRule("cpu", above=0.8, text={"zh": "CPU 忙", "en": "cpu busy"}),))
    cam2 = Device("cam2", "v1", "camera", "camera 2", "snmp", "hikvision-camera")
    devices = [router if d.id == "router" else d for d in old.devices.values() if d.id != "cam"]
    fleet.reconfigure(Inventory.build(list(old.sites.values()), [*devices, cam2]), T0 + 10)
    after = fleet.evaluate(T0 + 20)
    assert "cam" not in after.devices
    assert after.devices["cam2"].state is State.UNKNOWN
    kept = after.devices["router"]
    assert kept.state is State.DEGRADED  # same readings, new rule
    assert kept.seconds_at(after.at)[State.UP] == \
        before.devices["router"].seconds_at(before.at)[State.UP] + 10
    assert kept.readings["cpu"] == 0.9


def test_clock_stepping_back_an_hour_keeps_detecting(fleet: Fleet) -> None:
    """After the wall clock steps back an hour, new observations count (they are not
    taken for replays of older ones), no seconds are counted for the step, and the
    state-since time is never in the future."""
    for t in (0, 10, 20):
        fleet.observe(ok("router", T0 + t, uptime=100.0 + t))
    before = fleet.evaluate(T0 + 21)
    back = T0 + 21 - 3600
    fleet.evaluate(back)  # the first evaluation after the step
    for t in (10, 20, 30):
        fleet.observe(fail("router", back + t))
    snap = fleet.evaluate(back + 31)
    assert snap.devices["router"].state is State.DOWN
    assert snap.devices["router"].since <= back + 31
    assert sum(snap.devices["router"].seconds_at(snap.at).values()) == \
        pytest.approx(sum(before.devices["router"].seconds_at(before.at).values()) + 31)
    fleet.observe(ok("router", back + 40, uptime=5.0))
    fleet.observe(ok("router", back + 50, uptime=15.0))
    snap = fleet.evaluate(back + 51)
    assert snap.devices["router"].state is State.UP
    assert snap.devices["router"].readings["uptime"] == 15.0
