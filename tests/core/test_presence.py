"""Presence semantics in the core (issue 13, findings 1, 2, 9): a live birth is
believed at once, a retained message is the last known state only, a reconnect makes
presence-only devices relearn, and an agent rejecting our credentials is unmonitored.

Each case: what the device said, in order -> the state a careful duty officer would
expect, and why.
"""

from __future__ import annotations

from commsmon.core.facts import Fact
from commsmon.core.fleet import Fleet
from commsmon.core.model import Device, Inventory, Site
from commsmon.core.rules import AlertEngine, RuleSpec
from commsmon.core.types import Observation, State

T0 = 1_764_400_000.0


def _fleet() -> Fleet:
    """One village: a presence-only 4G camera (up_after 2, no stale_after) and a
    telemetry gateway (stale_after 180) and an SNMP router."""
    site = Site("v01", "占位村01", "山城街道")
    devices = [
        Device("cam", "v01", "camera", "4G 布控球", "mqtt", "camera-4g-presence",
               channel="public", up_after=2),
        Device("gw", "v01", "gateway", "发电机网关", "mqtt", "genset-gateway",
               stale_after=180.0),
        Device("router", "v01", "router", "4G 路由器", "snmp", "router-mib2",
               channel="public"),
    ]
    return Fleet(Inventory.build([site], devices), T0)


def _state(fleet: Fleet, device: str, at: float) -> tuple[State, tuple[str, ...]]:
    d = fleet.evaluate(at).devices[device]
    return d.state, tuple(f.code for f in d.reasons)


def test_live_birth_is_up_at_once() -> None:
    """offline (Will) then one live online: up now, not after up_after=2 messages --
    a presence-only device sends nothing more."""
    fleet = _fleet()
    fleet.observe(Observation("cam", T0 + 1, False, conclusive=True, error="offline"))
    assert _state(fleet, "cam", T0 + 2)[0] is State.DOWN
    fleet.observe(Observation("cam", T0 + 3, True, conclusive=True))
    assert _state(fleet, "cam", T0 + 4) == (State.UP, ())


def test_retained_online_is_last_known_only() -> None:
    """At start the broker replays a retained online of a camera that died: unknown,
    saying what was last known -- never up."""
    fleet = _fleet()
    fleet.observe(Observation("cam", T0 + 1, True, conclusive=True, retained=True))
    state, reasons = _state(fleet, "cam", T0 + 2)
    assert (state, reasons) == (State.UNKNOWN, ("retained",))
    reason = fleet.evaluate(T0 + 2).devices["cam"].reasons[0]
    assert reason == Fact("retained", {"online": True, "at": T0 + 1})


def test_retained_offline_then_live_telemetry_is_up() -> None:
    """A stale retained offline (a Will with retain) of a gateway that is back: fresh
    telemetry overrides it."""
    fleet = _fleet()
    fleet.observe(Observation("gw", T0 + 1, False, conclusive=True, error="offline",
                              retained=True))
    assert _state(fleet, "gw", T0 + 2)[0] is State.UNKNOWN
    fleet.observe(Observation("gw", T0 + 30, True, {"fuel": 0.5}))
    assert _state(fleet, "gw", T0 + 31) == (State.UP, ())


def test_retained_never_changes_a_live_state() -> None:
    """Up from live messages; a retained offline replayed on re-subscribe is old news."""
    fleet = _fleet()
    fleet.observe(Observation("gw", T0 + 1, True, {"fuel": 0.5}))
    fleet.observe(Observation("gw", T0 + 2, False, conclusive=True, error="offline",
                              retained=True))
    assert _state(fleet, "gw", T0 + 3)[0] is State.UP


def test_reconnect_relearns_presence_only_devices() -> None:
    """The broker came back: the camera (presence only) is unknown until the broker's
    retained view agrees with what we knew, or a live message; the gateway keeps its
    state (its telemetry will go stale if it died)."""
    fleet = _fleet()
    fleet.observe(Observation("cam", T0 + 1, True, conclusive=True))
    fleet.observe(Observation("gw", T0 + 1, True, {"fuel": 0.5}))
    fleet.set_source("mqtt", False, T0 + 10)
    fleet.set_source("mqtt", True, T0 + 20)
    assert _state(fleet, "cam", T0 + 21) == (State.UNKNOWN, ("relearning",))
    assert _state(fleet, "gw", T0 + 21)[0] is State.UP
    # A retained offline (the Will the broker published as it shut down) disagrees.
    fleet.observe(Observation("cam", T0 + 21, False, conclusive=True, error="offline",
                              retained=True))
    assert _state(fleet, "cam", T0 + 22) == (State.UNKNOWN, ("relearning", "retained"))
    # One live birth: back.
    fleet.observe(Observation("cam", T0 + 23, True, conclusive=True))
    assert _state(fleet, "cam", T0 + 24) == (State.UP, ())


def test_reconnect_with_agreeing_retained_restores() -> None:
    """Our own link blinked, the broker stayed: its retained online agrees: up again."""
    fleet = _fleet()
    fleet.observe(Observation("cam", T0 + 1, True, conclusive=True))
    fleet.set_source("mqtt", False, T0 + 10)
    fleet.set_source("mqtt", True, T0 + 20)
    fleet.observe(Observation("cam", T0 + 20, True, conclusive=True, retained=True))
    assert _state(fleet, "cam", T0 + 21) == (State.UP, ())


def test_auth_error_is_unmonitored_not_down_and_a_monitor_fault() -> None:
    """The router rejects our credentials (usmStatsWrongDigests) three polls running:
    not down (we do not know), unknown with the auth error, and a monitor_fault alert
    naming it; when the credentials work again the fault resolves."""
    fleet = _fleet()
    engine = AlertEngine({"monitor_fault": RuleSpec(0, "warning"),
                          "device_down": RuleSpec(0, "warning")})
    fleet.observe(Observation("router", T0 + 1, True))
    for i in range(3):
        fleet.observe(Observation("router", T0 + 60 * (i + 1), False, error="auth_error",
                                  detail="usmStatsWrongDigests"))
    snap = fleet.evaluate(T0 + 200)
    assert snap.devices["router"].state is State.UNKNOWN
    assert snap.devices["router"].reasons == (
        Fact("auth_error", {"detail": "usmStatsWrongDigests"}),)
    engine.update(snap)
    (alert,) = [a for a in engine.firing if a.rule == "monitor_fault"]
    assert alert.labels["fault"] == "snmp_auth:router"
    assert alert.facts[0].arg("device") == "router"
    assert not [a for a in engine.firing if a.rule == "device_down"]
    fleet.observe(Observation("router", T0 + 260, True))
    resolved = engine.update(fleet.evaluate(T0 + 261))
    assert [a.rule for a in resolved] == ["monitor_fault"]
    assert fleet.evaluate(T0 + 262).devices["router"].state is State.UP


def test_known_only_from_retained_then_silent_goes_down() -> None:
    """A gateway (stale_after 180 s) known only from a retained online, and silent since
    we subscribed: at 180 s still unknown (as a reading at its max age is fresh), at
    181 s down -- the silence is live evidence, the retained message was not."""
    fleet = _fleet()
    fleet.set_source("mqtt", True, T0)
    fleet.observe(Observation("gw", T0 + 1, True, retained=True))
    assert _state(fleet, "gw", T0 + 180)[0] is State.UNKNOWN
    assert _state(fleet, "gw", T0 + 181) == (State.DOWN, ("silent",))
