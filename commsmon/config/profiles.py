"""Device profiles: where a model's readings are, how they decode, what makes it unhealthy.

Profiles are data, not code (one YAML file each in ``profiles_dir``), as
snmp_exporter's modules or Telegraf's field lists are.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from commsmon.config.base import Identifier, MetricName, Oid, Seconds, StrictModel
from commsmon.core.readings import ENUM_LABELS

Decode = Literal[
    "number", "text_number", "float32_le", "float32_be", "utf16", "text", "enum", "bool"
]


class UnsupportedWhen(StrictModel):
    """When a value the agent answers means "not supported", not the value itself.

    The reading is not known (as a sentinel) when it decodes to ``value`` and every
    other reading of the same answer named in ``readings`` has the value given
    there (decoded: enum member names, SI numbers).  E.g. an RFC 1628 UPS
    answering upsEstimatedMinutesRemaining 0 while on mains at 100 % charge.
    """

    value: float | str | bool
    readings: dict[Identifier, float | str | bool] = Field(min_length=1)


class ReadingSpec(StrictModel):
    """How to get one reading out of a varbind or a JSON field.

    ``value = raw * scale + offset`` for numbers, after ``decode``:
    ``number`` (INTEGER/Gauge/Counter, or a JSON number, or a string holding
    one), ``text_number`` (the first number in a text such as ``"52 PERCENT"``
    or ``"12.6 V"``), ``float32_le``/``float32_be`` (an IEEE-754 single packed
    in a 4-byte OCTET STRING), ``utf16`` (UTF-16LE text), ``text``, ``enum``
    (integer or string mapped through ``enum``), ``bool``.
    Raw values listed in ``invalid`` (vendor sentinels such as -1) give no
    sample, and make the last one not known at once.
    ``counter: 32`` or ``counter: 64`` makes the reading the rate per second
    of a Counter32/Counter64 (times ``scale``: 8 turns octets into bits), see
    :mod:`commsmon.sources.counters` for wraps and agent restarts; the width
    comes from here because not every SNMP backend reports the SMI type.
    An ``optional`` reading that the agent does not implement (noSuchObject)
    is skipped quietly: some firmware lacks it.
    ``max_age`` is how many seconds a reading stays true; an older one counts
    as not known (default: three poll intervals for SNMP, three
    ``telemetry_period`` for MQTT).
    ``unsupported_when`` names a value that means "not supported" given other
    readings of the same answer (:class:`UnsupportedWhen`).
    """

    oid: Oid | None = None
    field: str | None = None
    decode: Decode = "number"
    enum: dict[int | str, str] | None = None
    scale: float = 1.0
    offset: float = 0.0
    invalid: list[float | str] = []
    metric: MetricName | None = None
    help: str = ""
    optional: bool = False
    counter: Literal[32, 64] | None = None
    max_age: Seconds | None = None
    unsupported_when: UnsupportedWhen | None = None

    @model_validator(mode="after")
    def _check(self) -> ReadingSpec:
        if (self.oid is None) == (self.field is None):
            raise ValueError("give exactly one of 'oid' (SNMP) or 'field' (MQTT JSON)")
        if self.counter is not None and (self.decode != "number" or self.offset or self.invalid):
            raise ValueError("a counter is a plain number: no 'decode', 'offset' or 'invalid'")
        if (self.decode == "enum") != (self.enum is not None):
            raise ValueError("decode 'enum' and an 'enum' map go together")
        if self.metric and self.decode in ("text", "utf16", "enum"):
            raise ValueError("only numeric readings can be exposed as a metric")
        return self


class Bilingual(StrictModel):
    """A text in each language the product speaks (Chinese first)."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class HealthSpec(StrictModel):
    """A rule on an answering device (see ``HealthRule``).

    ``effect: degraded`` (default) means it still carries its channel but
    needs attention (low battery, an alarm); ``effect: lost`` means it answers
    but cannot carry its channel (not registered, no signal, no SIM), which
    counts as not working everywhere.  ``message`` says what is wrong in
    Chinese and English: ``{zh: 卫星电话未注册, en: satellite phone not registered}``.
    """

    reading: str
    message: Bilingual
    effect: Literal["degraded", "lost"] = "degraded"
    below: float | None = None
    above: float | None = None
    equals: list[float | str | bool] = []

    @model_validator(mode="after")
    def _one(self) -> HealthSpec:
        given = [self.below is not None, self.above is not None, bool(self.equals)]
        if sum(given) != 1:
            raise ValueError("give exactly one of 'below', 'above' or 'equals'")
        return self


#: Prefixes of the metric families commsmon writes itself (``commsmon_<prefix>...``:
#: the exposition's device/site/reading families and the daemon's own metrics); a
#: profile reading exposed under one of them would shadow or collide with a built-in
#: family.  tests/test_config.py checks every built-in family is covered.
RESERVED_METRIC_PREFIXES = (
    "device_", "site_", "reading_", "mqtt_", "snmp_", "alert_", "outbox_", "config_",
    "evaluation_", "event_loop_", "state_file_", "shard_", "receiver_", "traps_", "udp_", "ha_",
)


class TrapSpec(StrictModel):
    """What a trap (or inform) of a profile's device means.

    A trap only raises: its ``set`` values and the readings decoded from its
    ``varbinds`` apply at once (the UPS on battery: a power outage now); what
    would clear something is left to the poll it asks for (``poll``), so a trap
    never ends an outage on its own.

    Attributes:
        name: the trap's name, the ``trap`` label of commsmon_traps_received_total.
        set: readings the trap states (decoded values: enum labels, SI numbers).
        varbinds: readings decoded from the trap's varbinds, by varbind OID.
        poll: poll the device now to confirm (and to see what cleared).
        repeats: seconds between the repeats the device sends while the condition
            holds (upsTrapOnBattery: 60); repeats that stop for twice that without
            a trap that ``ends`` it ask for a poll instead of assuming anything.
        ends: names of repeating traps this one ends (the alarm removed ends
            on_battery's repeats).
        restart: the agent restarted (coldStart, warmStart): its counters'
            baselines are dropped before the poll, so no rate spans the restart.
    """

    name: Identifier
    set: dict[Identifier, float | str | bool] = {}
    varbinds: dict[Identifier, ReadingSpec] = {}
    poll: bool = True
    repeats: Seconds | None = None
    ends: list[Identifier] = []
    restart: bool = False


class Profile(StrictModel):
    """A device model: where its readings are and what makes it unhealthy.

    Attributes:
        source: ``snmp`` (readings by OID) or ``mqtt`` (readings by JSON field).
        presence: the device publishes ``online``/``offline`` on a status topic.
        telemetry: the device publishes JSON telemetry.
        telemetry_period: seconds expected between telemetry messages (MQTT);
            a reading is true for three of them unless it sets ``max_age``.
        stale_after: seconds of silence before a pushed device counts as
            failed; ``None`` to rely on presence (Last Will) alone.
        traps: what each trap OID the device sends means (:class:`TrapSpec`).
    """

    name: Identifier
    description: str = ""
    source: Literal["snmp", "mqtt"]
    presence: bool = False
    telemetry: bool = True
    telemetry_period: Seconds = 60.0
    stale_after: Seconds | None = None
    readings: dict[Identifier, ReadingSpec] = {}
    health: list[HealthSpec] = []
    traps: dict[Oid, TrapSpec] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        key = "oid" if self.source == "snmp" else "field"
        for name, spec in self.readings.items():
            if getattr(spec, key) is None:
                raise ValueError(f"reading {name}: a {self.source} profile needs '{key}'")
        for rule in self.health:
            if rule.reading not in self.readings:
                raise ValueError(f"health rule names unknown reading {rule.reading!r}")
        for name, spec in self.readings.items():
            when = spec.unsupported_when
            for other in when.readings if when else ():
                if other not in self.readings or other == name:
                    raise ValueError(f"reading {name}: unsupported_when names "
                                     f"{other!r}, not another reading of this profile")
        # Every reading of a device carries the same labels: one metric name, one reading,
        # or /metrics has two series Prometheus cannot tell apart (it keeps one).
        exposed: dict[str, str] = {}
        for name, spec in self.readings.items():
            if spec.metric is None:
                continue
            if spec.metric.startswith(RESERVED_METRIC_PREFIXES):
                raise ValueError(f"reading {name}: metric {spec.metric!r} would shadow a "
                                 f"built-in family (commsmon_{spec.metric}); names starting "
                                 f"with {', '.join(RESERVED_METRIC_PREFIXES)} are reserved")
            if spec.metric in exposed:
                raise ValueError(f"readings {exposed[spec.metric]} and {name} are both "
                                 f"exposed as metric {spec.metric!r} with the same labels")
            exposed[spec.metric] = name
        for name, label in ENUM_LABELS.items():
            found = self.readings.get(name)
            if found is not None and found.enum is not None and label not in found.enum.values():
                raise ValueError(f"reading {name}: its enum has no label {label!r}, which the "
                                 "core compares it with: without it the condition is never seen")
        for oid, trap in self.traps.items():
            for name in (*trap.set, *trap.varbinds):
                if name not in self.readings:
                    raise ValueError(f"trap {oid} ({trap.name}) names unknown reading {name!r}")
            # A reading has one type: a trap that tells a number where the poll reads a
            # bool or a label would be judged otherwise (the core asks `is False`).
            told = [(name, _told_kind(value)) for name, value in trap.set.items()]
            told += [(name, _KINDS[spec.decode]) for name, spec in trap.varbinds.items()]
            for name, kind in told:
                polled = self.readings[name]
                if kind != _KINDS[polled.decode]:
                    raise ValueError(
                        f"trap {oid} ({trap.name}) tells reading {name!r} as {kind}, but the "
                        f"reading is {_KINDS[polled.decode]} (decode: {polled.decode}): give "
                        "the trap's value the reading's type")
                value = trap.set.get(name)
                if polled.enum is not None and isinstance(value, str) \
                        and value not in polled.enum.values():
                    raise ValueError(
                        f"trap {oid} ({trap.name}) sets reading {name!r} to {value!r}, not one "
                        f"of its labels ({', '.join(sorted(set(polled.enum.values())))})")
        return self


#: What each decode gives: a number, a truth value or a text (an enum gives its label).
_KINDS: dict[str, str] = {
    "number": "a number", "text_number": "a number", "float32_le": "a number",
    "float32_be": "a number", "bool": "true/false", "text": "a text", "utf16": "a text",
    "enum": "a text",
}


def _told_kind(value: float | str | bool) -> str:
    """What a trap's ``set`` value is, in :data:`_KINDS`' words."""
    return "true/false" if isinstance(value, bool) else \
        "a text" if isinstance(value, str) else "a number"
