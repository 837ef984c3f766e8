"""Incremental evaluation equals a full one, at every step (hypothesis, differential).

Two fleets over the same inventory take the same random events — observations with
readings from each device's profile, check-ins with a battery charge, roads declared
and cleared, the MQTT link lost and back, retained messages, traps, late messages,
the trap receiver bound and lost, time passing across readings' ``max_age``, check-ins'
validity and trap paths' silence, the wall clock stepping back, reloads to other
villages — and evaluate after each.  One keeps the judgements whose
inputs did not change (:mod:`commsmon.core.memo`), the other judges everything;
their snapshots must be equal, field by field, every time.  So must the alert rules
on them: an engine that skips devices and sites whose status is unchanged against one
that looks at every candidate (pending, firing and resolved alerts, facts and timers).
The fleets are the demo district and random subsets of its villages (the centre they
depend on always kept; some checking their trap path), loaded through the real
configuration loader.  Whether the monitor is cut off, which both fleets keep as counts,
is checked against a walk over every device.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commsmon.config.load import load_config
from commsmon.core.facts import DerivedFact, Fact
from commsmon.core.fleet import Fleet
from commsmon.core.model import Inventory
from commsmon.core.outages import Declaration
from commsmon.core.rules import AlertEngine, facts_to_json
from commsmon.core.snapshot import Snapshot
from commsmon.core.types import WORKING, CheckIn, Observation, Reading, State

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = load_config(ROOT / "config" / "demo.yaml")
INVENTORY = CONFIG.inventory()
T0 = 1_780_000_000.0

# Each device's readings and the values they may take: numbers around the profile's
# health thresholds, enum words, booleans.
_VALUES: dict[str, list[tuple[str, list[Reading]]]] = {}
for _site, _spec in CONFIG.devices():
    profile = CONFIG.profiles.get(_spec.profile or "")
    readings: list[tuple[str, list[Reading]]] = []
    for name, rs in (profile.readings if profile else {}).items():
        if rs.enum:
            readings.append((name, sorted({str(v) for v in rs.enum.values()})))
        elif rs.decode == "bool":
            readings.append((name, [True, False]))
        else:
            readings.append((name, [0.0, 0.05, 0.2, 0.5, 1.0, 3.0, 12.0, 30.0, 80.0, 100.0,
                                    240.0, -1.0]))
    _VALUES[_spec.id] = readings


def _subset(keep: Sequence[bool], traps: Sequence[bool] = ()) -> Inventory:
    """The demo district with the villages ``keep`` says, those ``traps`` says checking
    their trap path (``trap_every`` 900 s)."""
    villages = sorted(s for s, site in INVENTORY.sites.items() if site.role == "village")
    dropped = {v for v, k in zip(villages, keep, strict=False) if not k}
    checked = {v for v, t in zip(villages, traps, strict=False) if t}
    return Inventory.build(
        [replace(site, trap_every=900.0) if s in checked else site
         for s, site in INVENTORY.sites.items() if s not in dropped],
        [dev for dev in INVENTORY.devices.values() if dev.site not in dropped])


devices = st.sampled_from(sorted(INVENTORY.devices))
checkin_devices = st.sampled_from(sorted(d for d, dev in INVENTORY.devices.items()
                                         if dev.source == "checkin"))
sites = st.sampled_from(sorted(INVENTORY.sites))


@st.composite
def observation(draw: st.DrawFn) -> tuple[str, Any]:
    device = draw(devices)
    chosen = draw(st.lists(st.sampled_from(_VALUES[device]), max_size=4)
                  if _VALUES[device] else st.just([]))
    values = {name: draw(st.sampled_from(options)) for name, options in chosen}
    missing = frozenset(draw(st.lists(st.sampled_from([n for n, _ in _VALUES[device]]),
                                      max_size=2)) if _VALUES[device] else ())
    # live, a retained message replayed at subscribe, or a trap; now or late
    how = draw(st.sampled_from(["live", "live", "retained", "trap"]))
    late = draw(st.sampled_from([0.0, 0.0, 5.0, 200.0]))
    return ("observe", (device, draw(st.booleans()), values, draw(st.booleans()),
                        missing - values.keys(), how, late))


events = st.one_of(
    observation(),
    st.tuples(st.just("checkin"), st.tuples(
        checkin_devices, st.booleans(), st.one_of(st.none(), st.floats(0, 1)))),
    st.tuples(st.just("declare"), st.tuples(sites, st.sampled_from([None, 60.0, 3600.0]))),
    st.tuples(st.just("clear"), sites),
    st.tuples(st.just("mqtt"), st.booleans()),
    st.tuples(st.just("wait"), st.sampled_from([0.0, 0.001, 1.0, 30.0, 59.0, 60.0, 61.0,
                                                 120.0, 180.0, 600.0, 3600.0, 86_400.0,
                                                 3 * 86_400.0])),
    # the wall clock stepped back (NTP, an operator)
    st.tuples(st.just("wait"), st.sampled_from([-1.0, -3600.0])),
    # the trap receiver bound or lost; a reload to other villages; every device failing
    # or answering at once (the monitor's own link lost, and back)
    st.tuples(st.just("listen"), st.booleans()),
    st.tuples(st.just("all"), st.booleans()),
    st.tuples(st.just("reload"), st.lists(st.booleans(), min_size=14, max_size=14)),
)


def _apply(fleet: Fleet, event: tuple[str, Any], now: float) -> None:
    kind, arg = event
    if kind == "observe":
        device, reachable, values, conclusive, missing, how, late = arg
        fleet.observe(Observation(device, now - late, reachable or how == "trap",
                                  values if reachable or how == "trap" else {},
                                  conclusive=conclusive and how == "live",
                                  missing=missing if reachable else frozenset(),
                                  retained=how == "retained", unconfirmed=how == "trap"))
    elif kind == "checkin":
        device, ok, charge = arg
        fleet.checkin(CheckIn(device, now, ok, charge=charge))
    elif kind == "declare":
        site, lasts = arg
        fleet.declare(Declaration(site, "road", now, None if lasts is None else now + lasts))
    elif kind == "clear":
        fleet.clear(arg, "road")
    elif kind == "mqtt":
        fleet.set_source("mqtt", arg, now)
    elif kind == "listen":
        fleet.set_traps_listening(arg, now)
    elif kind == "all":
        for device in fleet.inventory.devices:
            fleet.observe(Observation(device, now, arg, {}, conclusive=True))


# INCREMENTAL_EXAMPLES=3000 for a longer search (about a minute).
EXAMPLES = int(os.environ.get("INCREMENTAL_EXAMPLES", "200"))


def _blind_by_walk(fleet: Fleet) -> bool:
    """The cut-off check as a walk over every device (the fleet keeps it as counts):
    no device working, and devices down at two sites or more."""
    states = [[fleet._judged[d][0] for d in ids]
              for ids in fleet.inventory.devices_by_site.values()]
    return sum(State.DOWN in site for site in states) >= 2 \
        and not any(s in WORKING for site in states for s in site)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.booleans(), min_size=14, max_size=14),
       st.lists(st.booleans(), min_size=14, max_size=14), st.lists(events, max_size=40),
       st.lists(st.booleans(), max_size=40))
def test_incremental_evaluation_equals_a_full_one(keep: list[bool], traps: list[bool],
                                                   steps: list[tuple[str, Any]],
                                                   unread: list[bool]) -> None:
    """The alert rules also when they do not read some snapshots (``unread``: the next
    one tells what changed since the one before it, not since the last they read)."""
    inventory = _subset(keep, traps)
    incremental = Fleet(inventory, T0)
    full = Fleet(inventory, T0, incremental=False)
    rules, every_rule = AlertEngine(), AlertEngine(incremental=False)
    now = T0
    for n, event in enumerate(steps):
        if event[0] == "wait":
            now += event[1]
        elif event[0] == "reload":
            inventory = _subset(event[1], traps)
            for fleet in (incremental, full):
                fleet.reconfigure(inventory, now)
        else:
            for fleet in (incremental, full):
                if event[1] is None or event[0] not in ("observe", "checkin") or \
                        event[1][0] in inventory.devices:
                    _apply(fleet, event, now)
        snap = incremental.evaluate(now)
        assert snap == full.evaluate(now), event
        assert (snap.cut_off == Fact("cut_off", {"sources": ()})) is _blind_by_walk(full)
        if n < len(unread) and unread[n]:
            continue
        assert rules.update(snap) == every_rule.update(snap), event
        assert list(rules.dump()) == list(every_rule.dump()), event


def test_an_unchanged_fleet_is_not_judged_again() -> None:
    """The point of it: a steady fleet's second evaluation keeps every site's scenarios
    and every device's endurance, and still equals the full one; each site's status is
    the same object, not even looked at again."""
    incremental = Fleet(INVENTORY, T0)
    full = Fleet(INVENTORY, T0, incremental=False)
    for fleet in (incremental, full):
        for device in INVENTORY.devices:
            fleet.observe(Observation(device, T0, True, {}))
    first = incremental.evaluate(T0 + 1)
    assert first == full.evaluate(T0 + 1)
    judged = incremental._scenarios.judged
    second = incremental.evaluate(T0 + 2)
    assert second == full.evaluate(T0 + 2)
    assert incremental._scenarios.judged == judged  # nothing judged again
    assert incremental._scenarios.kept == 0  # nor asked for
    assert all(second.sites[s] is first.sites[s] for s in INVENTORY.sites)


def test_the_district_repeater_down_takes_every_village_s_pdt_channel() -> None:
    """A device of one site read by others' channels (the repeater every village's PDT
    terminal depends on): when it alone changes, those villages are judged again."""
    incremental = Fleet(INVENTORY, T0)
    full = Fleet(INVENTORY, T0, incremental=False)
    for fleet in (incremental, full):
        for device in INVENTORY.devices:
            fleet.observe(Observation(device, T0, True, {}))
        fleet.evaluate(T0 + 1)
        fleet.observe(Observation("centre-rpt1", T0 + 2, False, {}, conclusive=True))
    snap = incremental.evaluate(T0 + 3)
    assert snap == full.evaluate(T0 + 3)
    pdt = [s for s in snap.sites.values() if "pdt370" in s.channels]
    assert len(pdt) >= 10
    assert all(s.channels["pdt370"].state is State.DOWN for s in pdt)


def test_a_trap_path_falls_silent_with_the_clock_alone() -> None:
    """Worked by hand on v01 given trap_every 900 s (silent past 2 x 900 = 1800 s),
    listening since T0, its router's test trap heard at T0+10, every device answering
    at T0+10 and nothing heard after:
    - T0+20: the trap 10 s old: up;
    - T0+1810: 1800 s old, exactly twice the period: still up;
    - T0+1810.5: 1800.5 s > 1800: down, though nothing touched the fleet in the half
      second (no reading's max_age or device's stale_after falls in it).
    Each evaluation equals a full one."""
    sites = [replace(site, trap_every=900.0) if s == "v01" else site
             for s, site in INVENTORY.sites.items()]
    inventory = Inventory.build(sites, list(INVENTORY.devices.values()))
    incremental = Fleet(inventory, T0)
    full = Fleet(inventory, T0, incremental=False)
    for fleet in (incremental, full):
        fleet.set_traps_listening(True, T0)
        for device in inventory.devices:
            fleet.observe(Observation(device, T0 + 10, True, {}))
        fleet.observe(Observation("v01-router", T0 + 10, True, {}, unconfirmed=True))
    path = []
    for at in (T0 + 20, T0 + 1810, T0 + 1810.5):
        snap = incremental.evaluate(at)
        assert snap == full.evaluate(at)
        path.append(snap.sites["v01"])
    assert [p.trap_path.state for p in path if p.trap_path] == [State.UP, State.UP,
                                                                State.DOWN]


def test_the_cut_off_check_counts_what_is_down_now() -> None:
    """The monitor counts itself cut off when no device works and devices at two sites
    or more are down; it keeps those counts as states change, not by a walk over the
    fleet.  Worked by hand, nothing else heard (every other device unknown):
    - T0: the centre's genset gateway reports over MQTT: up (one device working);
    - T0+181: silent 181 s > its stale_after 180 s: down; sites with a device down: the
      centre, 1 < 2: not cut off;
    - T0+182: the MQTT link is lost: the gateway is unknown (down at no site now), the
      link's loss is a cut-off of its own (sources: mqtt), not blindness;
    - T0+183..185: v01's router fails three polls: down.  Sites with a device down:
      v01 alone, 1 < 2: the router is down, not "unknown, monitor blind" (a count
      that kept the centre would make it two, and hide a village's failure)."""
    fleet = Fleet(INVENTORY, T0)
    fleet.set_source("mqtt", True, T0)
    fleet.observe(Observation("centre-genset", T0, True, {}))
    assert fleet.evaluate(T0 + 1).devices["centre-genset"].state is State.UP
    snap = fleet.evaluate(T0 + 181)
    assert snap.devices["centre-genset"].state is State.DOWN and snap.cut_off is None
    fleet.set_source("mqtt", False, T0 + 182)
    for i in range(3):
        fleet.observe(Observation("v01-router", T0 + 183 + i, False, {}))
    snap = fleet.evaluate(T0 + 186)
    assert snap.devices["centre-genset"].state is State.UNKNOWN
    assert snap.devices["v01-router"].state is State.DOWN
    assert snap.devices["v01-router"].reasons == (Fact("no_answer"),)
    assert snap.cut_off == Fact("cut_off", {"sources": ("mqtt",)})


def test_changes_that_fall_due_with_nothing_heard() -> None:
    """Worked by hand on v01 (readings' max_age 30 s for its UPS, stale_after 180 s for
    its genset gateway), every device heard at T0 and nothing after:
    - T0+30: the UPS's "on battery" is exactly 30 s old, still counts: v01's mains is
      out (power outage);
    - T0+30.5: it is 30.5 s old, past its max_age: not known any more, so no evidence
      of a power outage; the UPS shows it stale, 30.5 s old;
    - T0+180: the genset gateway has been silent exactly 180 s: still up;
    - T0+180.5: silent 180.5 s > 180: down ("silent").
    Each evaluation equals a full one, though nothing touched the fleet in between."""
    incremental = Fleet(INVENTORY, T0)
    full = Fleet(INVENTORY, T0, incremental=False)
    for fleet in (incremental, full):
        fleet.set_source("mqtt", True, T0)
        for device in INVENTORY.devices:
            fleet.observe(Observation(device, T0, True, {}))
        fleet.observe(Observation("v01-ups", T0, True, {"output_source": "battery"}))
        fleet.evaluate(T0)
    snaps = {}
    for at in (30.0, 30.5, 180.0, 180.5):
        snaps[at] = incremental.evaluate(T0 + at)
        assert snaps[at] == full.evaluate(T0 + at), at
    assert "power" in snaps[30.0].sites["v01"].outages
    assert "power" not in snaps[30.5].sites["v01"].outages
    assert snaps[30.5].devices["v01-ups"].stale == {"output_source": 30.5}
    assert snaps[180.0].devices["v01-genset"].state is State.UP
    genset = snaps[180.5].devices["v01-genset"]
    assert genset.state is State.DOWN
    assert genset.reasons[0].code == "silent"


def test_a_reading_no_judgement_reads_re_judges_no_site() -> None:
    """v01's PDT terminal reports a new RSSI and nothing else changed: the RSSI decides
    nothing beyond the terminal's own state (its profile's health rules), so no
    village's scenarios are judged again; the terminal's status shows the new value,
    and the snapshot equals a full evaluation.  A weak signal (below the profile's
    threshold) changes the terminal's state, and v01 is judged again."""
    incremental = Fleet(INVENTORY, T0)
    full = Fleet(INVENTORY, T0, incremental=False)
    for fleet in (incremental, full):
        for device in INVENTORY.devices:
            fleet.observe(Observation(device, T0, True, {}))
        fleet.observe(Observation("v01-pdt", T0, True, {"rssi": -85.0, "charge": 0.9}))
        fleet.evaluate(T0 + 1)
        fleet.observe(Observation("v01-pdt", T0 + 2, True, {"rssi": -88.0, "charge": 0.9}))
    judged = incremental._scenarios.judged
    snap = incremental.evaluate(T0 + 3)
    assert snap == full.evaluate(T0 + 3)
    assert incremental._scenarios.judged == judged
    assert snap.devices["v01-pdt"].readings["rssi"] == -88.0
    for fleet in (incremental, full):
        fleet.observe(Observation("v01-pdt", T0 + 4, True, {"rssi": WEAK, "charge": 0.9}))
    snap = incremental.evaluate(T0 + 5)
    assert snap == full.evaluate(T0 + 5)
    assert snap.devices["v01-pdt"].state is not State.UP
    assert incremental._scenarios.judged == judged + 1  # v01 alone


WEAK = -115.0  # dBm: below the profile's -110, "PDT 信号弱", degraded


def test_every_reading_the_core_names_is_judged() -> None:
    """Views keep only the readings in JUDGED: a reading name the core imports to read
    and left out of JUDGED would be invisible to its judgements."""
    import ast

    from commsmon.core import readings

    named = set()
    for path in (ROOT / "commsmon" / "core").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "commsmon.core.readings":
                named |= {a.name for a in node.names}
    constants = {n for n in named if isinstance(getattr(readings, n), str)}
    assert constants
    assert {getattr(readings, n) for n in constants} <= readings.JUDGED


def test_a_stale_reading_no_judgement_reads_is_still_shown_stale() -> None:
    """Views keep only the readings judgements read, but what an officer sees of a
    device keeps every reading: v01's terminal last sent its RSSI longer ago than its
    max_age (then only its charge): the status shows the RSSI stale, with its age."""
    limit = INVENTORY.devices["v01-pdt"].max_age["rssi"]
    fleet = Fleet(INVENTORY, T0)
    for device in INVENTORY.devices:
        fleet.observe(Observation(device, T0, True, {}))
    fleet.observe(Observation("v01-pdt", T0, True, {"rssi": -85.0, "charge": 0.9}))
    fleet.evaluate(T0 + 1)
    fleet.observe(Observation("v01-pdt", T0 + limit + 10, True, {"charge": 0.9}))
    snap = fleet.evaluate(T0 + limit + 10)
    assert snap.devices["v01-pdt"].stale == {"rssi": limit + 10}


def _rules_on(fleet: Fleet, rules: AlertEngine | None = None
              ) -> Callable[[float], tuple[Snapshot, list[dict[str, Any]]]]:
    """Evaluate ``fleet`` at a time and run ``rules`` (an incremental engine by default)
    and one looking at every candidate on it (they must agree): the snapshot, and
    their memory of pending and firing alerts."""
    rules, every_rule = rules or AlertEngine(), AlertEngine(incremental=False)

    def step(at: float) -> tuple[Snapshot, list[dict[str, Any]]]:
        snap = fleet.evaluate(at)
        assert rules.update(snap) == every_rule.update(snap)
        memory = list(rules.dump())
        assert memory == list(every_rule.dump())
        return snap, memory

    return step


def test_an_unchanged_device_s_alert_fires_after_its_for() -> None:
    """v03's router answers three polls and its camera, behind it, fails three
    (down_after 3): down at T0+2.5, device_down pending since then.  Nothing more is
    heard of it, so its status stays the same object and the rules skip its
    candidates; the alert still fires when it has held its ``for`` (300 s): pending
    at T0+302.499 (299.999 s), firing at T0+302.5 (300.0 s: a condition that held
    exactly its ``for`` fires)."""
    fleet = Fleet(INVENTORY, T0)
    for i in range(3):
        fleet.observe(Observation("v03-router", T0 + i, True, {}))
        fleet.observe(Observation("v03-cam1", T0 + i, False, {}, conclusive=True))
    step = _rules_on(fleet)

    def camera(at: float) -> tuple[Any, dict[str, bool]]:
        snap, memory = step(at)
        return snap.devices["v03-cam1"], {
            a["rule"]: a["firing"] for a in memory if a["labels"].get("device") == "v03-cam1"}

    down, alerts = camera(T0 + 2.5)
    assert down.state is State.DOWN and alerts == {"device_down": False}
    still, alerts = camera(T0 + 302.499)
    assert still is down and alerts == {"device_down": False}
    _, alerts = camera(T0 + 302.5)
    assert alerts == {"device_down": True}


def test_an_unchanged_site_s_alert_fires_after_its_for() -> None:
    """v03's satellite phone answers three times and its router fails three polls
    (down_after 3): at T0+2.5 the public channel is down while the satellite works
    (the village degraded, reachable), site_channel_lost pending since then.  Nothing
    more is heard, so the site's status stays the same object and the rules skip its
    candidates; the alert still fires when it has held its ``for`` (300 s): pending at
    T0+302.499 (299.999 s), firing at T0+302.5 (300.0 s)."""
    fleet = Fleet(INVENTORY, T0)
    for i in range(3):
        fleet.observe(Observation("v03-satphone", T0 + i, True, {}))
        fleet.observe(Observation("v03-router", T0 + i, False, {}, conclusive=True))
    step = _rules_on(fleet)

    def village(at: float) -> tuple[Any, dict[str, bool]]:
        snap, memory = step(at)
        return snap.sites["v03"], {
            a["rule"]: a["firing"] for a in memory
            if a["labels"].get("site") == "v03" and a["rule"].startswith("site_")}

    lost, alerts = village(T0 + 2.5)
    assert lost.state is State.DEGRADED and lost.channels["public"].state is State.DOWN
    assert alerts == {"site_channel_lost": False}
    still, alerts = village(T0 + 302.499)
    assert still is lost and alerts == {"site_channel_lost": False}
    _, alerts = village(T0 + 302.5)
    assert alerts == {"site_channel_lost": True}


def test_a_device_answering_with_new_readings_is_not_judged_again() -> None:
    """v03's router fails three polls while its satellite phone answers (public down,
    the village reachable by satellite).  At T0+2.5 five alerts are pending: the
    router's device_down and site_channel_lost (``for`` 300 s), outage_active network
    (60 s), scenario_not_ready power and all (3600 s: the phone never reported its
    charge, so its 60 h battery is not certain).  The phone then reports every 60 s,
    its signal 3 bars, then 4, 3, 4, 3: its status is a new object each time (new
    readings, a new last answer), but what the rules read of it (its state, since
    when, its reasons) is the same, so neither it nor v03, whose satellite channel it
    provides, has its candidates taken again.  The alerts still fire when they have
    held their ``for``, as a full engine says: the outage at T0+62.5 (60.0 s), the
    router and the channel at T0+302.5 (300.0 s); the scenarios stay pending."""
    fleet = Fleet(INVENTORY, T0)
    for i in range(3):
        fleet.observe(Observation("v03-satphone", T0 + i, True,
                                  {"registered": True, "signal": 4.0}))
        fleet.observe(Observation("v03-router", T0 + i, False, {}, conclusive=True))
    rules = AlertEngine()
    both = _rules_on(fleet, rules)

    def step(at: float) -> tuple[Any, dict[str, bool]]:
        snap, memory = both(at)
        return snap.devices["v03-satphone"], {
            " ".join((a["rule"], *(a["labels"][k] for k in ("scenario", "outage")
                                   if k in a["labels"]))): a["firing"]
            for a in memory if a["labels"].get("site") == "v03"}

    pending = {"device_down": False, "site_channel_lost": False,
               "outage_active network": False,
               "scenario_not_ready power": False, "scenario_not_ready all": False}
    phone, alerts = step(T0 + 2.5)
    assert alerts == pending
    taken = rules.taken
    for n, bars in enumerate((3.0, 4.0, 3.0, 4.0, 3.0), 1):
        fleet.observe(Observation("v03-satphone", T0 + 2 + 60 * n, True,
                                  {"registered": True, "signal": bars}))
        again, alerts = step(T0 + 2.5 + 60 * n)
        assert again is not phone and again.readings["signal"] == bars
        assert (again.state, again.since, again.reasons) == (phone.state, phone.since,
                                                             phone.reasons)
        assert rules.taken == taken, n
        assert alerts == {**pending, "outage_active network": True,
                          **({"device_down": True, "site_channel_lost": True}
                             if n == 5 else {})}, n


def test_the_rules_read_a_kept_site_s_providers_themselves() -> None:
    """The fleet gives a site a new status whenever a provider's state or reasons
    change; the rules do not count on it.  v03 as above at T0+2.5 (the router down:
    site_channel_lost pending, its facts naming the router's reasons); then a snapshot
    with the same site status object but the router's reasons changed (auth_error for
    no_answer): the site's candidates are taken again and the alert's facts name the
    new reason, as an engine looking at every candidate says."""
    fleet = Fleet(INVENTORY, T0)
    for i in range(3):
        fleet.observe(Observation("v03-satphone", T0 + i, True, {}))
        fleet.observe(Observation("v03-router", T0 + i, False, {}, conclusive=True))
    rules, every_rule = AlertEngine(), AlertEngine(incremental=False)
    snap = fleet.evaluate(T0 + 2.5)
    router = snap.devices["v03-router"]
    assert router.reasons == (Fact("no_answer"),)
    changed = replace(snap, at=T0 + 3, devices=MappingProxyType(
        {**snap.devices, "v03-router": replace(router, reasons=(Fact("auth_error"),))}))
    for at in (snap, changed):
        assert rules.update(at) == every_rule.update(at)
        assert list(rules.dump()) == list(every_rule.dump())
        # A pending alert's facts are not in the saved memory: the engine holds them.
        assert {fp: f.alert.facts for fp, f in rules.active.items()} == {
            fp: f.alert.facts for fp, f in every_rule.active.items()}
    lost = [f.alert for f in rules.active.values() if f.alert.rule == "site_channel_lost"
            and f.alert.labels["site"] == "v03"]
    assert len(lost) == 1 and "auth_error" in json.dumps(facts_to_json(lost[0].facts))
    assert "no_answer" not in json.dumps(facts_to_json(lost[0].facts))


def test_an_alert_keeps_its_verdict_itself_and_the_newest_equal_one() -> None:
    """v03 as above at T0+2.5: scenario_not_ready all pending.  Its fact is the site's
    verdict itself (a DerivedFact of the result the status holds), not a copy as
    facts.  A snapshot whose v03 status is new, with an equal verdict worked out
    again (a new object): the alert's facts are unchanged (nothing revised), and it
    keeps the new verdict, so the old one is let go.  Once it fires, its fact is the
    plain fact, worked out once."""
    fleet = Fleet(INVENTORY, T0)
    for i in range(3):
        fleet.observe(Observation("v03-satphone", T0 + i, True, {}))
        fleet.observe(Observation("v03-router", T0 + i, False, {}, conclusive=True))
    rules = AlertEngine()
    snap = fleet.evaluate(T0 + 2.5)
    rules.update(snap)

    def kept() -> Fact:
        [entry] = [f for f in rules.active.values() if f.alert.rule == "scenario_not_ready"
                   and f.alert.labels["site"] == "v03" and f.alert.labels["scenario"] == "all"]
        return entry.alert.facts[0]

    v03 = snap.sites["v03"]
    old = v03.scenarios["all"]
    assert isinstance(kept(), DerivedFact) and kept()._source is old
    assert kept() == old.as_fact() and not old.ready
    again = replace(old)  # equal, a new object
    assert again == old and again is not old
    renewed = replace(v03, scenarios=MappingProxyType({**v03.scenarios, "all": again}))
    revised = rules.revised
    rules.update(replace(snap, at=T0 + 3,
                         sites=MappingProxyType({**snap.sites, "v03": renewed})))
    assert rules.revised == revised and kept()._source is again
    # Firing (its for, 3600 s, held), it is put into words for every message and kept
    # by the dispatcher: worked out once into the plain fact, kept so.
    fleet.observe(Observation("v03-satphone", T0 + 3602, True, {}))
    fleet.observe(Observation("v03-router", T0 + 3602, False, {}, conclusive=True))
    later = fleet.evaluate(T0 + 3602.5)
    rules.update(later)
    assert [f.firing for f in rules.active.values() if f.alert.facts
            and f.alert.facts[0] == kept()] == [True]
    assert not isinstance(kept(), DerivedFact)
    assert kept() == later.sites["v03"].scenarios["all"].as_fact()


def test_after_a_reload_the_rules_let_the_old_inventory_go() -> None:
    """A reload gives an equal inventory in new objects: every steady device reads the
    same to the rules (no candidate taken again), and what they keep of it is the
    new Device, so the old inventory is let go."""
    fleet = Fleet(INVENTORY, T0)
    for device in INVENTORY.devices:
        fleet.observe(Observation(device, T0, True, {}))
    rules = AlertEngine()
    rules.update(fleet.evaluate(T0 + 1))
    reloaded = CONFIG.inventory()
    assert reloaded.devices == INVENTORY.devices
    assert all(reloaded.devices[d] is not INVENTORY.devices[d] for d in reloaded.devices)
    fleet.reconfigure(reloaded, T0 + 2)
    snap = fleet.evaluate(T0 + 2)
    taken = rules.taken
    rules.update(snap)
    kept = {d: reads[0] for d, reads in rules._devices.items()}
    assert kept.keys() == snap.devices.keys()
    assert all(kept[d] is snap.devices[d].device for d in kept)
    assert rules.taken - taken <= len(snap.sites)  # sites' statuses are new: taken


def test_what_a_site_keeps_of_its_providers_is_their_own_reads() -> None:
    """Every device answers again: its status is new, what the rules read of it is not.
    A site's channel alerts read their providers: what the site keeps of them is the
    very read each device keeps (one object, not a copy per site), before and after."""
    fleet = Fleet(INVENTORY, T0)
    rules = AlertEngine()
    for at in (T0, T0 + 60):
        for device in INVENTORY.devices:
            fleet.observe(Observation(device, at, True, {}))
        rules.update(fleet.evaluate(at + 1))
        own = {id(reads) for reads in rules._devices.values()}
        kept = [r for reads, _ in rules._sites.values() for r in reads]
        assert kept and all(id(r) in own for r in kept)


def test_rules_restored_between_two_snapshots_read_the_next_whole() -> None:
    """A reload that changes alerting restores the rules' memory while the evaluation
    may already step them: update, load, update.  v03's camera has device_down firing
    (down since T0, 400 s > its 300 s ``for``); then its router goes down, so the camera
    is unknown behind it and its alert is kept, not resolved, exactly as by rules that
    only loaded.  Also for snapshots of another fleet: generations are never shared."""
    fleet = Fleet(INVENTORY, T0)
    for d in INVENTORY.devices:
        fleet.observe(Observation(d, T0, True, {}))
    for i in range(3):
        fleet.observe(Observation("v03-cam1", T0 + i, False, {}, conclusive=True))
    before = AlertEngine()
    before.update(fleet.evaluate(T0 + 3))
    before.update(fleet.evaluate(T0 + 400))
    saved = list(before.dump())
    assert [a["firing"] for a in saved if a["labels"].get("device") == "v03-cam1"] == [True]
    for i in range(3):
        fleet.observe(Observation("v03-router", T0 + 401 + i, False, {}, conclusive=True))
    raced, restored = AlertEngine(), AlertEngine()
    snap = fleet.evaluate(T0 + 404)
    assert snap.devices["v03-cam1"].state is State.UNKNOWN
    raced.update(snap)
    raced.load(saved)
    restored.load(saved)
    restored.update(snap)
    snap = fleet.evaluate(T0 + 405)
    assert raced.update(snap) == restored.update(snap) == []
    assert raced.firing == restored.firing
    assert ("device_down", "v03-cam1") in {(a.rule, a.labels.get("device"))
                                           for a in raced.firing}
    other = Fleet(INVENTORY, T0)
    other.evaluate(T0)
    second = other.evaluate(T0 + 1).changes
    assert snap.changes is not None and second is not None and not second.whole
    assert second.since != snap.changes.generation  # a reader of ``snap`` reads it whole


def test_an_evaluation_that_fails_midway_tells_the_next_snapshot_whole() -> None:
    """Statuses replaced by an evaluation that then failed are named by no snapshot: the
    next one is whole, so the rules and the change log read every status."""
    fleet = Fleet(INVENTORY, T0)
    fleet.evaluate(T0)
    steady = fleet.evaluate(T0 + 1).changes
    assert steady is not None and not steady.whole

    def fail(*_: object) -> None:
        raise RuntimeError("midway")

    fleet._site_status = fail  # type: ignore[method-assign]
    fleet.observe(Observation("v03-router", T0 + 2, False, {}, conclusive=True))
    with pytest.raises(RuntimeError):
        fleet.evaluate(T0 + 2)
    del fleet._site_status  # type: ignore[attr-defined]
    after = fleet.evaluate(T0 + 3).changes
    assert after is not None and after.whole
