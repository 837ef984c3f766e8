"""Named types shared by the core, the sources and the outputs."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "CHANNELS",
    "DEVICE_KINDS",
    "FAILURES",
    "WORKING",
    "ChannelName",
    "CheckIn",
    "DeviceKind",
    "Failure",
    "Observation",
    "Reading",
    "State",
]

DeviceKind = Literal[
    "pdt_repeater",
    "pdt_terminal",
    "satphone",
    "generator",
    "ups",
    "camera",
    "router",
    "beidou",
    "gateway",
]
DEVICE_KINDS: tuple[DeviceKind, ...] = DeviceKind.__args__  # type: ignore[attr-defined]

ChannelName = Literal["pdt370", "satellite", "public", "beidou"]
CHANNELS: tuple[ChannelName, ...] = ChannelName.__args__  # type: ignore[attr-defined]

#: A decoded reading: a number in SI units (volts, seconds, ratio 0-1, dBm ...),
#: an enum member name or a text, or a truth value.
Reading = float | str | bool


class State(enum.StrEnum):
    """Device or site state (DESIGN.md §3).

    ``degraded``: answers and works, but a health rule wants attention (low
    battery, an alarm).  ``lost`` (devices only): answers but cannot carry its
    channel (not registered, no signal, no SIM); it counts as not working
    everywhere.  ``unknown`` is never the device's fault: never seen, its
    parent or the monitor's own link is cut off.  It is excluded from
    availability.
    """

    UP = "up"
    DEGRADED = "degraded"
    LOST = "lost"
    DOWN = "down"
    UNKNOWN = "unknown"


#: States in which a device still does its job (``degraded`` still works).
WORKING: tuple[State, ...] = (State.UP, State.DEGRADED)

#: Why a device did not answer, as a source tells it: the SNMP request timed
#: out (``no_answer``), the agent answered an error status (``snmp_error``), an
#: MQTT presence ``offline`` or Last Will (``offline``), a keeper's test call
#: failed (``checkin_failed``), replies came only from an address the target
#: does not allow (``unexpected_source``), replies did not match the request
#: (``protocol_error``: a request id cut to 16 bits, an undecodable PDU), or the
#: agent rejected our credentials (``auth_error``: a USM error such as unknown
#: user, wrong digest, decryption error, notInTimeWindow after a re-sync).  An
#: ``auth_error`` makes the device unmonitored (``unknown``), never ``down``:
#: it is the monitor's configuration that is at fault.
Failure = Literal["no_answer", "snmp_error", "offline", "checkin_failed",
                  "unexpected_source", "protocol_error", "auth_error"]
FAILURES: tuple[Failure, ...] = Failure.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Observation:
    """What a source saw of one device at one moment.

    Attributes:
        device: the device id from the inventory.
        at: when it was seen, seconds since the Unix epoch (the message's own
            timestamp where it carries one, else the receive time).
        reachable: whether the device answered.
        readings: decoded readings by the profile's reading name; only the
            ones that decoded (a value that would not decode is absent, not 0).
        conclusive: a failure that needs no confirmation (an MQTT presence
            ``offline`` or Last Will), so hysteresis is skipped.
        error: why it failed (:data:`Failure`), ``None`` when it answered.
        detail: what the source knows more of a failure (an SNMP error status,
            a keeper's note), as it came.
        missing: readings asked for (or sent) this time with no usable value:
            a vendor sentinel (-1 "not supported", ``N/A``), noSuchInstance, a
            value that would not decode.  Their last value is not known any
            more, from ``at`` on.
        retained: an MQTT retained message replayed at subscribe: the last
            known state only, never live evidence (``at`` is its own
            timestamp where it carries one, else when it was received).
        unconfirmed: readings the device pushed unasked (an SNMP trap): they
            apply at once but stay unconfirmed until a check that reads them
            (the poll the trap asks for) reports them; the observation says
            nothing of reachability, so it never raises nor clears a state.
    """

    device: str
    at: float
    reachable: bool
    readings: Mapping[str, Reading] = field(default_factory=dict)
    conclusive: bool = False
    error: Failure | None = None
    detail: str = ""
    missing: frozenset[str] = frozenset()
    retained: bool = False
    unconfirmed: bool = False


@dataclass(frozen=True, slots=True)
class CheckIn:
    """A keeper's test call or roll-call answer for a device that cannot be polled.

    Attributes:
        device: the device id.
        at: when it was made, epoch seconds.
        ok: the call went through.
        by: who made it.
        note: free text.
        charge: battery charge the keeper read off, ratio 0-1, if given.
    """

    device: str
    at: float
    ok: bool
    by: str = ""
    note: str = ""
    charge: float | None = None
