"""Prometheus exposition of fleet state, rendered from the frozen snapshot.

Every family is built from the latest :class:`~commsmon.core.snapshot.Snapshot` on
each render, reusing the blocks of text whose statuses did not change
(:class:`FleetExposition`); nothing here awaits or touches the snapshot.  Label
values come from the configuration only (ids, kinds, names, profile reading names),
so cardinality is bounded by the inventory.

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
import operator
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, repeat
from typing import TypeVar

from commsmon.config.settings import Config
from commsmon.core.availability import Tally
from commsmon.core.model import Inventory, Site
from commsmon.core.outages import OUTAGE_KINDS
from commsmon.core.readiness import ScenarioResult
from commsmon.core.shard import ShardPlan
from commsmon.core.snapshot import DeviceStatus, SiteStatus, Snapshot
from commsmon.core.types import WORKING, State
from commsmon.outputs.gzipmember import Chunk, Piece

__all__ = ["BLOCK", "FleetExposition"]

_STATES = tuple(State)
_SITE_STATES = tuple(s for s in State if s is not State.LOST)  # lost is a device's state
_CHANNEL_STATES = (State.UP, State.DOWN, State.UNKNOWN)


def _escape(value: str) -> str:
    """A label value per the text format: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


_T = TypeVar("_T")
_S = TypeVar("_S")


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


@functools.cache
def _picker(states: tuple[State, ...]) -> Callable[[Sequence[float]], Sequence[float]]:
    """From values in State's order, those of ``states``, in their order."""
    at = [_STATES.index(s) for s in states]
    return operator.itemgetter(*at) if len(at) > 1 else lambda values: [values[at[0]]]


@functools.cache
def _others(states: tuple[State, ...], held: State) -> tuple[State, ...]:
    return tuple(s for s in states if s is not held)


def _number(value: float) -> str:
    if value - value == 0:  # finite (an infinity or NaN gives NaN)
        return repr(float(value) + 0.0)  # -0.0 as 0.0: equal numbers, the same text
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


class _Family:
    """One metric family: its HELP and TYPE (``head``), then its samples, written
    into ``text`` as UTF-8.

    Each sample line goes straight into one growing buffer: half a million
    short-lived line strings would leave the daemon's heap fragmented at its
    high-water mark after every scrape (140 MiB at 20 000 devices).
    """

    __slots__ = ("head", "sample", "text")

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        # Text format 0.0.4, as prometheus_client writes it: a counter's HELP and
        # TYPE name its samples, suffix included.
        self.sample = name + ("_total" if kind == "counter" else "")
        self.head = f"# HELP {self.sample} {escaped}\n# TYPE {self.sample} {kind}\n".encode()
        self.text = bytearray()

    def add(self, labels: str, value: float) -> None:
        self.text += f"{self.sample}{{{labels}}} {_number(value)}\n".encode()

    def finite(self, pairs: list[str | float]) -> None:
        """Samples from ``pairs`` (labels, value, labels, value ...; each value a
        finite float, written as :func:`repr` writes it): one format for all."""
        line = f"{self.sample}{{%s}} %r\n"
        self.text += ((line * (len(pairs) // 2)) % tuple(pairs)).encode()

    def one_hot(self, labels: str, states: tuple[State, ...], on: State) -> None:
        """A sample per state (``labels`` and its ``state``): 1 for ``on``, 0 for the
        others."""
        lines = _state_lines(self.sample, states, on)
        self.text += (lines % ((labels,) * len(states))).encode()

    def settled(self, rows: Iterable[tuple[str, Tally]], states: tuple[State, ...]) -> None:
        """For each (labels, tally): a sample per state of ``states`` but the one held
        (``labels`` and its ``state``), with the seconds settled in it; one format for
        all of them."""
        templates: list[str] = []
        args: list[str | float] = []
        for labels, tally in rows:
            others = _others(states, tally.state)
            templates.append(_state_lines(self.sample, others, None))
            args += chain.from_iterable(zip(repeat(labels), _picker(others)(tally.settled)))
        self.text += ("".join(templates) % tuple(args)).encode()

    def held(self, rows: Iterable[tuple[str, Tally]], states: tuple[State, ...],
             at: float) -> None:
        """For each (labels, tally) holding one of ``states``: its sample (``labels`` and
        its ``state``) with the seconds in it at ``at``; one format for all of them."""
        args: list[str | float] = []
        for labels, tally in rows:
            if tally.state in states:
                args += (labels, tally.state.value, tally.held_at(at))
        line = f'{self.sample}{{%s,state="%s"}} %r\n'
        self.text += ((line * (len(args) // 3)) % tuple(args)).encode()

    def take(self) -> bytearray:
        """The samples written so far, the buffer emptied for the next."""
        text, self.text = self.text, bytearray()
        return text


_Block = tuple[tuple[_T, ...], Sequence[_S]]
"""The things (devices or sites) of up to :data:`BLOCK` statuses, and the statuses."""

BLOCK = 256
"""Devices or sites a piece holds: a piece is written again when one of them changes."""


def _blocks(statuses: Iterable[_S], thing: Callable[[_S], _T]) -> list[_Block[_T, _S]]:
    every = list(statuses)
    return [(tuple(map(thing, part)), part)
            for part in (every[n:n + BLOCK] for n in range(0, len(every), BLOCK))]


_state = operator.attrgetter("state")
_tally: Callable[[object], Tally] = operator.attrgetter("tally")


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

    What does not change between snapshots is not written again: a family whose
    samples follow from the statuses alone (a state, since when, an endurance, a
    site's channels, verdicts and outages) is written in blocks of :data:`BLOCK`
    devices or sites, and a block is kept compressed
    (:class:`~commsmon.outputs.gzipmember.Piece`) with what it was written from;
    the next render reuses it while that is equal.  Of the seconds in each state
    only the held state's are written anew; the families that change with nearly
    every snapshot (readings, last seen, check-in ages) are all written anew.  A
    render is not thread-safe: one at a time.
    """

    def __init__(self, config: Config, inventory: Inventory | None = None,
                 plan: ShardPlan | None = None) -> None:
        self._reading_help: dict[str, str] = {}
        # Per profile: its readings with a metric (reading, metric), its enumerated ones.
        self._metric_of: dict[str, list[tuple[str, str]]] = {}
        self._enums: dict[str, tuple[str, ...]] = {}
        for name, profile in config.profiles.items():
            self._enums[name] = tuple(r for r, spec in profile.readings.items() if spec.enum)
            self._metric_of[name] = []
            for reading, spec in profile.readings.items():
                if spec.metric:
                    self._metric_of[name].append((reading, spec.metric))
                    self._reading_help.setdefault(spec.metric, spec.help or reading)
        inventory = inventory or config.inventory()
        # Label text per device and per site, escaped once: of the devices, only those
        # this instance keeps (a shard's snapshot holds no other).
        self._device = {
            d.id: _labels(site=d.site, device=d.id, kind=d.kind)
            for d in inventory.devices.values() if plan is None or plan.tracks(d.id)
        }
        self._site = {s: _labels(site=s) for s in inventory.sites}
        # (family, block) -> (what its text was written from, the text compressed).
        self._kept: dict[tuple[str, int], tuple[object, Piece]] = {}
        self._owners = {s: str(plan.owner(s)) for s in inventory.sites} \
            if plan is not None and plan.count > 1 else {}

    def render(self, snap: Snapshot | None) -> bytes:
        """The exposition text of ``snap`` in UTF-8 (empty before the first snapshot)."""
        return b"".join(bytes(chunk) if isinstance(chunk, bytes | bytearray)
                        else b"".join(piece.unpack() for piece in chunk)
                        for chunk in self.chunks(snap))

    def chunks(self, snap: Snapshot | None) -> Iterator[Chunk]:
        """The exposition text of ``snap``, about a metric family at a time.

        Each family's new text is let go once the consumer has it, so compressing
        the chunks as they come holds a fraction of the text at once (the whole is
        ~45 MB at 20 000 devices).
        """
        if snap is None:
            return
        # A reload makes a new exposition before its fleet's first evaluation: a scrape
        # in between reads the last setup's snapshot, maybe with devices it removed.
        for d in snap.devices.keys() - self._device.keys():
            device = snap.devices[d].device
            self._device[d] = _labels(site=device.site, device=d, kind=device.kind)
        for s in snap.sites.keys() - self._site.keys():
            self._site[s] = _labels(site=s)
        for build in (self._devices, self._readings, self._sites, self._shards):
            for chunk in build(snap):
                yield chunk
                del chunk  # before the next family is written

    def _head(self, family: _Family) -> Piece:
        """``family``'s HELP and TYPE, compressed once."""
        kept = self._kept.get((family.sample, -1))
        if kept is not None and kept[0] == family.head:
            return kept[1]
        piece = Piece.pack(family.head)
        self._kept[(family.sample, -1)] = (family.head, piece)
        return piece

    def _family(self, family: _Family, blocks: Sequence[_Block[_T, _S]],
                keys: Sequence[object] | None,
                write: Callable[[_Family, Sequence[_S]], None]) -> Iterator[Chunk]:
        """``family``'s text: ``write`` of each block's statuses.  With ``keys`` (per
        block, the values its text follows from), a block is kept and reused while its
        things and key are equal; without, all is written anew (one chunk).

        A key holds values (states, numbers) or statuses held weakly (:class:`_Same`),
        never a status's objects: a kept key outlives its snapshot, and must not keep
        its verdicts alive.  Equal keys must write the same text: a number is written
        plus 0.0, so -0.0 (equal to 0.0) is written as 0.0."""
        if keys is None:
            yield (self._head(family),)
            for _, statuses in blocks:
                write(family, statuses)
            yield family.take()
            return
        pieces = [self._head(family)]
        for index, ((things, statuses), key) in enumerate(zip(blocks, keys, strict=True)):
            made = (things, key)
            kept = self._kept.get((family.sample, index))
            if kept is None or kept[0] != made:
                write(family, statuses)
                kept = (made, Piece.pack(family.take()))
            # Equal, maybe not the same: keep this render's, let the older go.
            self._kept[(family.sample, index)] = (made, kept[1])
            pieces.append(kept[1])
        yield tuple(pieces)

    def _tallies(self, family: _Family, blocks: Sequence[_Block[_T, _S]],
                 labels: Callable[[_S], str], states: tuple[State, ...],
                 at: float) -> Iterator[Chunk]:
        """A ``*_state_seconds`` family (its samples need no order): the seconds settled
        in the states not held, each block kept while its tallies are the same (a tally
        is new at each change of state), then the held states' seconds at ``at``,
        written anew: only they grow."""
        def settled(family: _Family, statuses: Sequence[_S]) -> None:
            family.settled([(labels(s), _tally(s)) for s in statuses], states)
        yield from self._family(family, blocks, _per_block(blocks, _tally), settled)
        for _, statuses in blocks:  # a block at a time: its rows let go as it is written
            family.held([(labels(s), _tally(s)) for s in statuses], states, at)
        yield family.take()

    def _shards(self, snap: Snapshot) -> Iterable[Chunk]:
        if not self._owners:
            return ()
        owner = _Family("commsmon_site_shard", "gauge",
                        "1 for each site of the whole inventory, labelled with the shard that "
                        "owns it (owner_shard); exposed by every instance.")
        blocks = _blocks(self._owners.items(), operator.itemgetter(0))

        def write(family: _Family, owners: Sequence[tuple[str, str]]) -> None:
            for site, shard in owners:
                family.add(_labels(site=site, owner_shard=shard), 1)
        return self._family(owner, blocks, [()] * len(blocks), write)

    def _devices(self, snap: Snapshot) -> Iterable[Chunk]:
        blocks = _blocks(snap.devices.values(), operator.attrgetter("device"))
        labels_of = self._device
        at = snap.at

        def info(family: _Family, statuses: Sequence[DeviceStatus]) -> None:
            for status in statuses:
                d = status.device
                family.add(f"{labels_of[d.id]},"
                           f'{_labels(name=d.name, profile=d.profile, channel=d.channel or "")}',
                           1)

        def up(family: _Family, statuses: Sequence[DeviceStatus]) -> None:
            for status in statuses:
                if status.state is not State.UNKNOWN:
                    family.add(labels_of[status.device.id],
                               1 if status.state in WORKING else 0)

        def state(family: _Family, statuses: Sequence[DeviceStatus]) -> None:
            for status in statuses:
                family.one_hot(labels_of[status.device.id], _STATES, status.state)

        def since(family: _Family, statuses: Sequence[DeviceStatus]) -> None:
            family.finite([x for s in statuses
                           for x in (labels_of[s.device.id], s.since + 0.0)])

        def seen(family: _Family, statuses: Sequence[DeviceStatus]) -> None:
            family.finite([x for s in statuses if s.last_seen is not None
                           for x in (labels_of[s.device.id], s.last_seen)])

        def endurance(family: _Family, statuses: Sequence[DeviceStatus]) -> None:
            for status in statuses:
                if (hours := _hours(status)) is not None:
                    family.add(labels_of[status.device.id], hours * 3600)

        def checkin_age(family: _Family, statuses: Sequence[DeviceStatus]) -> None:
            for status in statuses:
                if status.checkin is not None:
                    family.add(labels_of[status.device.id], max(0.0, at - status.checkin.at))

        states = _per_block(blocks, _state)  # up and state follow the state alone
        # Each family is given away (and dropped) before the next is written: all of
        # them at once were 28 MB of text at 20 000 devices, the daemon's peak RSS at
        # every scrape.
        for family, keys, write in (
            (_Family("commsmon_device_info", "gauge",
                     "Inventory of devices (value 1): name, profile and channel from the "
                     "config."), [()] * len(blocks), info),
            (_Family("commsmon_device_up", "gauge",
                     "1 if the device works (up or degraded), 0 if down; absent while unknown "
                     "(never seen, behind a down parent, or the monitor is cut off)."),
             states, up),
            (_Family("commsmon_device_state", "gauge",
                     "1 for the device's current state, 0 for the others."), states, state),
            (_Family("commsmon_device_state_since_timestamp_seconds", "gauge",
                     "When the device entered its current state, Unix epoch seconds."),
             _per_block(blocks, operator.attrgetter("since")), since),
            (_Family("commsmon_device_last_seen_timestamp_seconds", "gauge",
                     "When the device last answered, Unix epoch seconds."),
             None, seen),
            (_Family("commsmon_device_endurance_seconds", "gauge",
                     "Seconds the device keeps power if mains is lost now (own battery plus "
                     "UPS runtime plus generator fuel; a UPS or generator its own runtime or "
                     "fuel); +Inf if unbounded, absent if unknown."),
             _per_block(blocks, _hours), endurance),
            (_Family("commsmon_device_checkin_age_seconds", "gauge",
                     "Seconds since the device's last check-in (test call, roll call)."),
             None, checkin_age),
        ):
            yield from self._family(family, blocks, keys, write)
        yield from self._tallies(
            _Family("commsmon_device_state_seconds", "counter",
                    "Seconds the device spent in each state since the daemon started."),
            blocks, lambda s: labels_of[s.device.id], _STATES, at)

    def _readings(self, snap: Snapshot) -> Iterable[Chunk]:
        """The reading families (a profile's readings with a ``metric``) and
        ``commsmon_reading_state``, written anew: in a fleet that reports every minute
        nearly every block of them changes between two snapshots."""
        enum_family = _Family(
            "commsmon_reading_state", "gauge",
            "1 for an enumerated reading's current value (UPS output source, alarms, uplink "
            "status), labelled by that value; absent while not reported.")
        pairs: dict[str, list[str | float]] = {}
        for status in snap.devices.values():
            d, readings = status.device, status.readings
            labels = self._device[d.id]
            for reading in self._enums.get(d.profile, ()):
                # Enum members come from the profile; free text never becomes a label.
                if isinstance(value := readings.get(reading), str):
                    enum_family.add(f"{labels},{_labels(reading=reading, state=value)}", 1)
            for reading, metric in self._metric_of.get(d.profile, ()):
                value = readings.get(reading)
                if value is None or isinstance(value, str):
                    continue
                number = float(value)
                if math.isfinite(number):
                    pairs.setdefault(metric, []).extend((labels, number))
        for metric, found in pairs.items():
            family = _Family(f"commsmon_{metric}", "gauge", self._reading_help[metric])
            family.finite(found)
            found.clear()  # each family's numbers let go as its text is written
            yield family.head + family.take()  # and its text before the next is written
        yield enum_family.head + enum_family.take()

    def _sites(self, snap: Snapshot) -> Iterable[Chunk]:
        blocks = _blocks(snap.sites.values(), operator.attrgetter("site"))
        labels_of = self._site
        at = snap.at

        def info(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                family.add(f"{labels_of[status.site.id]},{_site_labels(status.site)}", 1)

        def reachable(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                if status.reachable is not None:
                    family.add(labels_of[status.site.id], 1 if status.reachable else 0)

        def state(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                family.one_hot(labels_of[status.site.id], _SITE_STATES, status.state)

        def channel_up(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                for name, channel in status.channels.items():
                    if channel.state is not State.UNKNOWN:
                        family.add(f'{labels_of[status.site.id]},channel="{name}"',
                                   1 if channel.state is State.UP else 0)

        def channel_state(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                for name, channel in status.channels.items():
                    family.one_hot(f'{labels_of[status.site.id]},channel="{name}"',
                                   _CHANNEL_STATES, channel.state)

        def scenario(sample: Callable[[_Family, str, ScenarioResult], None]
                     ) -> Callable[[_Family, Sequence[SiteStatus]], None]:
            def write(family: _Family, statuses: Sequence[SiteStatus]) -> None:
                for status in statuses:
                    labels = labels_of[status.site.id]
                    for name, result in status.scenarios.items():
                        sample(family, f'{labels},scenario="{name}"', result)
            return write

        def endurance(family: _Family, labels: str, result: ScenarioResult) -> None:
            if result.endurance.exact:
                family.add(labels, result.endurance.lower * 3600)

        def at_least(family: _Family, labels: str, result: ScenarioResult) -> None:
            if not result.endurance.exact:
                family.add(labels, result.endurance.lower * 3600)

        def target(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                if status.scenarios:
                    family.add(labels_of[status.site.id], status.site.target_hours * 3600)

        def until(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                for result in status.scenarios.values():
                    if result.until is not None:
                        family.add(labels_of[status.site.id], result.until)

        def bearing(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                if (now := status.scenarios.get("now")) is not None:
                    family.add(labels_of[status.site.id], len(now.outages))

        def outage(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                for kind in OUTAGE_KINDS:
                    family.add(f'{labels_of[status.site.id]},outage="{kind}"',
                               1 if status.outages.get(kind) else 0)

        def outage_since(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                for kind in OUTAGE_KINDS:
                    if (active := status.outages.get(kind)) is not None:
                        family.add(f'{labels_of[status.site.id]},outage="{kind}"', active.since)

        def trap_path(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                if (path := status.trap_path) is not None and path.state is not State.UNKNOWN:
                    family.add(labels_of[status.site.id], 1 if path.state is State.UP else 0)

        def trap_heard(family: _Family, statuses: Sequence[SiteStatus]) -> None:
            for status in statuses:
                if (path := status.trap_path) is not None and path.heard is not None:
                    family.add(labels_of[status.site.id], path.heard)

        # A site's status is the last evaluation's object while nothing in it changed.
        same = [_Same(statuses) for _, statuses in blocks]
        for family, keys, write in (
            (_Family("commsmon_site_info", "gauge",
                     "Inventory of sites (value 1): name, town, role and coordinates from the "
                     "config."), [()] * len(blocks), info),
            (_Family("commsmon_site_reachable", "gauge",
                     "1 if at least one channel to the command centre works, 0 if none does "
                     "(isolated); absent while unknown."),
             _per_block(blocks, operator.attrgetter("reachable")), reachable),
            (_Family("commsmon_site_state", "gauge",
                     "1 for the site's current state, 0 for the others."),
             _per_block(blocks, _state), state),
            (_Family("commsmon_site_channel_up", "gauge",
                     "1 if the channel works, 0 if every provider fails; absent while "
                     "unknown."), same, channel_up),
            (_Family("commsmon_site_channel_state", "gauge",
                     "1 for the channel's current state (up, down, unknown), 0 for the "
                     "others."), same, channel_state),
            (_Family("commsmon_site_scenario_ready", "gauge",
                     "1 if the site certainly lasts its target in the scenario (network, "
                     "road, power, all; now: only the outages active now), else 0."),
             same, scenario(lambda f, lb, r: f.add(lb, 1 if r.ready else 0))),
            (_Family("commsmon_site_scenario_endurance_seconds", "gauge",
                     "Seconds the site lasts in the scenario (its longest-lived channel; a "
                     "hub its shortest-lived support); 0 if no channel works, +Inf if "
                     "unbounded, absent while unknown."), same, scenario(endurance)),
            (_Family("commsmon_site_scenario_endurance_at_least_seconds", "gauge",
                     "While the scenario's endurance is unknown: the seconds that are certain "
                     "(absent when it is known)."), same, scenario(at_least)),
            (_Family("commsmon_site_channels_surviving", "gauge",
                     "Number of channels that last the target in the scenario."),
             same, scenario(lambda f, lb, r: f.add(lb, len(r.surviving)))),
            (_Family("commsmon_site_target_seconds", "gauge",
                     "Seconds the site must last on its own in each scenario."),
             same, target),
            (_Family("commsmon_site_reachable_until_timestamp_seconds", "gauge",
                     "With the outages active now, when the site stops being reachable, Unix "
                     "epoch seconds (at least, while unknown); absent while unbounded."),
             same, until),
            (_Family("commsmon_site_now_outages", "gauge",
                     "Outages active now that bear on the site: its own, and power cuts at "
                     "sites its channels go through (the district centre); the now scenario "
                     "judges exactly these."), same, bearing),
            (_Family("commsmon_site_outage_active", "gauge",
                     "1 while an outage (power, network, road) is detected or declared at the "
                     "site."), same, outage),
            (_Family("commsmon_site_outage_since_timestamp_seconds", "gauge",
                     "When the active outage was first seen or declared, Unix epoch seconds."),
             same, outage_since),
            (_Family("commsmon_site_trap_path_up", "gauge",
                     "1 while the site's kit's periodic traps arrive, 0 when none came for "
                     "twice its trap_every; absent while unknown or not checked."),
             same, trap_path),
            (_Family("commsmon_site_trap_last_received_timestamp_seconds", "gauge",
                     "When the latest trap from the site's kit arrived, Unix epoch seconds "
                     "(sites with trap_every)."), same, trap_heard),
        ):
            yield from self._family(family, blocks, keys, write)
        yield from self._tallies(
            _Family("commsmon_site_state_seconds", "counter",
                    "Seconds the site spent in each state since the daemon started."),
            blocks, lambda s: labels_of[s.site.id], _SITE_STATES, at)


def _per_block(blocks: Sequence[_Block[_T, _S]], value: Callable[[_S], object]
               ) -> list[tuple[object, ...]]:
    """Each block's key: ``value`` of each of its statuses."""
    return [tuple(map(value, statuses)) for _, statuses in blocks]


def _hours(status: DeviceStatus) -> float | None:
    return status.endurance.hours if status.endurance else None


class _Same:
    """A block's key that equals another made of the very same statuses, held weakly:
    a kept key keeps no superseded status (and its verdicts' facts) alive."""

    __slots__ = ("_refs",)

    def __init__(self, statuses: Sequence[SiteStatus]) -> None:
        self._refs = tuple(map(weakref.ref, statuses))

    def __eq__(self, other: object) -> bool:
        # A dead reference reads None: never the same as a status alive in the snapshot.
        return isinstance(other, _Same) and len(self._refs) == len(other._refs) \
            and all(map(operator.is_, map(operator.call, self._refs),
                        map(operator.call, other._refs)))

    __hash__ = None  # type: ignore[assignment]  # compared, never a dict key
