"""Typed facts: what the core found, for the outputs to put into words.

The core never writes a sentence.  A verdict's reason, a device's trouble, an
outage's evidence and an alert's details are :class:`Fact` values: a
:data:`FactCode` naming the kind of fact, and its terms — ids and the names the
configuration gives them, readings, values in their units, ages, the
arithmetic — which :mod:`commsmon.outputs.wording` renders in zh-CN or en.
Facts are plain data: they compare by value and go to JSON and back (alerts
keep them in the outbox across restarts).

Argument names say their unit, and the renderer formats by name:

========================  =============================================
``device``, ``site``      ids; ``name`` / ``site_name`` what the config calls them
``hours``, ``*_hours``    hours (``lower``/``upper`` of an endurance too)
``at``, ``since``, ``until``  epoch seconds
``age``, ``validity``     seconds
``ratio``, ``*_ratio``    ratio 0-1 (shown as %)
``litres``, ``rate``      litres; litres per hour
``channel``, ``scenario``, ``state``, ``outage``, ``reading``  enum members
========================  =============================================

A fact may hold other facts (``causes``, ``stages``, ``unknowns``): a link that
is down holds why the device is down.
"""

from __future__ import annotations

import math
from collections.abc import Callable, ItemsView, Iterator, Mapping
from dataclasses import FrozenInstanceError
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, get_args

__all__ = [
    "FACT_CODES", "DerivedFact", "Fact", "FactArg", "FactCode", "fact_from_json", "fact_to_json",
    "worked_out",
]

FactCode = Literal[
    # why a device is not up (DeviceStatus.reasons)
    "not_seen",            # never heard since the daemon started
    "source_lost",         # {source}: the monitor lost its MQTT link
    "monitor_blind",       # every site went silent at once: the monitor is cut off
    "behind_parent",       # {device, name, state}: the parent it sits behind is not working
    "parent_loop",         # parents form a loop in the configuration
    "checkin_missing",     # {validity}: no check-in recorded yet
    "checkin_stale",       # {at, age, validity}: last check-in older than its validity
    "checkin_failed",      # {at, note}: the last test call failed
    "no_answer",           # SNMP request timed out
    "snmp_error",          # {detail}: the agent answered with an error status
    "offline",             # MQTT presence offline or Last Will
    "unexpected_source",   # {address}: replies came only from an address the target does not allow
    "protocol_error",      # {detail}: replies did not match the request (request id cut to 16 bits)
    "auth_error",          # {detail, device?, name?}: the agent rejects our credentials
    "retained",            # {online, at}: only a retained message heard: the last known state
    "relearning",          # {source}: the broker came back; waiting for a live presence message
    "silent",              # {age}: a pushed device sent nothing for longer than allowed
    "health",              # {reading, value, effect, text_zh, text_en}: a profile rule fails
    # power stages (Endurance.stages): the arithmetic
    "link",                # {device, name, site, site_name}: the chain that follows is this link's
    "mains",               # {device, name}: on mains, which holds in this scenario
    "charger",             # {device, name}: a handheld charged by hand while mains and roads hold
    "mains_lost",          # {device, name, site, site_name, actual}: on mains only, mains lost
    "battery",             # {device, name, ratio, rated_hours, hours}
    "battery_decayed",     # {device, name, checkin_ratio, at, rated_hours, ratio, hours}
    "ups_runtime",         # {device, name, hours}
    "fuel",                # {device, name, litres, rate, load, hours}
    "feed_down",           # {device, name, state}: the UPS or generator feeding it does not work
    # what is not known (Endurance.unknowns)
    "feed_unknown",        # {device, name, causes}
    "reading_missing",     # {device, name, reading}: never reported
    "reading_stale",       # {device, name, reading, age, max_age}: last reported too long ago
    "reading_unavailable",  # {device, name, reading, since}: the device says "not available"
    "reading_unconfirmed",  # {device, name, reading, at}: told by a trap, no poll has read it yet
    "no_fuel_curve",       # {device, name}: generator without consumption_lph
    "powered_unexplained",  # {device, name, site, site_name}: works though its mains is out
    # channels and links
    "public_network",      # {actual}: the public network is lost (scenario, or now)
    "public_backup",       # {hours, remaining, since?}: base stations' backup once mains is lost
    "public_backup_unknown",  # {actual}: how long base stations last without mains is not known
    "link_down",           # {device, name, site, site_name, state, since, causes}
    "link_unknown",        # {device, name, site, site_name, causes}
    "no_channels",         # the village has no channel configured
    "channel_state",       # {channel, state}
    # the trap path (SiteStatus.trap_path)
    "trap_path_silent",    # {age, limit, at}: no trap from the site's kit for longer than limit
    "trap_path_waiting",   # {since, limit}: no trap yet since the monitor listens
    "traps_not_listening",  # the monitor does not listen for traps
    # outage evidence
    "ups_on_battery",      # {device, name, unconfirmed?}: upsOutputSource = battery
    "generator_without_mains",  # {device, name, unconfirmed?}
    "repeater_on_battery",  # {device, name, unconfirmed?}: rptSupplyPowerType = battery
    "input_line_bad",      # {device, name, at}: upsInputLineBads rose
    "public_silent",       # {devices, working}: every public device silent, others work
    "road_declared",       # {by, until, note}
    # verdicts (rules and alerts carry whole verdicts)
    "endurance",           # {lower, upper, stages, unknowns}
    "outlook",             # {channel | device, survives, endurance, dependents}
    "verdict",             # {scenario, ready, target_hours, endurance, outlooks, supports,
                           #  outages, until}
    "outage",              # {site, site_name, outage}: an active outage folded into a verdict
    # alert details
    "device",              # {device, name, kind, state, since, causes}
    "cut_off",             # {sources}: empty when every site went silent at once
    "state_dir",           # {detail}: the state directory refuses writes
    "client_id_taken",     # {client_id, count}: another MQTT client takes our session
    "receiver_rejecting",  # {receiver, code, detail}: a robot rejects our messages
    "countdown",           # {hours}: the threshold crossed
    # acknowledgement and escalation
    "escalation",          # {step, role, names, phones, since, restarts}: a policy's step
    "digest",              # {titles}: repeats told together in one message
]
FACT_CODES: tuple[str, ...] = get_args(FactCode)

#: A fact's term: a number, text, truth value, a list of ids, or nested facts.
FactArg: TypeAlias = "bool | int | float | str | tuple[str, ...] | Fact | tuple[Fact, ...] | None"


class Fact:
    """One thing the outputs put into words.

    Read-only, compared by value (the order its terms were given in aside), and
    not hashable.  Its terms are kept as a tuple of values beside a key index
    shared by every fact given the same names in the same order: a dict each
    cost a province's daemon about 100 bytes a fact more, over 150 000 facts.

    Attributes:
        code: what kind of fact (:data:`FactCode`).
        args: its terms, by the names the module docstring lists (a read-only
            mapping made on each access; :meth:`arg` reads one without it).
    """

    __slots__ = ("_index", "_values", "code")
    __match_args__ = ("code", "args")
    __hash__ = None  # type: ignore[assignment]  # compared by value, as a dict is

    code: FactCode
    _index: Mapping[str, int]
    _values: tuple[FactArg, ...]

    def __init__(self, code: FactCode, args: Mapping[str, FactArg] | None = None) -> None:
        setter = object.__setattr__
        setter(self, "code", code)
        if not args:
            setter(self, "_index", _NO_INDEX)
            setter(self, "_values", ())
            return
        keys = tuple(args)
        index = _INDEXES.get(keys)
        if index is None:
            index = _INDEXES.setdefault(keys, MappingProxyType({k: i for i, k in enumerate(keys)}))
        setter(self, "_index", index)
        setter(self, "_values", tuple(args.values()))

    @property
    def args(self) -> Mapping[str, FactArg]:
        return _Args(*self._pair())

    def _pair(self) -> tuple[Mapping[str, int], tuple[FactArg, ...]]:
        """The key index and the values."""
        return self._index, self._values

    def arg(self, name: str) -> FactArg:
        """The term ``name``, ``None`` when absent."""
        index, values = self._pair()
        i = index.get(name)
        return None if i is None else values[i]

    def facts(self, name: str) -> tuple[Fact, ...]:
        """The nested facts held under ``name`` (``()`` when none)."""
        value = self.arg(name)
        if isinstance(value, Fact):
            return (value,)
        if isinstance(value, tuple):
            return tuple(v for v in value if isinstance(v, Fact))
        return ()

    def number(self, name: str) -> float | None:
        """The number under ``name``, ``None`` when absent or not a number."""
        value = self.arg(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    def text(self, name: str) -> str:
        """The text under ``name``, ``""`` when absent."""
        value = self.arg(name)
        return value if isinstance(value, str) else ""

    def texts(self, name: str) -> tuple[str, ...]:
        """The texts listed under ``name`` (``()`` when absent)."""
        value = self.arg(name)
        if isinstance(value, tuple):
            return tuple(v for v in value if isinstance(v, str))
        return ()

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Fact):
            return NotImplemented
        if self.code != other.code:
            return False
        (index, values), (other_index, other_values) = self._pair(), other._pair()
        if index is other_index:
            return values == other_values
        return dict(zip(index, values, strict=True)) == dict(
            zip(other_index, other_values, strict=True))

    def __repr__(self) -> str:
        return f"Fact(code={self.code!r}, args={dict(self.args)!r})"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type[Fact], tuple[str, dict[str, FactArg]]]:
        return Fact, (self.code, dict(self.args))


class DerivedFact(Fact):
    """A fact worked out, each time its terms are read, from the object it tells of:
    ``make(source)`` gives the fact.  What keeps it keeps the object, not a second
    copy of it as facts: an alert pending on a verdict holds the verdict itself (a
    province's pending verdicts as facts were about 8 MiB more).  Equal to a fact of the
    same terms; to itself made again from the same object without working it out.

    Args:
        code: the code ``make`` gives.
        source: the object (read-only, like facts).
        make: the fact of ``source`` (a plain function: nothing else is kept).
    """

    __slots__ = ("_make", "_source")
    _make: Callable[[Any], Fact]
    _source: object

    def __init__(self, code: FactCode, source: object, make: Callable[[Any], Fact]) -> None:
        setter = object.__setattr__
        setter(self, "code", code)
        setter(self, "_source", source)
        setter(self, "_make", make)

    def _pair(self) -> tuple[Mapping[str, int], tuple[FactArg, ...]]:
        return self._make(self._source)._pair()

    def plain(self) -> Fact:
        """The fact worked out once, to keep where it is read often (a firing alert's,
        put into words for every message and kept by the dispatcher)."""
        return self._make(self._source)

    def __eq__(self, other: object) -> bool:
        # Made alike from equal objects: equal facts, without working either out (an
        # alert pending on a verdict compares it with the verdict judged again at every
        # change of its site: 60 % of the rules' time, working out both).
        if isinstance(other, DerivedFact) and other._make is self._make and (
                other._source is self._source or other._source == self._source):
            return True
        return super().__eq__(other)


def worked_out(facts: tuple[Fact, ...]) -> tuple[Fact, ...]:
    """``facts`` with each :class:`DerivedFact` worked out into the plain fact."""
    if not any(isinstance(f, DerivedFact) for f in facts):
        return facts
    return tuple(f.plain() if isinstance(f, DerivedFact) else f for f in facts)


# Each order of term names facts are made with, once: a few dozen (the codes' shapes).
_INDEXES: dict[tuple[str, ...], Mapping[str, int]] = {}
_NO_INDEX: Mapping[str, int] = MappingProxyType({})


class _Args(Mapping[str, FactArg]):
    """A fact's terms as a read-only mapping, in the order they were given."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: Mapping[str, int], values: tuple[FactArg, ...]) -> None:
        self._index, self._values = index, values

    def __getitem__(self, name: str) -> FactArg:
        return self._values[self._index[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._values)

    def items(self) -> ItemsView[str, FactArg]:
        return ItemsView(self)

    def __repr__(self) -> str:
        return repr(dict(self))

    def __reduce__(self) -> tuple[type[dict[str, FactArg]], tuple[dict[str, FactArg]]]:
        return dict, (dict(self),)  # pickled or copied: the terms as a dict


def fact_to_json(fact: Fact) -> dict[str, Any]:
    """``fact`` as JSON-ready data (an infinity becomes ``{"float": "inf"}`` and NaN
    ``{"float": "nan"}``: JSON has neither)."""
    index, values = fact._pair()  # not .args: an alert's save encodes tens of thousands
    return {"code": fact.code, "args": {
        k: v if type(v) in _AS_IS else _encode(v) for k, v in zip(index, values, strict=True)}}


def fact_from_json(data: Mapping[str, Any]) -> Fact:
    """The fact :func:`fact_to_json` wrote.

    Raises:
        ValueError: not such data.
    """
    code = data.get("code")
    args = data.get("args", {})
    if not isinstance(code, str) or not isinstance(args, Mapping):
        raise ValueError("a fact needs a 'code' and an 'args' object")
    return Fact(code, {str(k): _decode(v) for k, v in args.items()})  # type: ignore[arg-type]


#: Terms that are JSON as they are (floats are not: an infinity is not).
_AS_IS = frozenset({str, int, bool, type(None)})


def _encode(value: FactArg) -> Any:
    if isinstance(value, Fact):
        return fact_to_json(value)
    if isinstance(value, tuple):
        return [fact_to_json(v) if isinstance(v, Fact) else v for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": str(value)}  # "inf", "-inf", "nan": float() reads each back
    return value


def _decode(value: Any) -> FactArg:
    if isinstance(value, Mapping):
        if "float" in value:
            return float(value["float"])
        return fact_from_json(value)
    if isinstance(value, list):
        if all(isinstance(v, Mapping) for v in value):
            return tuple(fact_from_json(v) for v in value)
        return tuple(str(v) for v in value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"not a fact term: {value!r}")
