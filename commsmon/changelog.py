"""What changed from one snapshot to the next: the timeline's events and the log's lines."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from commsmon.core.snapshot import SiteStatus, Snapshot
from commsmon.core.types import State
from commsmon.outputs.wording import Wording
from commsmon.state.dutylog import Event

__all__ = ["ChangeLog"]

log = structlog.get_logger("commsmon.daemon")

# Logs are for the operations engineer, in English.
_WORDS = Wording("en")


@dataclass(frozen=True, slots=True)
class _SiteStates:
    """What the timeline keeps of a site's status: values alone, so that equal ones can
    be one object (most villages' are alike)."""

    state: State
    outages: frozenset[str]
    verdicts: tuple[tuple[str, str], ...]  # (scenario, ready / not_ready / unknown)
    channels: tuple[tuple[str, State], ...]

    @classmethod
    def of(cls, site: SiteStatus) -> _SiteStates:
        return cls(site.state, frozenset(site.outages),
                   tuple((name, r.verdict) for name, r in site.scenarios.items()),
                   tuple((name, ch.state) for name, ch in site.channels.items()))


_NONE = _SiteStates(State.UNKNOWN, frozenset(), (), ())


class ChangeLog:
    """Follows each device's and site's states from one snapshot to the next.

    Only the statuses a snapshot holds anew (its :attr:`~Snapshot.changes`) can
    change anything, so after the first snapshot only those are compared: a
    province's steady evaluation replaces a few hundred of its 23 000.  A snapshot
    whose statuses are all new (the first, the first after a reload), whose changes
    are not told, or that does not follow the last one read, is compared whole.
    What is kept of each is its states, not its status: a status the fleet has
    replaced is let go at once.
    """

    def __init__(self) -> None:
        self._devices: dict[str, State] = {}
        self._sites: dict[str, _SiteStates] = {}
        # Each distinct site states kept, once (3 334 villages keep a few dozen).
        self._alike: dict[_SiteStates, _SiteStates] = {}
        self._generation: int | None = None  # of the last snapshot read
        self._seen = False

    def events(self, snap: Snapshot) -> list[Event]:
        """The timeline's events since the last snapshot: states and verdicts that
        changed, outages that began or ended.  The first time, every state and verdict
        as first seen (``old`` empty), so history can be recounted; after it, one log
        line per device or site whose state changed (never one per poll)."""
        at, first, self._seen = snap.at, not self._seen, True
        delta = snap.new_since(self._generation)
        self._generation = None  # until this snapshot is read: one that fails is not followed
        events = []
        devices = self._devices
        # In the snapshot's order (the inventory's), whichever way they are found.
        new_devices = [d for d in snap.devices if d in delta.devices] if delta is not None \
            else snap.devices
        for device_id in new_devices:
            now = snap.devices[device_id]
            prior = devices.get(device_id)
            devices[device_id] = now.state
            if prior is now.state:
                continue
            where = now.device.site
            events.append(Event(at, where, "device_state", device_id,
                                prior.value if prior else "", now.state.value))
            if prior is not None and not first:
                log.info("device state changed", site=where, device=device_id,
                         old=prior.value, new=now.state.value,
                         reason=_WORDS.facts(now.reasons, where) or None)
        sites = self._sites
        new_sites = [s for s in snap.sites if s in delta.sites] if delta is not None else snap.sites
        for site_id in new_sites:
            site = snap.sites[site_id]
            was = sites.get(site_id)
            states = _SiteStates.of(site)
            if states == was:
                continue
            states = sites[site_id] = self._alike.setdefault(states, states)
            events += _site_events(at, site_id, was, states)
            if was is not None and was.state is not site.state and not first:
                log.info("site state changed", site=site_id, old=was.state.value,
                         new=site.state.value,
                         channels={c: s.value for c, s in states.channels})
        for followed, present in ((devices, snap.devices), (sites, snap.sites)):
            if delta is None or len(followed) > len(present):  # a reload took some away
                for gone in [k for k in followed if k not in present]:
                    del followed[gone]
        if len(self._alike) > 2 * len(sites) + 64:  # mostly states no site holds now
            self._alike = {states: states for states in sites.values()}
        self._generation = snap.generation
        return events


def _site_events(at: float, site_id: str, before: _SiteStates | None,
                 after: _SiteStates) -> list[Event]:
    was = before or _NONE
    events = []
    if before is None or before.state is not after.state:
        events.append(Event(at, site_id, "site_state", site_id,
                            before.state.value if before else "", after.state.value))
    was_channels, was_verdicts = dict(was.channels), dict(was.verdicts)
    for channel, state in after.channels:
        old = was_channels.get(channel)
        if old is not state:
            events.append(Event(at, site_id, "channel_state", f"{site_id}/{channel}",
                                old.value if old else "", state.value))
    for name, verdict in after.verdicts:
        old_verdict = was_verdicts.get(name)
        if verdict != old_verdict:
            events.append(Event(at, site_id, "readiness", f"{site_id}/{name}",
                                old_verdict or "", verdict))
    events += [Event(at, site_id, "outage_start", k)
               for k in sorted(after.outages - was.outages)]
    events += [Event(at, site_id, "outage_end", k) for k in sorted(was.outages - after.outages)]
    return events
