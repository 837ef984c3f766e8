"""A v1 or v2c trap read straight from its bytes: the fast path past pysnmp.

pysnmp decodes a notification through pyasn1 and its whole engine at about a
millisecond of CPU each (bench/traps.py), which a storm turns into seconds of a
blocked event loop. A v1 or v2c trap needs none of that: no answer, no keys,
only its community compared, its varbinds read, and (v1) its header turned into
the v2 form. Informs (they need an answer) and SNMPv3 (keys, engine IDs) still
go through pysnmp.

BER as in X.690; layouts from RFC 1157 §4.1.6 (Trap-PDU) and RFC 3416 §3
(SNMPv2-Trap-PDU); the v1 to v2 translation is RFC 3584 §3.1: snmpTrapOID.0 is
``1.3.6.1.6.3.1.1.5.<generic+1>`` for a generic trap, else
``<enterprise>.0.<specific>``, and snmpTrapAddress.0 carries the agent-addr.
"""

from __future__ import annotations

from dataclasses import dataclass

from commsmon.sources.snmp.base import SnmpValue, ValueType
from commsmon.sources.snmp.wire import oid_text, read_tlv, read_value

__all__ = ["RawTrap", "read_trap"]

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
_V1_TRAP, _V2_TRAP = 0xA4, 0xA7


@dataclass(frozen=True, slots=True)
class RawTrap:
    """A trap read from its datagram.

    Attributes:
        community: the community it carried.
        oid: snmpTrapOID.0 (v1 translated).
        values: its varbinds by OID, with snmpTrapOID.0 and (v1) snmpTrapAddress.0.
    """

    community: bytes
    oid: str
    values: dict[str, SnmpValue]


def read_trap(data: bytes) -> RawTrap | None:
    """The v1 or v2c trap in ``data``; ``None`` if it is anything else (an inform,
    SNMPv3, a request), which pysnmp then handles.

    Raises:
        ValueError: a v1/v2c trap that does not decode (malformed).
    """
    if len(data) < 2 or data[0] != 0x30:
        return None
    try:
        _, pos, _ = read_tlv(data, 0)
        tag, start, end = read_tlv(data, pos)
        if tag != 0x02 or int.from_bytes(data[start:end], "big") not in (0, 1):
            return None
        tag, start, pos = read_tlv(data, end)
        community = data[start:pos]
        pdu, pos, _ = read_tlv(data, pos)
    except ValueError:
        return None
    if pdu not in (_V1_TRAP, _V2_TRAP):
        return None
    values: dict[str, SnmpValue] = {}
    if pdu == _V1_TRAP:
        enterprise, pos = read_value(data, pos)
        agent, pos = read_value(data, pos)
        generic, pos = read_value(data, pos)
        specific, pos = read_value(data, pos)
        stamp, pos = read_value(data, pos)
        if not (isinstance(generic.value, int) and isinstance(specific.value, int)
                and isinstance(enterprise.value, str)):
            raise ValueError("v1 trap without enterprise or generic/specific numbers")
        oid = (f"1.3.6.1.6.3.1.1.5.{generic.value + 1}" if generic.value < 6
               else f"{enterprise.value}.0.{specific.value}")
        values[SYS_UPTIME] = stamp
        values[SNMP_TRAP_OID] = SnmpValue(ValueType.OBJECT_IDENTIFIER, oid)
        values[SNMP_TRAP_ADDRESS] = agent
    else:
        for _ in range(3):  # request-id, error-status, error-index
            _, _, pos = read_tlv(data, pos)
    tag, pos, end = read_tlv(data, pos)
    if tag != 0x30:
        raise ValueError("no variable-bindings")
    while pos < end:
        _, start, pos = read_tlv(data, pos)  # VarBind ::= SEQUENCE { name, value }
        tag, name, inner = read_tlv(data, start)
        value, _ = read_value(data, inner)
        if tag == 0x06:
            values[oid_text(data[name:inner])] = value
    trap_oid = values.get(SNMP_TRAP_OID)
    if trap_oid is None or not isinstance(trap_oid.value, str):
        raise ValueError("no snmpTrapOID.0")
    return RawTrap(community, trap_oid.value, values)
