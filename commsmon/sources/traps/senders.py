"""Which device a trap is from: its v3 engine ID, then the address it names, then the
address it came from — the rule used recorded, an ambiguous one never guessed.

Behind a village router's NAT the UDP source is the router, not the UPS behind it,
so the address the trap names (``snmpTrapAddress.0``, 1.3.6.1.6.3.18.1.3.0, which
pysnmp also fills from a v1 trap's agent-addr, RFC 3584 §3.1) comes before the
source (as Zabbix's handler does); a v3 trap's engine ID, unique per agent
(RFC 3411), comes first of all (as ktranslate does).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from commsmon.config.settings import Config

__all__ = ["Match", "Sender", "Senders", "senders_from_config"]

Rule = Literal["engine_id", "trap_address", "source"]


@dataclass(frozen=True, slots=True)
class Sender:
    """A device that may send traps.

    Attributes:
        device: its id.
        profile: its profile's name (what its traps mean).
        addresses: IP literals it sends from or names (its SNMP host, ``trap_from``).
        engine_id: its snmpEngineID, for v3 traps.
        params: its ``params``, filling ``{name}`` placeholders in its profile's
            trap varbind OIDs (linkDown's ifOperStatus.{uplink_ifindex}).
    """

    device: str
    profile: str
    addresses: tuple[str, ...]
    engine_id: bytes | None = None
    params: Mapping[str, int | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Match:
    """The answer for one trap.

    Attributes:
        sender: the device, ``None`` if none or several fit.
        rule: which fact decided (``None`` when nothing did).
        ambiguous: the devices that fit equally when several did.
    """

    sender: Sender | None
    rule: Rule | None = None
    ambiguous: tuple[str, ...] = ()


@dataclass(slots=True)
class Senders:
    """Every device that may send traps, indexed by engine ID and by address."""

    by_engine: dict[bytes, list[Sender]] = field(default_factory=dict)
    by_address: dict[str, list[Sender]] = field(default_factory=dict)

    @classmethod
    def of(cls, senders: Iterable[Sender]) -> Senders:
        found = cls()
        for sender in senders:
            if sender.engine_id:
                found.by_engine.setdefault(sender.engine_id, []).append(sender)
            for address in sender.addresses:
                found.by_address.setdefault(address, []).append(sender)
        return found

    def shared(self) -> dict[str, tuple[str, ...]]:
        """Addresses several devices send from: their traps need ``snmpTrapAddress.0``
        or an engine ID to be told apart (a located warning at load)."""
        return {a: tuple(s.device for s in senders)
                for a, senders in self.by_address.items() if len(senders) > 1}

    def match(self, engine_id: bytes | None, trap_address: str | None, source: str) -> Match:
        """The device a trap is from.

        Args:
            engine_id: the v3 sender's snmpEngineID (``None`` for v1/v2c).
            trap_address: ``snmpTrapAddress.0`` / the v1 agent-addr, if the trap has one.
            source: the UDP source address.
        """
        tries: list[tuple[Rule, list[Sender]]] = [
            ("engine_id", self.by_engine.get(engine_id, []) if engine_id else []),
            ("trap_address", self.by_address.get(trap_address, []) if trap_address else []),
            ("source", self.by_address.get(source, [])),
        ]
        for rule, senders in tries:
            if len(senders) == 1:
                return Match(senders[0], rule)
            if senders:
                return Match(None, rule, tuple(s.device for s in senders))
        return Match(None)


def senders_from_config(config: Config) -> Senders:
    """A :class:`Sender` for every SNMP device: its host (if an IP literal) and its
    ``trap_from`` addresses, its ``engine_id``."""
    senders = []
    for _, device in config.devices():
        snmp = device.snmp
        if snmp is None or device.profile is None:
            continue
        addresses = [str(a) for a in snmp.trap_from]
        with contextlib.suppress(ValueError):
            addresses.insert(0, str(ipaddress.ip_address(snmp.host)))
        engine = bytes.fromhex(snmp.engine_id.removeprefix("0x")) if snmp.engine_id else None
        senders.append(Sender(device.id, device.profile, tuple(dict.fromkeys(addresses)),
                              engine, device.params))
    return Senders.of(senders)
