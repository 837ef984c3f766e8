"""The fast path's reading of v1 and v2c traps equals pysnmp's (the reference): same
trap OID, same varbinds, same types, for the traps the profiles know."""

from __future__ import annotations

import pytest
from pyasn1.codec.ber import encoder
from pysnmp.proto import api, rfc1902

from commsmon.sources.snmp.base import SnmpValue, ValueType
from commsmon.sources.traps.decode import SNMP_TRAP_ADDRESS, SNMP_TRAP_OID, read_trap


def message(version: int, pdu: object) -> bytes:
    module = api.PROTOCOL_MODULES[version]
    msg = module.Message()
    module.apiMessage.set_defaults(msg)
    module.apiMessage.set_community(msg, "c1")
    module.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def test_a_v2c_trap_reads_as_sent() -> None:
    module = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = module.SNMPv2TrapPDU()
    module.apiTrapPDU.set_defaults(pdu)
    module.apiTrapPDU.set_varbinds(pdu, [
        ("1.3.6.1.2.1.1.3.0", rfc1902.TimeTicks(4200)),
        (SNMP_TRAP_OID, rfc1902.ObjectName("1.3.6.1.2.1.33.2.1")),
        ("1.3.6.1.2.1.33.1.2.3.0", rfc1902.Integer32(-1)),
        ("1.3.6.1.2.1.33.1.2.2.0", rfc1902.Gauge32(4_000_000_000)),
        ("1.3.6.1.2.1.2.2.1.10.2", rfc1902.Counter64(2**40)),
        ("1.3.6.1.2.1.1.5.0", rfc1902.OctetString("石门村 UPS".encode())),
        (SNMP_TRAP_ADDRESS, rfc1902.IpAddress("10.8.1.20"))])
    trap = read_trap(message(api.SNMP_VERSION_2C, pdu))
    assert trap is not None
    assert (trap.community, trap.oid) == (b"c1", "1.3.6.1.2.1.33.2.1")
    assert trap.values == {
        "1.3.6.1.2.1.1.3.0": SnmpValue(ValueType.TIMETICKS, 4200),
        SNMP_TRAP_OID: SnmpValue(ValueType.OBJECT_IDENTIFIER, "1.3.6.1.2.1.33.2.1"),
        "1.3.6.1.2.1.33.1.2.3.0": SnmpValue(ValueType.INTEGER, -1),
        "1.3.6.1.2.1.33.1.2.2.0": SnmpValue(ValueType.GAUGE32, 4_000_000_000),
        "1.3.6.1.2.1.2.2.1.10.2": SnmpValue(ValueType.COUNTER64, 2**40),
        "1.3.6.1.2.1.1.5.0": SnmpValue(ValueType.OCTET_STRING, "石门村 UPS".encode()),
        SNMP_TRAP_ADDRESS: SnmpValue(ValueType.IP_ADDRESS, "10.8.1.20"),
    }


@pytest.mark.parametrize(("generic", "specific", "expected"), [
    (6, 1, "1.3.6.1.2.1.33.2.0.1"),  # enterprise-specific: enterprise.0.specific
    (2, 0, "1.3.6.1.6.3.1.1.5.3"),   # linkDown: snmpTraps.(generic + 1)
])
def test_a_v1_trap_reads_in_the_v2_form(generic: int, specific: int, expected: str) -> None:
    module = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
    pdu = module.TrapPDU()
    module.apiTrapPDU.set_defaults(pdu)
    module.apiTrapPDU.set_enterprise(pdu, "1.3.6.1.2.1.33.2")
    module.apiTrapPDU.set_agent_address(pdu, "10.8.1.20")
    module.apiTrapPDU.set_generic_trap(pdu, generic)
    module.apiTrapPDU.set_specific_trap(pdu, specific)
    module.apiTrapPDU.set_varbinds(pdu, [("1.3.6.1.2.1.33.1.2.3.0", rfc1902.Integer32(12))])
    trap = read_trap(message(api.SNMP_VERSION_1, pdu))
    assert trap is not None and trap.oid == expected
    assert trap.values[SNMP_TRAP_ADDRESS] == SnmpValue(ValueType.IP_ADDRESS, "10.8.1.20")
    assert trap.values["1.3.6.1.2.1.33.1.2.3.0"] == SnmpValue(ValueType.INTEGER, 12)


def test_what_is_not_a_v1_v2c_trap_is_left_to_pysnmp() -> None:
    module = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    inform = module.InformRequestPDU()
    module.apiPDU.set_defaults(inform)
    assert read_trap(message(api.SNMP_VERSION_2C, inform)) is None
    assert read_trap(b"") is None
    assert read_trap(bytes.fromhex("3005020103")) is None  # SNMPv3
