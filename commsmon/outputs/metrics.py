"""Prometheus exposition of fleet state, rendered from the frozen snapshot.

Every family is built fresh from the latest :class:`~commsmon.core.snapshot.Snapshot`
on each render; nothing here awaits or mutates.  Label values come from the
configuration only (ids, kinds, names, profile reading names), so cardinality
is bounded by the inventory.

Why text is written here rather than through prometheus_client's metric
families: at 20 000 devices the exposition holds about half a million
samples, and building a ``Sample`` object for each took 4.6 s per scrape
(``bench/scrape.py``), far over the 1 s budget.  Label sets never change
between scrapes, so each device's and site's label text is escaped once, at
start, and a render only joins strings.  The daemon's own counters and
histograms stay ordinary prometheus_client metrics, exposed beside this.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar

from commsmon.config.settings import Config
from commsmon.core.model import Device, Inventory, Site
from commsmon.core.outages import OUTAGE_KINDS
from commsmon.core.shard import ShardPlan
from commsmon.core.snapshot import Snapshot
from commsmon.core.types import WORKING, State

__all__ = ["FleetExposition"]

_STATES = tuple(State)
_SITE_STATES = tuple(s for s in State if s is not State.LOST)  # lost is a device's state
_CHANNEL_STATES = (State.UP, State.DOWN, State.UNKNOWN)


def _escape(value: str) -> str:
    """A label value per the text format: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


_T = TypeVar("_T", Device, Site)


def _site_labels(site: Site) -> str:
    """A site's info labels but its id: name, town, role and coordinates (5 decimals)."""
    lat, lon = ("" if c is None else f"{c:.5f}" for c in (site.latitude, site.longitude))
    return _labels(name=site.name, town=site.town, role=site.role, latitude=lat,
                   longitude=lon)


@functools.cache
def _state_lines(sample: str, states: tuple[State, ...], on: State | None) -> str:
    """A %-template of one sample per state, each line's other labels a ``%s``: ``on``'s
    value 1.0 and the others' 0.0 written in, or (``on`` ``None``) each value a ``%s``
    after its labels.  A province renders 260 000 such lines: one template per thing
    instead of a format per line halves their cost."""
    return "".join(
        f'{sample}{{%s,state="{s.value}"}} '
        + ("%s" if on is None else "1.0" if s is on else "0.0") + "\n"
        for s in states)


def _number(value: float) -> str:
    if value - value == 0:  # finite (an infinity or NaN gives NaN)
        return repr(float(value))
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


class _Family:
    """One metric family's text: HELP, TYPE, then samples, as UTF-8.

    Each sample line goes straight into one growing buffer: half a million
    short-lived line strings would leave the daemon's heap fragmented at its
    high-water mark after every scrape (140 MiB at 20 000 devices).
    """

    __slots__ = ("sample", "text")

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        # Text format 0.0.4, as prometheus_client writes it: a counter's HELP and
        # TYPE name its samples, suffix included.
        self.sample = name + ("_total" if kind == "counter" else "")
        self.text = bytearray(
            f"# HELP {self.sample} {escaped}\n# TYPE {self.sample} {kind}\n".encode())

    def add(self, labels: str, value: float) -> None:
        self.text += f"{self.sample}{{{labels}}} {_number(value)}\n".encode()

    def one_hot(self, labels: str, states: tuple[State, ...], on: State) -> None:
        """A sample per state (``labels`` and its ``state``): 1 for ``on``, 0 for the
        others."""
        lines = _state_lines(self.sample, states, on)
        self.text += (lines % ((labels,) * len(states))).encode()

    def per_state(self, labels: str, states: tuple[State, ...],
                  values: Mapping[State, float]) -> None:
        """A sample per state (``labels`` and its ``state``) with its value."""
        args: list[str] = []
        for s in states:
            args += (labels, _number(values[s]))
        self.text += (_state_lines(self.sample, states, None) % tuple(args)).encode()


class FleetExposition:
    """Renders devices, readings, channels, scenarios and outages as exposition text.

    Args:
        config: the loaded configuration (profiles give reading metric names
            and help; the inventory gives every label value).
        inventory: the whole inventory (``config``'s when ``None``).
        plan: this instance's shard plan (``None``: a single instance).

    With ``shard.count`` above 1, every instance also says which shard owns each
    site of the whole inventory (``commsmon_site_shard``), so a rule can name the
    villages of an instance that stopped answering its scrape.
    """

    def __init__(self, config: Config, inventory: Inventory | None = None,
                 plan: ShardPlan | None = None) -> None:
        self._reading_help: dict[str, str] = {}
        self._metric_of: dict[str, dict[str, str]] = {}
        self._enums: dict[str, frozenset[str]] = {}
        for name, profile in config.profiles.items():
            metrics = self._metric_of.setdefault(name, {})
            self._enums[name] = frozenset(r for r, spec in profile.readings.items() if spec.enum)
            for reading, spec in profile.readings.items():
                if spec.metric:
                    metrics[reading] = spec.metric
                    self._reading_help.setdefault(spec.metric, spec.help or reading)
        inventory = inventory or config.inventory()
        # Label text per device and per site, escaped once.
        self._device = {
            d.id: _labels(site=d.site, device=d.id, kind=d.kind)
            for d in inventory.devices.values()
        }
        self._site = {s: _labels(site=s) for s in inventory.sites}
        # The info families' text (family -> the devices or sites it was written for, its
        # text): the same while equal ones are in the snapshots.
        self._info: dict[str, tuple[tuple[object, ...], bytes]] = {}
        self._owners = {s: str(plan.owner(s)) for s in inventory.sites} \
            if plan is not None and plan.count > 1 else {}

    def render(self, snap: Snapshot | None) -> bytes:
        """The exposition text of ``snap`` in UTF-8 (empty before the first snapshot)."""
        return b"".join(self.chunks(snap))

    def chunks(self, snap: Snapshot | None) -> Iterator[bytearray]:
        """The exposition text of ``snap``, one metric family at a time.

        Each family is let go once the consumer has it, so compressing the
        chunks as they come holds a fraction of the text at once (the whole
        is ~40 MB at 20 000 devices).
        """
        if snap is None:
            return
        for build in (self._devices, self._readings, self._sites, self._shards):
            for family in build(snap):
                text = family.text
                del family
                yield text
                del text  # before the next family is written

    def _inventory(self, family: _Family, things: tuple[_T, ...],
                   labels: Callable[[_T], str]) -> _Family:
        """``family`` (an ``*_info``: 1 for each of ``things``, the inventory's devices or
        sites, with ``labels(thing)``), its text kept while they are equal (frozen
        dataclasses; the same objects compare at once): at 20 000 devices writing it
        was a sixth of a render."""
        kept = self._info.get(family.sample)
        if kept is not None and kept[0] == things:
            family.text += kept[1]
            # Equal, maybe not the same (a reload's): keep these, let the old go.
            self._info[family.sample] = (things, kept[1])
            return family
        head = len(family.text)  # HELP and TYPE
        for thing in things:
            family.add(labels(thing), 1)
        self._info[family.sample] = (things, bytes(family.text[head:]))
        return family

    def _shards(self, snap: Snapshot) -> Iterable[_Family]:
        if not self._owners:
            return ()
        owner = _Family("commsmon_site_shard", "gauge",
                        "1 for each site of the whole inventory, labelled with the shard that "
                        "owns it (owner_shard); exposed by every instance.")
        for site, shard in self._owners.items():
            owner.add(_labels(site=site, owner_shard=shard), 1)
        return (owner,)

    def _devices(self, snap: Snapshot) -> Iterable[_Family]:
        info = self._inventory(
            _Family("commsmon_device_info", "gauge",
                    "Inventory of devices (value 1): name, profile and channel from the config."),
            tuple(status.device for status in snap.devices.values()),
            lambda d: f"{self._device[d.id]},"
                      f'{_labels(name=d.name, profile=d.profile, channel=d.channel or "")}')
        up = _Family("commsmon_device_up", "gauge",
                     "1 if the device works (up or degraded), 0 if down; absent while unknown "
                     "(never seen, behind a down parent, or the monitor is cut off).")
        state = _Family("commsmon_device_state", "gauge",
                        "1 for the device's current state, 0 for the others.")
        seconds = _Family("commsmon_device_state_seconds", "counter",
                          "Seconds the device spent in each state since the daemon started.")
        since = _Family("commsmon_device_state_since_timestamp_seconds", "gauge",
                        "When the device entered its current state, Unix epoch seconds.")
        seen = _Family("commsmon_device_last_seen_timestamp_seconds", "gauge",
                       "When the device last answered, Unix epoch seconds.")
        endurance = _Family("commsmon_device_endurance_seconds", "gauge",
                            "Seconds the device keeps power if mains is lost now (own battery "
                            "plus UPS runtime plus generator fuel; a UPS or generator its own "
                            "runtime or fuel); +Inf if unbounded, absent if unknown.")
        checkin_age = _Family("commsmon_device_checkin_age_seconds", "gauge",
                              "Seconds since the device's last check-in (test call, roll call).")
        # A pass over the devices for each of the large families, each given away
        # (and dropped here) before the next is written: all of them at once were
        # 28 MB of text at 20 000 devices, the daemon's peak RSS at every scrape.
        statuses = snap.devices.values()
        labels_of = self._device
        yield info
        del info
        for status in statuses:
            if status.state is not State.UNKNOWN:
                up.add(labels_of[status.device.id], 1 if status.state in WORKING else 0)
        yield up
        del up
        for status in statuses:
            state.one_hot(labels_of[status.device.id], _STATES, status.state)
        yield state
        del state
        for status in statuses:
            seconds.per_state(labels_of[status.device.id], _STATES, status.seconds_at(snap.at))
        yield seconds
        del seconds
        for status in statuses:
            labels = labels_of[status.device.id]
            since.add(labels, status.since)
            if status.last_seen is not None:
                seen.add(labels, status.last_seen)
            hours = status.endurance.hours if status.endurance else None
            if hours is not None:
                endurance.add(labels, hours * 3600)
            if status.checkin is not None:
                checkin_age.add(labels, max(0.0, snap.at - status.checkin.at))
        yield from (since, seen, endurance, checkin_age)

    def _readings(self, snap: Snapshot) -> Iterable[_Family]:
        families: dict[str, _Family] = {}
        enum_family = _Family(
            "commsmon_reading_state", "gauge",
            "1 for an enumerated reading's current value (UPS output source, alarms, uplink "
            "status), labelled by that value; absent while not reported.")
        for status in snap.devices.values():
            d = status.device
            labels = self._device[d.id]
            metrics = self._metric_of.get(d.profile, {})
            enums = self._enums.get(d.profile, frozenset())
            for reading, value in status.readings.items():
                if isinstance(value, str):
                    # Enum members come from the profile; free text never becomes a label.
                    if reading in enums:
                        enum_family.add(f"{labels},{_labels(reading=reading, state=value)}", 1)
                    continue
                metric = metrics.get(reading)
                if metric is None:
                    continue
                number = float(value)
                if not math.isfinite(number):
                    continue
                family = families.get(metric)
                if family is None:
                    family = families[metric] = _Family(
                        f"commsmon_{metric}", "gauge", self._reading_help[metric])
                family.add(labels, number)
        return (*families.values(), enum_family)

    def _sites(self, snap: Snapshot) -> Iterable[_Family]:
        info = self._inventory(
            _Family("commsmon_site_info", "gauge",
                    "Inventory of sites (value 1): name, town, role and coordinates from the "
                    "config."),
            tuple(status.site for status in snap.sites.values()),
            lambda site: f"{self._site[site.id]},{_site_labels(site)}")
        reachable = _Family("commsmon_site_reachable", "gauge",
                            "1 if at least one channel to the command centre works, 0 if none "
                            "does (isolated); absent while unknown.")
        state = _Family("commsmon_site_state", "gauge",
                        "1 for the site's current state, 0 for the others.")
        seconds = _Family("commsmon_site_state_seconds", "counter",
                          "Seconds the site spent in each state since the daemon started.")
        channel_up = _Family("commsmon_site_channel_up", "gauge",
                             "1 if the channel works, 0 if every provider fails; absent while "
                             "unknown.")
        channel_state = _Family("commsmon_site_channel_state", "gauge",
                                "1 for the channel's current state (up, down, unknown), 0 for "
                                "the others.")
        ready = _Family("commsmon_site_scenario_ready", "gauge",
                        "1 if the site certainly lasts its target in the scenario (network, "
                        "road, power, all; now: only the outages active now), else 0.")
        scenario_seconds = _Family("commsmon_site_scenario_endurance_seconds", "gauge",
                                   "Seconds the site lasts in the scenario (its longest-lived "
                                   "channel; a hub its shortest-lived support); 0 if no channel "
                                   "works, +Inf if unbounded, absent while unknown.")
        at_least = _Family("commsmon_site_scenario_endurance_at_least_seconds", "gauge",
                           "While the scenario's endurance is unknown: the seconds that are "
                           "certain (absent when it is known).")
        until = _Family("commsmon_site_reachable_until_timestamp_seconds", "gauge",
                        "With the outages active now, when the site stops being reachable, "
                        "Unix epoch seconds (at least, while unknown); absent while unbounded.")
        bearing = _Family("commsmon_site_now_outages", "gauge",
                          "Outages active now that bear on the site: its own, and power cuts at "
                          "sites its channels go through (the district centre); the now "
                          "scenario judges exactly these.")
        surviving = _Family("commsmon_site_channels_surviving", "gauge",
                            "Number of channels that last the target in the scenario.")
        target = _Family("commsmon_site_target_seconds", "gauge",
                         "Seconds the site must last on its own in each scenario.")
        outage = _Family("commsmon_site_outage_active", "gauge",
                         "1 while an outage (power, network, road) is detected or declared at "
                         "the site.")
        outage_since = _Family("commsmon_site_outage_since_timestamp_seconds", "gauge",
                               "When the active outage was first seen or declared, Unix epoch "
                               "seconds.")
        trap_path = _Family("commsmon_site_trap_path_up", "gauge",
                            "1 while the site's kit's periodic traps arrive, 0 when none came "
                            "for twice its trap_every; absent while unknown or not checked.")
        trap_heard = _Family("commsmon_site_trap_last_received_timestamp_seconds", "gauge",
                             "When the latest trap from the site's kit arrived, Unix epoch "
                             "seconds (sites with trap_every).")
        for status in snap.sites.values():
            site = status.site
            labels = self._site[site.id]
            if (path := status.trap_path) is not None:
                if path.state is not State.UNKNOWN:
                    trap_path.add(labels, 1 if path.state is State.UP else 0)
                if path.heard is not None:
                    trap_heard.add(labels, path.heard)
            if status.reachable is not None:
                reachable.add(labels, 1 if status.reachable else 0)
            state.one_hot(labels, _SITE_STATES, status.state)
            seconds.per_state(labels, _SITE_STATES, status.seconds_at(snap.at))
            for name, channel in status.channels.items():
                ch = f'{labels},channel="{name}"'
                if channel.state is not State.UNKNOWN:
                    channel_up.add(ch, 1 if channel.state is State.UP else 0)
                channel_state.one_hot(ch, _CHANNEL_STATES, channel.state)
            if status.scenarios:
                target.add(labels, site.target_hours * 3600)
            now = status.scenarios.get("now")
            if now is not None:
                bearing.add(labels, len(now.outages))
            for scenario, result in status.scenarios.items():
                sc = f'{labels},scenario="{scenario}"'
                ready.add(sc, 1 if result.ready else 0)
                surviving.add(sc, len(result.surviving))
                e = result.endurance
                if e.exact:
                    scenario_seconds.add(sc, e.lower * 3600)
                else:
                    at_least.add(sc, e.lower * 3600)
                if result.until is not None:
                    until.add(labels, result.until)
            for kind in OUTAGE_KINDS:
                active = status.outages.get(kind)
                outage.add(f'{labels},outage="{kind}"', 1 if active else 0)
                if active is not None:
                    outage_since.add(f'{labels},outage="{kind}"', active.since)
        return (info, reachable, state, seconds, channel_up, channel_state,
                ready, scenario_seconds, at_least, surviving, target, until, bearing, outage,
                outage_since, trap_path, trap_heard)
