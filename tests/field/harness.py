"""Runs a hand-computed village through the real configuration loader and core.

A :class:`Village` is data: an inventory (the ``sites`` list of a real
configuration file, using the shipped profiles), what each device reported and
how long ago, which devices stopped answering or were never heard, check-ins,
declared road outages — and the verdict a careful duty officer works out by
hand for each scenario and ``now``.  :func:`evaluate` writes the file, loads it
with :func:`commsmon.config.load.load_config`, feeds a :class:`~commsmon.core.fleet.Fleet`
the observations a poller or MQTT handler would, and evaluates it at
:data:`NOW`.  Not a test module.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ruamel.yaml import YAML

from commsmon.config.load import load_config
from commsmon.core.fleet import Fleet
from commsmon.core.outages import Declaration
from commsmon.core.snapshot import Snapshot
from commsmon.core.types import CheckIn, Observation, Reading

__all__ = ["NOW", "Expect", "Village", "evaluate"]

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Shanghai")
#: The moment every case is judged at: 2026-12-05 10:00 in Shanting.
NOW = datetime(2026, 12, 5, 10, 0, tzinfo=TZ).timestamp()
H = 3600.0
D = 86400.0


@dataclass(frozen=True)
class Expect:
    """What the officer works out for one scenario (or ``now``).

    Attributes:
        ready: it certainly lasts the target.
        hours: exact hours (``math.inf`` unbounded, ``0`` nothing works);
            ``None`` when unknown.
        at_least: for an unknown endurance, the hours that are certain.
        at_most: for an unknown endurance, the hours it cannot exceed, if known.
        surviving: channels that last the target, if checked.
        zh: words the Chinese reason must contain.
        en: words the English reason must contain.
        until: ``now`` only: hours from :data:`NOW` to the time it lasts to.
    """

    ready: bool
    hours: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    surviving: tuple[str, ...] | None = None
    zh: tuple[str, ...] = ()
    en: tuple[str, ...] = ()
    until: float | None = None


@dataclass(frozen=True)
class Village:
    """One hand-computed case.

    Attributes:
        name: the test id.
        sites: the configuration's ``sites`` list.
        expect: scenario (``network``, ``road``, ``power``, ``all``, ``now``) -> verdict.
        readings: device -> reading -> (value in SI units as decoded, age in seconds).
        down: devices that stopped answering (three failed polls, or presence offline).
        unseen: devices never heard from.
        missing: device -> readings it now reports as not available (a sentinel).
        lost: device -> reading -> age in seconds when the device reported it as not
            available (applied in time order with the polls' readings and traps).
        checkins: device -> (age in seconds, ok, battery ratio or None).
        road: sites with a declared road outage.
        site: the site the expectations are about.
        state: device -> the state expected (up, degraded, lost, down, unknown).
        devices: device -> the hours it keeps power if mains is lost now
            (``commsmon_device_endurance_seconds``), ``None`` for unknown.
        alerts: alerts that must fire (rules at ``for: 0``): ``"rule site [label]"``.
        quiet: alerts that must not fire, likewise.
        defaults: extra ``defaults`` for the configuration.
        traps: device -> reading -> (value, age in seconds) told by an SNMP trap
            (applied in time order with the polls' readings).
        unconfirmed: device -> the readings expected to be awaiting a poll.
        outages: outage kind at :attr:`site` -> its evidence in Chinese, exactly
            (several joined by "；"); ``None`` for an outage that must not be active.
        trap_heard: device -> age in seconds of the latest trap it sent (one that
            told nothing: an unknown or test trap).
        listening: seconds since commsmon listens for traps; ``None``: it does not.
        trap_path: the trap path expected at :attr:`site`: (``up``, ``down`` or
            ``unknown``, words its Chinese reason must contain, ``""`` for none).
    """

    name: str
    sites: list[dict[str, Any]]
    expect: dict[str, Expect]
    readings: dict[str, dict[str, tuple[Reading, float]]] = field(default_factory=dict)
    down: tuple[str, ...] = ()
    unseen: tuple[str, ...] = ()
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lost: dict[str, dict[str, float]] = field(default_factory=dict)
    checkins: dict[str, tuple[float, bool, float | None]] = field(default_factory=dict)
    road: tuple[str, ...] = ()
    site: str = "v"
    state: dict[str, str] = field(default_factory=dict)
    devices: dict[str, float | None] = field(default_factory=dict)
    alerts: tuple[str, ...] = ()
    quiet: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    traps: dict[str, dict[str, tuple[Reading, float]]] = field(default_factory=dict)
    unconfirmed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    outages: dict[str, str | None] = field(default_factory=dict)
    trap_heard: dict[str, float] = field(default_factory=dict)
    listening: float | None = 30 * D
    trap_path: tuple[str, str] | None = None


def evaluate(case: Village, tmp: Path, *, shuffle: int | None = None,
             again: bool = False) -> Snapshot:
    """``case`` loaded from a real configuration file and evaluated at :data:`NOW`.

    Args:
        case: the village.
        tmp: a directory for the file.
        shuffle: list the sites, and each site's devices, in another order, drawn
            from this seed (the results must not change).
        again: evaluate twice at :data:`NOW`; the second gives back what the first
            judged wherever nothing it read changed (:mod:`commsmon.core.memo`).
    """
    sites = case.sites
    if shuffle is not None:
        rnd = random.Random(shuffle)
        sites = [{**s, "devices": rnd.sample(s.get("devices", []), len(s.get("devices", [])))}
                 for s in rnd.sample(sites, len(sites))]
    doc = {
        "district": "山亭区",
        "profiles_dir": str(ROOT / "config" / "profiles"),
        "mqtt": {"host": "127.0.0.1", "topic_prefix": "field"},
        "defaults": {"snmp": {"interval": 60}, **case.defaults},
        "traps": {"listen": ["127.0.0.1:16200"]},  # loaded only: trap_every needs it
        "sites": sites,
    }
    path = tmp / ("field.yaml" if shuffle is None else f"field-{shuffle}.yaml")
    with path.open("w", encoding="utf-8") as f:
        YAML().dump(doc, f)
    inventory = load_config(path).inventory()
    fleet = Fleet(inventory, NOW - 30 * D)
    fleet.set_source("mqtt", True, NOW - 30 * D)
    for device_id, device in inventory.devices.items():
        if device_id in case.unseen or device.source == "checkin":
            continue
        by_age: dict[tuple[float, bool], dict[str, Reading]] = {}
        for told, given in ((False, case.readings), (True, case.traps)):
            for reading, (value, age) in given.get(device_id, {}).items():
                by_age.setdefault((age, told), {})[reading] = value
        lost_at: dict[float, set[str]] = {}
        for reading, age in case.lost.get(device_id, {}).items():
            lost_at.setdefault(age, set()).add(reading)
        for age in lost_at:
            by_age.setdefault((age, False), {})
        for age, told in sorted(by_age, key=lambda k: -k[0]):
            fleet.observe(Observation(device_id, NOW - age, True, by_age[age, told],
                                      missing=frozenset(lost_at.get(age, ()) if not told else ()),
                                      unconfirmed=told))
        if device_id in case.missing:
            fleet.observe(Observation(device_id, NOW - 2, True,
                                      missing=frozenset(case.missing[device_id])))
        fleet.observe(Observation(device_id, NOW - 1, True))
        if device_id in case.down:
            fleet.observe(Observation(device_id, NOW, False, conclusive=True, error="offline"))
    if case.listening is not None:
        fleet.set_traps_listening(True, NOW - case.listening)
    for device_id, age in case.trap_heard.items():
        fleet.observe(Observation(device_id, NOW - age, True, unconfirmed=True))
    for device_id, (age, ok, charge) in case.checkins.items():
        fleet.checkin(CheckIn(device_id, NOW - age, ok, "村管理员", charge=charge))
    for site in case.road:
        fleet.declare(Declaration(site, "road", NOW - H, by="值班员"))
    if again:
        fleet.evaluate(NOW)
    return fleet.evaluate(NOW)


def describe(expect: Expect) -> str:
    """An expectation in a line, for failure messages."""
    if expect.hours is not None:
        hours = "∞" if math.isinf(expect.hours) else f"{expect.hours} h"
    else:
        hours = f"unknown ≥ {expect.at_least} h"
    return f"{'ready' if expect.ready else 'NOT ready'} {hours}"
