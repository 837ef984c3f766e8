"""The simulated kit's traps: SNMPv2c notifications as a UPS (RFC 1628) and a router
(IF-MIB linkUp) send them.

Sent from 127.0.0.1 (as if through the village router's NAT) with
snmpTrapAddress.0 naming the device (its first ``snmp.trap_from``), so the
receiver matches them as it would behind a real router.
"""

from __future__ import annotations

import contextlib
import socket

from pyasn1.codec.ber import encoder
from pysnmp.proto import api, rfc1902

__all__ = ["ALARM_REMOVED", "LINK_UP", "ON_BATTERY", "TrapSender", "encode_v2c_trap"]

ON_BATTERY = "1.3.6.1.2.1.33.2.1"  # UPS-MIB upsTrapOnBattery
ALARM_REMOVED = "1.3.6.1.2.1.33.2.4"  # UPS-MIB upsTrapAlarmEntryRemoved
LINK_UP = "1.3.6.1.6.3.1.1.5.4"  # IF-MIB linkUp
_MINUTES = "1.3.6.1.2.1.33.1.2.3.0"  # upsEstimatedMinutesRemaining
_SECONDS = "1.3.6.1.2.1.33.1.2.2.0"  # upsSecondsOnBattery
_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"  # snmpTrapAddress.0


class TrapSender:
    """Sends v2c traps to one receiver.

    Args:
        host: the receiver's address (loopback).
        port: its UDP port.
        community: the community the receiver accepts.
    """

    def __init__(self, host: str, port: int, community: str) -> None:
        self.address, self.community = (host, port), community
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def on_battery(self, device_address: str, minutes: int, seconds: int) -> None:
        """upsTrapOnBattery with the minutes left and the seconds on battery."""
        self._send(ON_BATTERY, (_MINUTES, rfc1902.Integer32(minutes)),
                   (_SECONDS, rfc1902.Integer32(seconds)),
                   (_TRAP_ADDRESS, rfc1902.IpAddress(device_address)))

    def alarm_removed(self, device_address: str) -> None:
        """upsTrapAlarmEntryRemoved (the on-battery alarm cleared)."""
        self._send(ALARM_REMOVED, (_TRAP_ADDRESS, rfc1902.IpAddress(device_address)))

    def link_up(self, device_address: str, ifindex: int) -> None:
        """linkUp (IF-MIB) for ``ifindex``: ifIndex, ifAdminStatus up, ifOperStatus up."""
        self._send(LINK_UP, (f"1.3.6.1.2.1.2.2.1.1.{ifindex}", rfc1902.Integer32(ifindex)),
                   (f"1.3.6.1.2.1.2.2.1.7.{ifindex}", rfc1902.Integer32(1)),
                   (f"1.3.6.1.2.1.2.2.1.8.{ifindex}", rfc1902.Integer32(1)),
                   (_TRAP_ADDRESS, rfc1902.IpAddress(device_address)))

    def close(self) -> None:
        self._sock.close()

    def _send(self, oid: str, *varbinds: tuple[str, object]) -> None:
        with contextlib.suppress(OSError):  # a trap is best effort, as on the real kit
            self._sock.sendto(encode_v2c_trap(self.community, oid, *varbinds), self.address)


def encode_v2c_trap(community: str, oid: str, *varbinds: tuple[str, object]) -> bytes:
    """An SNMPv2-Trap-PDU message (RFC 3416 §4.2.6) as snmptrap sends it: sysUpTime.0 0,
    snmpTrapOID.0 ``oid``, then ``varbinds`` (OID, pysnmp rfc1902 value)."""
    module = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = module.SNMPv2TrapPDU()
    module.apiTrapPDU.set_defaults(pdu)
    module.apiTrapPDU.set_varbinds(pdu, [
        ("1.3.6.1.2.1.1.3.0", rfc1902.TimeTicks(0)),
        ("1.3.6.1.6.3.1.1.4.1.0", rfc1902.ObjectName(oid)), *varbinds])
    message = module.Message()
    module.apiMessage.set_defaults(message)
    module.apiMessage.set_community(message, community)
    module.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))
