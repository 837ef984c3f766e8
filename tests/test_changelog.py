"""The timeline's events between snapshots (commsmon.changelog): the log following the
incremental fleet, whose unchanged statuses are the same objects from one evaluation to
the next and are skipped, tells exactly what comparing every state of two consecutive
snapshots tells; and a village's morning worked by hand."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commsmon.changelog import ChangeLog
from commsmon.core.fleet import Fleet
from commsmon.core.model import Device, Inventory, Site
from commsmon.core.snapshot import Snapshot
from commsmon.core.types import Observation
from tests.core.smallfleet import small_inventory
from tests.core.test_incremental import T0, _apply, _subset, events


def _compared(before: Snapshot | None, after: Snapshot) -> list[tuple[str, ...]]:
    """Every state of ``after`` against ``before``'s, in the log's order."""
    def old(value: object) -> str:
        return "" if value is None else str(getattr(value, "value", value))
    out: list[tuple[str, ...]] = []
    for d, now in after.devices.items():
        was = before.devices[d].state if before and d in before.devices else None
        if was is not now.state:
            out.append(("device_state", d, old(was), now.state.value))
    for s, site in after.sites.items():
        prior = before.sites.get(s) if before else None
        if prior is None or prior.state is not site.state:
            out.append(("site_state", s, old(prior and prior.state), site.state.value))
        for c, ch in site.channels.items():
            was_ch = prior.channels.get(c) if prior else None
            if was_ch is None or was_ch.state is not ch.state:
                out.append(("channel_state", f"{s}/{c}", old(was_ch and was_ch.state),
                            ch.state.value))
        for name, r in site.scenarios.items():
            was_r = prior.scenarios.get(name) if prior else None
            if was_r is None or was_r.verdict != r.verdict:
                out.append(("readiness", f"{s}/{name}", old(was_r and was_r.verdict),
                            r.verdict))
        began = frozenset(prior.outages) if prior else frozenset()
        out += [("outage_start", k, "", "") for k in sorted(frozenset(site.outages) - began)]
        out += [("outage_end", k, "", "") for k in sorted(began - frozenset(site.outages))]
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.booleans(), min_size=14, max_size=14), st.lists(events, max_size=40),
       st.lists(st.booleans(), max_size=40))
def test_following_unchanged_statuses_by_identity_misses_no_change(
        keep: list[bool], steps: list[tuple[str, Any]], unread: list[bool]) -> None:
    """Also across reloads to other villages (one gone, one back: as first seen again),
    and when the log does not read some snapshots (``unread``): the next it reads is
    compared with the last it read."""
    inventory = _subset(keep)
    fleet, log = Fleet(inventory, T0), ChangeLog()
    before = None
    now = T0
    for n, event in enumerate(steps):
        if event[0] == "wait":
            now += event[1]
        elif event[0] == "reload":
            inventory = _subset(event[1])
            fleet.reconfigure(inventory, now)
        elif event[1] is None or event[0] not in ("observe", "checkin") or \
                event[1][0] in inventory.devices:
            _apply(fleet, event, now)
        snap = fleet.evaluate(now)
        if n < len(unread) and unread[n]:
            continue
        said = [(e.kind, e.subject, e.old, e.new) for e in log.events(snap)]
        assert said == _compared(before, snap), event
        before = snap


def _said(log: ChangeLog, fleet: Fleet, at: float) -> list[tuple[str, str, str, str]]:
    return [(e.kind, e.subject, e.old, e.new) for e in log.events(fleet.evaluate(at))]


def test_a_village_s_morning() -> None:
    """The small inventory (router, camera behind it, PDT terminal, satellite phone in
    v1; the repeater at the centre).  First evaluation: every state as first seen, old
    empty.  Nothing heard since: nothing to say.  The router answers twice (up_after 2):
    it is up, and the public channel with it, so v1 can reach the centre (degraded:
    one channel of three works)."""
    fleet, log = Fleet(small_inventory(), T0), ChangeLog()
    first = _said(log, fleet, T0)
    assert {old for _, _, old, _ in first} == {""}
    assert ("device_state", "router", "", "unknown") in first
    assert ("site_state", "v1", "", "unknown") in first
    assert ("channel_state", "v1/public", "", "unknown") in first
    assert len([e for e in first if e[0] == "device_state"]) == 5
    assert len([e for e in first if e[0] == "readiness"]) == 5 + 5  # v1's, the centre's
    assert _said(log, fleet, T0 + 1) == []
    for at in (T0 + 2, T0 + 3):
        fleet.observe(Observation("router", at, True, {}))
    said = _said(log, fleet, T0 + 3.5)
    assert [e for e in said if e[0] != "readiness"] == [
        ("device_state", "router", "unknown", "up"),
        ("site_state", "v1", "unknown", "degraded"),
        ("channel_state", "v1/public", "unknown", "up"),
    ]
    assert _said(log, fleet, T0 + 4) == []


def test_villages_alike_keep_one_states_object() -> None:
    """Three villages with a router each, every router up: what the timeline keeps of
    each village is equal, so it is one object.  v2's router goes down (an MQTT-like
    conclusive failure): v2 is isolated, said once, and keeps states of its own."""
    sites = [Site(f"v{n}", f"Village {n}", "town") for n in range(3)]
    routers = [Device(f"r{n}", f"v{n}", "router", "router", "snmp", "router-mib2",
                      channel="public") for n in range(3)]
    fleet, log = Fleet(Inventory.build(sites, routers), T0), ChangeLog()
    for at in (T0, T0 + 1):
        for n in range(3):
            fleet.observe(Observation(f"r{n}", at, True, {}))
    _said(log, fleet, T0 + 2)
    kept = log._sites
    assert kept["v0"] is kept["v1"] is kept["v2"] and kept["v0"].state.value == "up"
    fleet.observe(Observation("r2", T0 + 3, False, {}, conclusive=True))
    said = _said(log, fleet, T0 + 4)
    assert ("site_state", "v2", "up", "down") in said
    assert ("channel_state", "v2/public", "up", "down") in said
    assert kept["v0"] is kept["v1"] and kept["v2"] is not kept["v0"]
