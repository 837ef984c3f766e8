"""What changed from one snapshot to the next: the timeline's events and the log's lines."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import structlog

from commsmon.core.snapshot import DeviceStatus, SiteStatus, Snapshot
from commsmon.core.types import State
from commsmon.outputs.wording import Wording
from commsmon.state.dutylog import Event

__all__ = ["ChangeLog"]

log = structlog.get_logger("commsmon.daemon")

# Logs are for the operations engineer, in English.
_WORDS = Wording("en")


@dataclass(frozen=True, slots=True)
class _SiteStates:
    """What the timeline keeps of a site's status."""

    state: State
    outages: frozenset[str]
    verdicts: dict[str, str]  # scenario -> ready, not_ready, unknown
    channels: dict[str, State]

    @classmethod
    def of(cls, site: SiteStatus) -> _SiteStates:
        return cls(site.state, frozenset(site.outages),
                   {name: r.verdict for name, r in site.scenarios.items()},
                   {name: ch.state for name, ch in site.channels.items()})


_NONE = _SiteStates(State.UNKNOWN, frozenset(), {}, {})


class ChangeLog:
    """Follows each device's and site's states from one snapshot to the next.

    A status that is the same object as in the last snapshot changed nothing (the
    fleet keeps a device's or a site's status while nothing in it changes), so only
    the others are compared: a province's steady evaluation replaces a few hundred
    of its 23 000.  Statuses are followed by weak reference: one the fleet has
    replaced is let go with its verdicts, not kept until the next evaluation.
    """

    def __init__(self) -> None:
        self._devices: dict[str, tuple[weakref.ref[DeviceStatus], State]] = {}
        self._sites: dict[str, tuple[weakref.ref[SiteStatus], _SiteStates]] = {}
        self._seen = False

    def events(self, snap: Snapshot) -> list[Event]:
        """The timeline's events since the last snapshot: states and verdicts that
        changed, outages that began or ended.  The first time, every state and verdict
        as first seen (``old`` empty), so history can be recounted; after it, one log
        line per device or site whose state changed (never one per poll)."""
        at, first, self._seen = snap.at, not self._seen, True
        events = []
        devices = self._devices
        for device_id, now in snap.devices.items():
            kept = devices.get(device_id)
            if kept is not None and kept[0]() is now:
                continue
            devices[device_id] = (weakref.ref(now), now.state)
            prior = kept[1] if kept is not None else None
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
        for site_id, site in snap.sites.items():
            was = sites.get(site_id)
            if was is not None and was[0]() is site:
                continue
            states = _SiteStates.of(site)
            sites[site_id] = (weakref.ref(site), states)
            events += _site_events(at, site_id, was[1] if was else None, states)
            if was is not None and was[1].state is not site.state and not first:
                log.info("site state changed", site=site_id, old=was[1].state.value,
                         new=site.state.value,
                         channels={c: s.value for c, s in states.channels.items()})
        for followed, present in ((devices, snap.devices), (sites, snap.sites)):
            if len(followed) > len(present):  # a reload took some away
                for gone in [k for k in followed if k not in present]:
                    del followed[gone]
        return events


def _site_events(at: float, site_id: str, before: _SiteStates | None,
                 after: _SiteStates) -> list[Event]:
    was = before or _NONE
    events = []
    if before is None or before.state is not after.state:
        events.append(Event(at, site_id, "site_state", site_id,
                            before.state.value if before else "", after.state.value))
    for channel, state in after.channels.items():
        old = was.channels.get(channel)
        if old is not state:
            events.append(Event(at, site_id, "channel_state", f"{site_id}/{channel}",
                                old.value if old else "", state.value))
    for name, verdict in after.verdicts.items():
        old_verdict = was.verdicts.get(name)
        if verdict != old_verdict:
            events.append(Event(at, site_id, "readiness", f"{site_id}/{name}",
                                old_verdict or "", verdict))
    events += [Event(at, site_id, "outage_start", k)
               for k in sorted(after.outages - was.outages)]
    events += [Event(at, site_id, "outage_end", k) for k in sorted(was.outages - after.outages)]
    return events
