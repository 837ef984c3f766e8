"""Per-device reachability with hysteresis (DESIGN.md §3 "Device state").

A device goes ``down`` after ``down_after`` consecutive failed checks (or at
once on a conclusive failure such as an MQTT Last Will) and comes back ``up``
after ``up_after`` consecutive good checks, or at once on an explicit birth
(a live MQTT presence ``online``: hysteresis is for polled checks).  A
never-seen device is ``unknown``; so is one heard only through a retained
message (the last known state, never live evidence), and a presence-only
device whose source reconnected until a live message or an agreeing
retained one says how it is (:meth:`DeviceTracker.relearn`).  A device whose
agent rejects our credentials is unmonitored, not down (``unknown`` in
:mod:`commsmon.core.fleet`).  Whether an answering device is ``degraded``, and
whether a parent or the monitor itself makes it ``unknown``, is decided later,
in :mod:`commsmon.core.fleet`, from this raw state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from commsmon.core.facts import Fact
from commsmon.core.model import Device
from commsmon.core.readings import EVENT_COUNTERS
from commsmon.core.types import Observation, Reading, State

__all__ = ["DeviceTracker", "TakenTogether"]


@dataclass(slots=True)
class DeviceTracker:
    """Mutable reachability state of one device.

    Attributes:
        device: the inventory entry.
        raw: ``up``, ``down`` or ``unknown`` from reachability alone.
        fails: consecutive failed checks.
        oks: consecutive good checks.
        last_seen: when it last answered (epoch seconds), ``None`` if never.
        last_check: time of the newest observation applied (epoch seconds).
        readings: latest decoded readings by name.
        reading_at: when each reading was taken (epoch seconds); a
            :class:`TakenTogether` when all were taken at one time.
        unavailable: readings the device last reported with no usable value
            (a sentinel, noSuchInstance): name -> since (epoch seconds).
        failure: why its last check failed (a fact), cleared when it answers.
        rose_at: when each event counter (:data:`~commsmon.core.readings.EVENT_COUNTERS`:
            upsInputLineBads rising means an event since the last poll) last went up.
        known: the last known state from a retained message (a ``retained``
            fact) while nothing live was heard.
        relearning: the state learnt from live messages before the source
            reconnected, while it waits for its confirmation; ``None`` when not
            relearning.
        shared: whether ``readings`` was given out (:meth:`shared_readings`):
            then a change of reading replaces it, so what was given keeps what it
            showed.
        unconfirmed: readings last told by a trap that no check has read since:
            name -> when told (epoch seconds).

    The maps of times (``reading_at``, ``unavailable``, ``rose_at``,
    ``unconfirmed``) are replaced, never changed in place, so views and snapshots
    share them rather than copy them (10 000 UPSes answering some object as
    noSuchObject held a copy of their ``unavailable`` map in each status).
    """

    device: Device
    raw: State = State.UNKNOWN
    fails: int = 0
    oks: int = 0
    last_seen: float | None = None
    last_check: float | None = None
    readings: dict[str, Reading] = field(default_factory=dict)
    reading_at: Mapping[str, float] = field(default_factory=dict)
    unavailable: Mapping[str, float] = field(default_factory=lambda: _NO_TIMES)
    failure: Fact | None = None
    shared: bool = field(default=False, repr=False, compare=False)
    rose_at: Mapping[str, float] = field(default_factory=lambda: _NO_TIMES)
    known: Fact | None = None
    relearning: State | None = None
    unconfirmed: Mapping[str, float] = field(default_factory=lambda: _NO_TIMES)

    def shared_readings(self) -> Mapping[str, Reading]:
        """:attr:`readings`, to read only: the same object until one changes (snapshots
        share it: 20 000 devices polled every minute, evaluated every few seconds,
        would otherwise copy every map each time).  Once it is given out, a change of
        reading replaces :attr:`readings` rather than change it: what was given keeps
        what it showed, with no copy nor wrapper of its own."""
        self.shared = True
        return self.readings

    def rewind(self, now: float) -> None:
        """The wall clock stepped back to ``now``: times after it become ``now``.

        Otherwise every observation for the next hour after a one-hour step
        would look older than the last one (a replay) and change nothing.
        """
        if self.last_check is not None and self.last_check > now:
            self.last_check = now
        if self.last_seen is not None and self.last_seen > now:
            self.last_seen = now
        self.reading_at, self.rose_at, self.unavailable, self.unconfirmed = (
            _until(times, now)
            for times in (self.reading_at, self.rose_at, self.unavailable, self.unconfirmed))

    def observe(self, obs: Observation) -> None:
        """Apply one observation.

        An observation older than the newest one already applied (a replayed
        buffer, a stale retained message) updates readings it is the newest
        for, but never the reachability state.  A reading it names as
        ``missing`` loses its last value at once (a sentinel after a valid
        value is not known, never the old value).  An ``unconfirmed`` one (a
        trap) only updates readings, marked unconfirmed until a newer check
        reads them: a trap never makes a device up or down, so it cannot clear
        anything.
        """
        if obs.readings or obs.missing:
            self._take_readings(obs)
        if obs.unconfirmed:
            return
        if obs.retained:
            self._last_known(obs)
            return
        if self.last_check is not None and obs.at < self.last_check:
            return
        self.last_check = obs.at
        self.known = None
        if self.relearning is not None:  # live evidence: what it says is the state
            self.raw, self.relearning = State.UNKNOWN, None
        if obs.error == "auth_error":  # unmonitored: says nothing of the device itself
            self.failure = Fact("auth_error", {"detail": obs.detail})
            return
        if obs.reachable:
            self.last_seen = obs.at
            self.failure = None
            self.fails = 0
            self.oks += 1
            if self.raw is State.UNKNOWN or obs.conclusive or (
                self.raw is State.DOWN and self.oks >= self.device.up_after
            ):
                self.raw = State.UP
        else:
            self.failure = _failure(obs)
            self.oks = 0
            self.fails += 1
            if obs.conclusive or self.fails >= self.device.down_after:
                self.raw = State.DOWN

    def relearn(self) -> None:
        """The source reconnected: what presence said before may have changed unseen.

        For a device heard only through presence (no telemetry to go stale):
        ``unknown`` until a live message, or a retained one that agrees with
        what it was (the broker's current view: it kept the device's session).
        """
        if self.raw is not State.UNKNOWN:
            self.relearning, self.raw = self.raw, State.UNKNOWN
            self.oks = self.fails = 0

    def _last_known(self, obs: Observation) -> None:
        """A retained message: the last known state; restores a state it confirms."""
        if self.relearning is not None and obs.reachable == (self.relearning is State.UP):
            self.raw, self.relearning, self.known = self.relearning, None, None
        elif self.raw is State.UNKNOWN:
            self.known = Fact("retained", {"online": obs.reachable, "at": obs.at})

    def _take_readings(self, obs: Observation) -> None:
        at, readings, last = obs.at, self.readings, self.reading_at
        # Most observations come after every reading known, all taken together: then
        # no time is compared, and ``times`` holds only the readings this one names.
        together = last if type(last) is TakenTogether and at >= last.at else None
        after_all = together is not None
        times = {} if after_all else _writable(last)  # a copy: snapshots hold the old one
        # The common case, a check that reads values (no trap, nothing marked
        # unavailable or unconfirmed), skips those maps: this runs per message.  A
        # bool, decided once: the maps empty as the loop goes.
        bookkeeping = bool(obs.unconfirmed or self.unavailable or self.unconfirmed)
        rose: dict[str, float] | None = None
        for name, value in obs.readings.items():
            if after_all or at >= times.get(name, -math.inf):
                old = readings.get(name, _ABSENT)
                # By type too: False == 0.0, but the judgements ask `is False` (a number
                # told by a trap, then a bool polled, must become the bool).
                if old is _ABSENT or type(old) is not type(value) or old != value:
                    readings = self._unshared()
                    if name in EVENT_COUNTERS and _rose(old, value):
                        if rose is None:
                            rose = dict(self.rose_at)
                        rose[name] = at
                    readings[name] = value
                times[name] = at
                if bookkeeping:
                    self.unavailable = _without(self.unavailable, name)
                    self._confirm(name, obs)
        for name in obs.missing:
            if after_all or at >= times.get(name, -math.inf):
                if name in readings:
                    readings = self._unshared()
                    del readings[name]
                times[name] = at
                if name not in self.unavailable:
                    self.unavailable = {**self.unavailable, name: at}
                self._confirm(name, obs)
        if together is not None and times.keys() == together.names:
            self.reading_at = TakenTogether(at, together.names)
        else:
            self.reading_at = _together({**_writable(last), **times} if after_all else times,
                                        at, last)
        if rose is not None:
            self.rose_at = rose

    def _unshared(self) -> dict[str, Reading]:
        """:attr:`readings`, to change: a copy of it if :meth:`shared_readings` gave it
        out."""
        if self.shared:
            self.readings = dict(self.readings)
            self.shared = False
        return self.readings

    def _confirm(self, name: str, obs: Observation) -> None:
        """``name`` was just read from ``obs``: told by a trap, or confirmed (a newer
        check read it, agreeing or not: its value is the one that stands)."""
        if obs.unconfirmed:
            self.unconfirmed = {**self.unconfirmed, name: obs.at}
        else:
            self.unconfirmed = _without(self.unconfirmed, name)

    def expire(self, now: float, fresh_since: float | None) -> None:
        """Count a pushed device that has gone quiet as failed.

        Args:
            now: epoch seconds.
            fresh_since: epoch seconds since which the source could have
                delivered messages (its last reconnect); silence before that
                is the monitor's fault, not the device's.
        """
        limit = self.device.stale_after
        if limit is None:
            return
        heard = self.heard(fresh_since)
        if heard is not None and now - heard > limit:
            self.raw, self.known = State.DOWN, None
            self.oks = 0
            self.failure = Fact("silent", {"age": now - heard, "limit": limit})

    def heard(self, fresh_since: float | None) -> float | None:
        """Epoch seconds a pushed device's silence counts from (:meth:`expire`), or
        ``None`` when silence would not take it down (it is not up, nor known only
        from a retained message since the source's last reconnect)."""
        if self.raw is State.UNKNOWN and self.known is not None and fresh_since is not None:
            return fresh_since  # known only from a retained message, silent since
        if self.raw is not State.UP:
            return None
        return max(self.last_seen or float("-inf"), fresh_since or float("-inf"))


def _failure(obs: Observation) -> Fact:
    """Why ``obs`` failed, as a fact (a keeper's note or an SNMP status kept as given)."""
    if obs.error == "checkin_failed":
        return Fact("checkin_failed", {"at": obs.at, "note": obs.detail})
    if obs.error == "unexpected_source":
        return Fact("unexpected_source", {"address": obs.detail})
    if obs.error in ("snmp_error", "protocol_error"):
        return Fact(obs.error, {"detail": obs.detail})
    return Fact(obs.error or "no_answer")


class _NoTimes(dict[str, float]):
    """The empty map of times every tracker shares until it has one of its own (most
    never do: 60 000 empty dicts at 20 000 devices); writing to it, as to any map of
    times a tracker holds, is a bug."""

    def __setitem__(self, name: str, at: float) -> None:
        raise TypeError("the shared empty map of times is read-only")

    def setdefault(self, name: str, at: float) -> float:
        raise TypeError("the shared empty map of times is read-only")

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("the shared empty map of times is read-only")

    def __ior__(self, other: Any) -> _NoTimes:  # type: ignore[override,misc]
        raise TypeError("the shared empty map of times is read-only")

    def __reduce__(self) -> str:
        return "_NO_TIMES"  # a copied or pickled tracker shares the one map too


_NO_TIMES: Mapping[str, float] = _NoTimes()


def _without(times: Mapping[str, float], name: str) -> Mapping[str, float]:
    """``times`` less ``name``: itself if it has no such name, a new map otherwise."""
    if name not in times:
        return times
    return {n: at for n, at in times.items() if n != name} or _NO_TIMES


def _until(times: Mapping[str, float], now: float) -> Mapping[str, float]:
    """``times`` with those after ``now`` made ``now``: itself if none is."""
    if all(at <= now for at in times.values()):
        return times
    return {name: min(at, now) for name, at in times.items()}


class TakenTogether(Mapping[str, float]):
    """When each reading was taken, for readings all taken at one time: every name of
    ``names`` at ``at`` (epoch seconds).  Read-only.

    Most observations (a poll, a telemetry message) name every reading of their
    device, so this is how most devices hold their times: 48 B against a dict's
    184-272 (about 3 MiB less at 20 000 devices), the names shared by every device
    reporting the same ones.  Iterates in no fixed order.  Never changed: a new
    observation makes a new one.
    """

    __slots__ = ("at", "names")

    def __init__(self, at: float, names: frozenset[str]) -> None:
        self.at, self.names = at, names

    def __getitem__(self, name: str) -> float:
        if name in self.names:
            return self.at
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        return self.at if name in self.names else default

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"TakenTogether({self.at!r}, {sorted(self.names)!r})"


#: Each set of reading names a device reported together, once (the names of a profile).
_NAMES: dict[frozenset[str], frozenset[str]] = {}


def _writable(times: Mapping[str, float]) -> dict[str, float]:
    """A copy of ``times`` to change."""
    if type(times) is TakenTogether:
        return dict.fromkeys(times.names, times.at)
    return dict(times)


def _together(times: dict[str, float], at: float,
              last: Mapping[str, float]) -> Mapping[str, float]:
    """``times`` as a :class:`TakenTogether` if every reading in it was taken at ``at``
    (``last``, the map it replaces, lends its names when they are the same)."""
    if not times or list(times.values()).count(at) != len(times):
        return times
    if type(last) is TakenTogether and times.keys() == last.names:
        return TakenTogether(at, last.names)
    names = frozenset(times)
    return TakenTogether(at, _NAMES.setdefault(names, names))


_ABSENT: Any = object()  # no reading before (a reading is never this)
_NUMBERS = (int, float)  # exactly: a bool is a reading of its own kind, not a number


def _rose(old: Reading | None, new: Reading) -> bool:
    return type(old) in _NUMBERS and type(new) in _NUMBERS and new > old  # type: ignore[operator]
