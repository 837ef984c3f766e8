"""Power endurance of a device along its feed chain (DESIGN.md §3 "Power").

A device lasts ``F(feed) + B`` hours once mains is lost, where ``B`` is its
own battery (charge x rated hours at full charge) and ``F`` walks the feed
chain:

* ``mains`` lasts for ever while mains holds at the device's site, else 0;
* ``ups:U`` lasts for ever while mains holds at U's site, else U's estimated
  runtime (RFC 1628 upsEstimatedMinutesRemaining 1.3.6.1.2.1.33.1.2.3.0) plus
  U's own feed;
* ``generator:G`` lasts for ever while mains holds at G's site, else G's fuel
  in litres ÷ its consumption at the present load (its ``expected_load``
  when it is not running);
* ``none`` (a handheld) lasts for ever while people can charge it — roads
  open and mains on at its site — else only its battery.

A UPS or generator itself lasts its own runtime or fuel.  A feed that is down
gives 0; one that is unknown, or a reading that is missing, stale (older than
its ``max_age``) or that the device reports as unavailable, makes the stage
*unknown* (:mod:`commsmon.core.endurance`): never 0, never infinity, with an
upper bound where one is known (a full battery, a full tank).

A check-in's charge decays over the device's rated standby hours from the
check-in when nothing charges it (``power: none``), or from the start of a
power outage at its site when its charger is on mains.  Pure: views and
conditions in, endurance out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from commsmon.core.endurance import Endurance, lost, unbounded, unknown
from commsmon.core.facts import Fact
from commsmon.core.model import Device
from commsmon.core.readings import CHARGE, FUEL, FUEL_LITRES, LOAD, RUNNING, RUNTIME
from commsmon.core.types import WORKING, Reading, State

__all__ = ["Conditions", "DeviceView", "device_endurance", "supply"]

_MAX_DEPTH = 8  # a feed chain longer than this is a configuration loop


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A device as the judgements see it at one evaluation.

    Attributes:
        device: the inventory entry.
        state: effective state.
        since: epoch seconds it entered ``state``.
        reasons: why it is not ``up`` (facts), ``()`` when up.
        values: its readings that are fresh (within their ``max_age``).
        stale: readings older than their ``max_age``: name -> age in seconds.
        unavailable: readings the device last reported as not available (a
            sentinel such as -1, ``N/A``): name -> since, epoch seconds.
        checkin_charge: (charge ratio 0-1, epoch seconds) when ``values``'
            charge came from a keeper's check-in, so it decays (see module).
        site_name: the name of the device's site.
        rose: event counters (:data:`~commsmon.core.readings.EVENT_COUNTERS`)
            that rose at their latest report (upsInputLineBads: an event since
            the poll before): name -> epoch seconds of that report.
        unconfirmed: readings told by a trap that no check has read since:
            name -> when told, epoch seconds.
    """

    device: Device
    state: State
    since: float
    site_name: str = ""
    reasons: tuple[Fact, ...] = ()
    values: Mapping[str, Reading] = field(default_factory=dict)
    stale: Mapping[str, float] = field(default_factory=dict)
    unavailable: Mapping[str, float] = field(default_factory=dict)
    checkin_charge: tuple[float, float] | None = None
    rose: Mapping[str, float] = field(default_factory=dict)
    unconfirmed: Mapping[str, float] = field(default_factory=dict)

    # Made once per view and shared by every site and scenario whose chains pass through
    # the device (a province's judgements hold hundreds of thousands of them):
    # read-only, like the facts.
    _broken: Endurance | None = field(default=None, init=False, compare=False, repr=False)
    _held: Endurance | None = field(default=None, init=False, compare=False, repr=False)
    _link: Fact | None = field(default=None, init=False, compare=False, repr=False)
    _mains: Endurance | None = field(default=None, init=False, compare=False, repr=False)
    _linked_mains: Endurance | None = field(default=None, init=False, compare=False,
                                            repr=False)

    def ident(self) -> dict[str, str]:
        """The device's id and name, as fact terms (a new dict: facts keep values only)."""
        return {"device": self.device.id, "name": self.device.name}

    def where(self) -> dict[str, str]:
        """The device's id and name and its site's, as fact terms (a new dict)."""
        return {"device": self.device.id, "name": self.device.name,
                "site": self.device.site, "site_name": self.site_name}

    def mains(self) -> Endurance:
        """Lasts for ever on mains (a ``mains`` stage), while mains holds at the device's
        site.  Made once per view: every scenario and chain with mains there shares it
        (four scenarios of each chain made 27 000 of them at 20 000 devices)."""
        mains = self._mains
        if mains is None:
            mains = unbounded(Fact("mains", self.ident()))
            object.__setattr__(self, "_mains", mains)
        return mains

    def link(self) -> Fact:
        """The ``link`` fact heading what the device gives as a working link in a
        chain.  Made once per view: every site and scenario whose chains pass through
        the device shares it (otherwise 110 000 of them at 20 000 devices: 2 MiB measured)."""
        link = self._link
        if link is None:
            link = Fact("link", self.where())
            object.__setattr__(self, "_link", link)
        return link

    def linked(self, power: Endurance) -> Endurance:
        """``power`` (what keeps the device powered) headed by its :meth:`link` fact:
        what the device gives as a working link in a chain.  Made once per view on its
        own :meth:`mains`, which every site and scenario whose chains pass through the
        device share (the district repeater, on mains in every village's PDT chain, was
        made anew for each: 10 000 at 20 000 devices).  Other power (a feed through a
        UPS, a battery) gives a new one."""
        linked = self._linked_mains if power is self._mains else None
        if linked is None:
            linked = Endurance(power.lower, power.upper, (self.link(), *power.stages),
                               power.unknowns)
            if power is self._mains:
                object.__setattr__(self, "_linked_mains", linked)
        return linked

    def broken_link(self) -> Endurance | None:
        """What the device gives as a link in a chain while it does not work: nothing
        known while ``unknown`` (a ``link_unknown`` fact), nothing while down or lost
        (``link_down``); ``None`` while it works.  Made once per view: every site and
        scenario whose chains pass through the device share it (at start, with every
        device unknown, a province's first evaluation made 200 000 of them)."""
        if self.state in WORKING:
            return None
        broken = self._broken
        if broken is None:
            where = self.where()
            if self.state is State.UNKNOWN:
                broken = unknown(Fact("link_unknown", {**where, "causes": self.reasons}))
            else:
                broken = lost(Fact("link_down", {**where, "state": self.state.value,
                                                 "since": self.since, "causes": self.reasons}))
            object.__setattr__(self, "_broken", broken)
        return broken

    def held(self) -> Endurance:
        """What the device holds itself, the same in every scenario: a generator's
        fuel, a UPS's runtime, a battery's charge as read (not a check-in's, which
        drains with the clock).  Made once per view: every chain and scenario
        through the device shares it (a genset feeding three devices was judged
        anew for each of them in each scenario: about 7 fuel stages kept a genset)."""
        held = self._held
        if held is None:
            kind = self.device.kind
            held = _fuel(self) if kind == "generator" else \
                _ups_runtime(self) if kind == "ups" else _battery(self)
            object.__setattr__(self, "_held", held)
        return held


@dataclass(frozen=True, slots=True)
class Conditions:
    """What is taken away when one site is judged in one scenario.

    Attributes:
        scenario: ``network``, ``road``, ``power``, ``all`` or ``now``.
        now: epoch seconds of the evaluation.
        mains_lost: mains is assumed lost everywhere (``power``, ``all``).
        mains_out: sites whose mains is lost now (a power outage is active),
            with the epoch seconds it began.
        public_lost: the judged site's public network is lost (assumed, or now).
        public_out: it is lost now (a network outage is active there).
        resupply: people can bring charge (roads open, no road outage).
    """

    scenario: str
    now: float
    mains_lost: bool = False
    mains_out: Mapping[str, float] = field(default_factory=dict)
    public_lost: bool = False
    public_out: bool = False
    resupply: bool = True

    def no_mains(self, site: str) -> bool:
        """Whether mains is lost at ``site`` in these conditions."""
        return self.mains_lost or site in self.mains_out


def device_endurance(views: Mapping[str, DeviceView], device_id: str,
                     cond: Conditions) -> Endurance:
    """Hours ``device_id`` keeps power under ``cond`` (its own state aside).

    A UPS or generator lasts what it supplies (:func:`supply`); any other
    device its feed plus its own battery.

    Args:
        views: every device's view by id.
        device_id: the device.
        cond: the conditions.
    """
    view = views[device_id]
    if view.device.kind in ("ups", "generator"):
        return supply(views, view, cond, 0)
    feed = _feed(views, view, cond, 0)
    if feed.unbounded:
        return feed
    return feed + _own_battery(view, cond)


def supply(views: Mapping[str, DeviceView], source: DeviceView, cond: Conditions,
           depth: int) -> Endurance:
    """Hours a UPS or generator keeps feeding what it powers under ``cond``.

    Args:
        views: every device's view by id.
        source: the UPS or generator.
        cond: the conditions.
        depth: how far down a feed chain this is (loops stop at 8).
    """
    device = source.device
    if not cond.no_mains(device.site):
        return source.mains()
    if device.kind == "generator":
        return source.held()
    return source.held() + _feed(views, source, cond, depth + 1)


def _feed(views: Mapping[str, DeviceView], view: DeviceView, cond: Conditions,
          depth: int) -> Endurance:
    device = view.device
    feed = device.power
    if feed.kind == "none":
        if cond.resupply and not cond.no_mains(device.site):
            return unbounded(Fact("charger", view.ident()))
        return Endurance(0.0, 0.0)
    if feed.kind == "mains" or feed.ref is None or depth > _MAX_DEPTH:
        if not cond.no_mains(device.site):
            return view.mains()
        if depth > 0 or device.battery_hours is not None:
            return Endurance(0.0, 0.0)  # the stages around it tell the story
        if (device.site in cond.mains_out and view.state in WORKING
                and device.kind not in ("ups", "generator")):
            # It answers although its only feed is out: it is powered by something
            # the configuration does not name; how long that lasts is not known.
            return unknown(Fact("powered_unexplained", view.where()))
        return lost(Fact("mains_lost", {**view.where(), "actual": not cond.mains_lost}))
    source = views[feed.ref]
    if source.state is State.UNKNOWN:
        return unknown(Fact("feed_unknown", {**source.ident(), "causes": source.reasons}))
    if source.state not in WORKING:
        return lost(Fact("feed_down", {**source.ident(), "state": source.state.value}))
    return supply(views, source, cond, depth)


def _own_battery(view: DeviceView, cond: Conditions) -> Endurance:
    rated = view.device.battery_hours
    if rated is None:
        return Endurance(0.0, 0.0)
    decay_from = _decay_start(view, cond)
    if view.checkin_charge is None or decay_from is None or _number(
            view.values.get(CHARGE)) is None:
        return view.held()
    then, at = view.checkin_charge
    ratio = max(0.0, then - max(cond.now - decay_from, 0.0) / 3600 / rated)
    hours = _h(ratio * rated)
    return Endurance(hours, hours, (Fact("battery_decayed", {
        **view.ident(), "checkin_ratio": then, "at": at, "rated_hours": rated,
        "ratio": ratio, "hours": hours, "since": decay_from}),))


def _battery(view: DeviceView) -> Endurance:
    """The device's own battery as its charge reading says, in every scenario."""
    rated = view.device.battery_hours
    if rated is None:
        return Endurance(0.0, 0.0)
    charge = _number(view.values.get(CHARGE))
    if charge is None:
        return _not_known(view, CHARGE, upper=rated)
    charge = min(max(charge, 0.0), 1.0)
    hours = _h(charge * rated)
    return Endurance(hours, hours, (Fact("battery", {
        **view.ident(), "ratio": charge, "rated_hours": rated, "hours": hours}),))


def _decay_start(view: DeviceView, cond: Conditions) -> float | None:
    """Since when a check-in's charge has been draining, ``None`` while on a charger."""
    if view.checkin_charge is None:
        return None
    _, at = view.checkin_charge
    device = view.device
    if device.power.kind == "none":
        return at
    out = cond.mains_out.get(device.site)
    if device.power.kind == "mains" and out is not None:
        return max(at, out)
    return None


def _ups_runtime(ups: DeviceView) -> Endurance:
    seconds = _number(ups.values.get(RUNTIME))
    if seconds is None:
        return _not_known(ups, RUNTIME)
    hours = _h(max(seconds, 0.0) / 3600)
    return Endurance(hours, hours, (Fact("ups_runtime", {**ups.ident(), "hours": hours}),))


def _fuel(genset: DeviceView) -> Endurance:
    curve = genset.device.generator
    if curve is None:
        return unknown(Fact("no_fuel_curve", genset.ident()))
    values = genset.values
    litres = _number(values.get(FUEL_LITRES))
    ratio = _number(values.get(FUEL))
    if litres is None and ratio is not None and curve.tank_litres is not None:
        litres = ratio * curve.tank_litres
    running = values.get(RUNNING) is True
    load = _number(values.get(LOAD)) if running else None
    load = curve.expected_load if load is None else load
    rate = curve.litres_per_hour(load)
    if litres is None:
        full = math.inf if curve.tank_litres is None else curve.tank_litres / rate
        told = [r for r in (FUEL_LITRES, FUEL) if r in genset.stale or r in genset.unavailable]
        return _not_known(genset, told[0] if told else FUEL_LITRES, upper=full)
    hours = _h(max(litres, 0.0) / rate)
    return Endurance(hours, hours, (Fact("fuel", {
        **genset.ident(), "litres": max(litres, 0.0), "rate": rate, "load": load,
        "running": running, "hours": hours}),))


def _not_known(view: DeviceView, reading: str, upper: float = math.inf) -> Endurance:
    """A reading that is not there now: stale, reported unavailable, or never reported."""
    terms = {**view.ident(), "reading": reading}
    if reading in view.stale:
        max_age = view.device.max_age.get(reading)
        fact = Fact("reading_stale", {**terms, "age": view.stale[reading], "max_age": max_age})
    elif reading in view.unavailable:
        fact = Fact("reading_unavailable", {**terms, "since": view.unavailable[reading]})
    else:
        fact = Fact("reading_missing", terms)
    return unknown(fact, upper=upper)


def _h(hours: float) -> float:
    """Hours without float noise (107.85 L ÷ 1.5 L/h is 71.9 h, not 71.8999…): a
    verdict at the 72 h edge must follow the arithmetic an officer does by hand.
    Never -0.0 (a keeper's check-in of charge -0): 0 h is 0."""
    return round(hours, 9) + 0.0


def _number(value: Reading | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
