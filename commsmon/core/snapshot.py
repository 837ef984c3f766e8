"""What one evaluation of the fleet says, frozen: the only thing outputs read.

A :class:`Snapshot` holds every device's and site's status at one time, with
reasons as typed facts (never words) and the seconds each spent in every state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from commsmon.core.availability import Tally
from commsmon.core.endurance import Endurance
from commsmon.core.facts import Fact
from commsmon.core.model import Device, Site
from commsmon.core.outages import Outage, OutageKind
from commsmon.core.readiness import ScenarioResult
from commsmon.core.trappath import TrapPath
from commsmon.core.types import ChannelName, CheckIn, Reading, State

__all__ = ["Changes", "ChannelStatus", "DeviceStatus", "SiteStatus", "Snapshot"]


@dataclass(frozen=True, slots=True, weakref_slot=True)  # tests see them let go
class DeviceStatus:
    """A device as of one evaluation.

    Attributes:
        device: the inventory entry.
        state: effective state.
        since: epoch seconds when it entered ``state`` (the first evaluation
            for a device never seen).
        reasons: why it is not ``up`` (facts); ``()`` when up.
        readings: latest decoded readings, fresh or not.
        last_seen: epoch seconds of its last answer, ``None`` if never.
        tally: the seconds spent in each state since the daemon started
            (:meth:`seconds_at`).
        endurance: how long it keeps power if mains is lost now (the ``power``
            scenario with today's outages).
        checkin: its latest check-in, if any.
        checkin_stale: a device seen only by check-ins whose last one is
            missing or older than its validity.
        taken_at: when each reading was taken, epoch seconds.
        stale: readings older than their ``max_age``: name -> age in seconds.
        unavailable: readings last reported as not available: name -> since.
        unconfirmed: readings told by a trap that no poll has read since:
            name -> when told, epoch seconds.
    """

    device: Device
    state: State
    since: float
    reasons: tuple[Fact, ...]
    readings: Mapping[str, Reading]
    last_seen: float | None
    tally: Tally
    endurance: Endurance | None = None
    checkin: CheckIn | None = None
    checkin_stale: bool = False
    taken_at: Mapping[str, float] = field(default_factory=dict)
    stale: Mapping[str, float] = field(default_factory=dict)
    unavailable: Mapping[str, float] = field(default_factory=dict)
    unconfirmed: Mapping[str, float] = field(default_factory=dict)

    def seconds_at(self, at: float) -> dict[State, float]:
        """Seconds spent in each state since the daemon started, at ``at`` (the
        snapshot's time, epoch seconds)."""
        return self.tally.seconds_at(at)


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """One channel of a site: ``up``, ``down`` or ``unknown``.

    Attributes:
        channel: channel name.
        state: ``up`` if a provider and everything it depends on work;
            ``down`` if every provider is known to fail; else ``unknown``.
        providers: ids of the site's devices that provide it.
        checkin_only: unknown only through devices seen by check-ins alone
            (handhelds), which the monitor could never see: no sign it is blind.
    """

    channel: ChannelName
    state: State
    providers: tuple[str, ...]
    checkin_only: bool = False


@dataclass(frozen=True, slots=True, weakref_slot=True)  # /metrics' kept blocks follow them
class SiteStatus:
    """A site as of one evaluation.

    Attributes:
        site: the inventory entry.
        state: ``up`` every channel works, ``degraded`` some do, ``down`` none
            does (isolated), ``unknown`` none is known to work and some are
            unknown.  A site without channels (the district centre) takes the
            state of its devices.
        since: epoch seconds when it entered ``state``.
        reachable: at least one channel works; ``None`` while unknown.
        channels: its channels by name.
        tally: the seconds spent in each state since the daemon started
            (:meth:`seconds_at`).
        scenarios: readiness in each scenario (``network``, ``road``, ``power``,
            ``all``) and ``now``; empty for a site with nothing to judge.
        outages: outages in progress, by kind.
        trap_path: whether its traps reach the monitor (``None`` when not checked:
            no ``trap_every``).
    """

    site: Site
    state: State
    since: float
    reachable: bool | None
    channels: Mapping[ChannelName, ChannelStatus]
    tally: Tally
    scenarios: Mapping[str, ScenarioResult]
    outages: Mapping[OutageKind, Outage]
    trap_path: TrapPath | None = None

    def seconds_at(self, at: float) -> dict[State, float]:
        """Seconds spent in each state since the daemon started, at ``at`` (the
        snapshot's time, epoch seconds)."""
        return self.tally.seconds_at(at)


@dataclass(frozen=True, slots=True)
class Changes:
    """Which statuses of a snapshot are new against the snapshot its fleet made just
    before: every other status is the very object that one held.

    What follows statuses from one snapshot to the next (the alert rules, the change
    log) reads only these when it read that snapshot (``since``), and every status
    otherwise.

    Attributes:
        since: the generation of the snapshot before (0: none).
        generation: this snapshot's, unique among every fleet's.
        devices: ids of the devices whose status is another object.
        sites: ids of the sites whose status is another object.
        whole: every status is new, and some may be gone (the fleet's first
            snapshot, its first after a reload): read every one.
    """

    since: int
    generation: int
    devices: frozenset[str]
    sites: frozenset[str]
    whole: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the outputs read, frozen at one evaluation time ``at``.

    Attributes:
        at: epoch seconds of the evaluation.
        devices: every device by id.
        sites: every site by id.
        cut_off: why the monitor itself seems cut off (its broker is
            unreachable, or every site went silent at once: a ``cut_off``
            fact), else ``None``.
        faults: the monitor's own faults that do not stop it monitoring, by
            name (``state_dir``: its disk refuses writes; ``mqtt_client_id``:
            another instance takes our session; ``receiver:<name>``: a robot
            rejects our messages), each a fact saying what is wrong.
        changes: which statuses are new since the fleet's snapshot before, as
            the fleet that made it tells; ``None`` when not known: then every
            status may be.  Not compared.  A snapshot made with other statuses
            (``dataclasses.replace`` keeps it) must drop it; one with fewer, as a
            shard's report, may keep it.
    """

    at: float
    devices: Mapping[str, DeviceStatus]
    sites: Mapping[str, SiteStatus]
    cut_off: Fact | None = None
    faults: Mapping[str, Fact] = field(default_factory=dict)
    # Of the objects, not of what they tell: snapshots that tell alike are equal.
    changes: Changes | None = field(default=None, compare=False, repr=False)

    @property
    def generation(self) -> int | None:
        """:attr:`changes`' generation (``None``: not told)."""
        return self.changes.generation if self.changes is not None else None

    def new_since(self, generation: int | None) -> Changes | None:
        """:attr:`changes`, when a reader that last read the snapshot of
        ``generation`` (``None``: none, or one it did not finish) may read only the
        statuses they name; ``None`` when it must read every one."""
        changes = self.changes
        if changes is None or changes.whole or changes.since != generation:
            return None
        return changes
