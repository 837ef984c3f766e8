"""Which reply answers which request: one rule, kept here, for both SNMP backends.

Left to themselves the backends disagree. pysnmp's unconnected socket takes a
response from any address whose request-id matches; gufo's connected socket
never even sees one from another address (a VRRP pair, a router answering
from another interface: telegraf#11278). Neither accepts a late reply to an
earlier attempt, so an agent always a little slower than the timeout never
succeeds. Both backends therefore hand every request to a :class:`ReplyGate`
and every datagram they receive to it, and the gate decides:

- **Retransmission keeps the request id.** A request is sent again as the same
  bytes (same request-id, or msgID on v3) every ``timeout`` seconds, ``retries``
  times, as net-snmp does; a reply to any attempt answers it. The backend waits
  ``timeout * (retries + 1)`` for the one request.
- **Replies come from the target or its allow-list.** A reply is matched on
  request-id (v1, v2c: in the PDU) or msgID (v3: in the header, never
  encrypted) and accepted only from the address the request went to or one in
  the target's ``reply_from``. From any other address it is dropped, counted
  (``commsmon_snmp_replies_dropped_total{reason="unexpected_source"}``) and
  logged once per target and address.
- **What does not match the request is a protocol error**: a reply whose id is
  the request's cut to 16 bits (agents with a 16-bit request-id field), a
  datagram that does not parse as an SNMP message (an empty one included), and a
  GET or GETNEXT response without error-status whose varbind count differs from
  the request's (v1, v2c; a v3 scopedPDU may be encrypted and is not looked at).
  Dropped, counted as ``protocol_error``, logged once per target.
- **The rest is unmatched**: a duplicate of a reply already accepted, or one
  arriving after the request's last attempt timed out. Dropped and counted; no
  log (agents retransmit, and late replies are what retries are for).

When a request ends without an accepted reply, :meth:`ReplyGate.unanswered`
says whether something was dropped on its way, so the backend raises
:class:`~commsmon.errors.SnmpUnexpectedSource` or
:class:`~commsmon.errors.SnmpProtocolError` instead of a plain timeout, and
the device's reason says what happened.

Message layouts read here (BER, X.690): SNMPv1 and v2c ``Message ::= SEQUENCE
{ version INTEGER, community OCTET STRING, PDU }`` with ``PDU ::= [n] SEQUENCE
{ request-id INTEGER, error-status INTEGER, error-index INTEGER, variable-bindings
SEQUENCE OF VarBind }`` (RFC 1157 §4, RFC 3416 §3); SNMPv3 ``SNMPv3Message ::=
SEQUENCE { msgVersion INTEGER, msgGlobalData SEQUENCE { msgID INTEGER, ... }, ...
}`` (RFC 3412 §6).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

import structlog

from commsmon.errors import SnmpError, SnmpProtocolError, SnmpUnexpectedSource
from commsmon.log import LogOnce
from commsmon.selfmetrics import SNMP_REPLIES_DROPPED, SNMP_RETRANSMISSIONS
from commsmon.sources.snmp.base import SnmpValue, ValueType

__all__ = [
    "Message", "Misfit", "ReplyGate", "ReplyPolicy", "Stray", "oid_text", "parse_message",
    "read_integer", "read_tlv", "read_value", "stray_error",
]

log = structlog.get_logger("commsmon.snmp")

Address = tuple[str, int]
"""A UDP address: IP literal and port."""

GRACE: Final = 1.0
"""Seconds a request stays matchable after its last attempt's timeout: the backend
has given up by then, and a reply this late is counted as unmatched."""

_GET, _GETNEXT, _RESPONSE = 0xA0, 0xA1, 0xA2
_PDU_TAGS: Final = range(0xA0, 0xA9)  # RFC 3416: GetRequest .. Report
_UNSIGNED: Final = {0x41: ValueType.COUNTER32, 0x42: ValueType.GAUGE32,
                    0x43: ValueType.TIMETICKS, 0x46: ValueType.COUNTER64}


@dataclass(frozen=True, slots=True)
class Message:
    """The header facts of one SNMP message the gate matches on.

    Attributes:
        version: 0 (v1), 1 (v2c) or 3.
        id: request-id (v1, v2c) or msgID (v3).
        pdu: the PDU tag (0xA0 GetRequest ... 0xA8 Report) for v1/v2c; ``None`` for v3.
        error_status: the PDU's error-status (v1/v2c), else ``None``.
        varbinds: how many varbinds the PDU carries (v1/v2c), else ``None``.
    """

    version: int
    id: int
    pdu: int | None = None
    error_status: int | None = None
    varbinds: int | None = None


def parse_message(data: bytes) -> Message:
    """Read the version, id and PDU shape of an SNMP message.

    Args:
        data: one UDP datagram.

    Returns:
        The header facts; values beyond the varbind count are not decoded.

    Raises:
        ValueError: not a BER-encoded SNMP v1, v2c or v3 message (empty, cut short,
            wrong tags, an unknown version).
    """
    tag, pos, _ = read_tlv(data, 0)
    if tag != 0x30:
        raise ValueError("not a SEQUENCE")
    version, pos = read_integer(data, pos)
    if version in (0, 1):
        tag, _, pos = read_tlv(data, pos)  # community
        if tag != 0x04:
            raise ValueError("no community")
        pdu, pos, pdu_end = read_tlv(data, pos)
        if pdu not in _PDU_TAGS or pdu == 0xA4:  # v1 Trap-PDU has no request-id
            raise ValueError(f"unexpected PDU tag 0x{pdu:02x}")
        request_id, pos = read_integer(data, pos)
        error_status, pos = read_integer(data, pos)
        _, pos = read_integer(data, pos)
        tag, pos, list_end = read_tlv(data, pos)
        if tag != 0x30 or list_end > pdu_end:
            raise ValueError("no variable-bindings")
        count = 0
        while pos < list_end:
            tag, _, pos = read_tlv(data, pos)
            if tag != 0x30:
                raise ValueError("a varbind is not a SEQUENCE")
            count += 1
        return Message(version, request_id, pdu, error_status, count)
    if version == 3:
        tag, pos, _ = read_tlv(data, pos)
        if tag != 0x30:
            raise ValueError("no msgGlobalData")
        msg_id, _ = read_integer(data, pos)
        return Message(version, msg_id)
    raise ValueError(f"unknown SNMP version {version}")


def read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """The BER tag at ``pos``, where its content starts, and where it ends (X.690 §8.1:
    short and long definite lengths up to 4 octets).

    Raises:
        ValueError: the data is cut short or the length is not one of those.
    """
    if pos + 2 > len(data):
        raise ValueError("cut short")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 4 or pos + size > len(data):
            raise ValueError("bad length")
        length = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    end = pos + length
    if end > len(data):
        raise ValueError("cut short")
    return tag, pos, end


def read_integer(data: bytes, pos: int) -> tuple[int, int]:
    """The INTEGER at ``pos`` and the position after it."""
    tag, start, end = read_tlv(data, pos)
    if tag != 0x02 or not 0 < end - start <= 9:
        raise ValueError("not an INTEGER")
    return int.from_bytes(data[start:end], "big", signed=True), end


def read_value(data: bytes, pos: int) -> tuple[SnmpValue, int]:
    """The SMI value at ``pos`` (typed as :mod:`commsmon.sources.snmp.base` wants, as
    the pysnmp backend types it) and the position after it.

    Numbers must lie in their type's range (RFC 2578 §7.1: Integer32 -2**31..2**31-1;
    Counter32, Gauge32, TimeTicks 0..2**32-1; Counter64 0..2**64-1); an unsigned one
    sent without its leading zero octet is read as unsigned (net-snmp's leniency).
    NULL and the v2 exceptions carry no content.

    Raises:
        ValueError: a tag SNMP does not define for values (e.g. BOOLEAN, REAL,
            NsapAddress), a number out of its range or without content, content
            where there must be none, a truncated TLV, a malformed OID.
    """
    tag, start, end = read_tlv(data, pos)
    body = data[start:end]
    if tag == 0x02 or tag in _UNSIGNED:
        if not 0 < len(body) <= 9:
            raise ValueError(f"a number of {len(body)} octets")
        if tag == 0x02:
            number = int.from_bytes(body, "big", signed=True)
            if not -0x80000000 <= number <= 0x7FFFFFFF:
                raise ValueError(f"INTEGER {number} out of Integer32's range")
            return SnmpValue(ValueType.INTEGER, number), end
        number = int.from_bytes(body, "big")
        if number > (0xFFFFFFFFFFFFFFFF if tag == 0x46 else 0xFFFFFFFF):
            raise ValueError(f"{_UNSIGNED[tag].value} {number} out of range")
        return SnmpValue(_UNSIGNED[tag], number), end
    if tag == 0x04:
        return SnmpValue(ValueType.OCTET_STRING, body), end
    if tag == 0x44:
        return SnmpValue(ValueType.OPAQUE, body), end
    if tag == 0x06:
        return SnmpValue(ValueType.OBJECT_IDENTIFIER, oid_text(body)), end
    if tag == 0x40 and len(body) == 4:
        return SnmpValue(ValueType.IP_ADDRESS, ".".join(map(str, body))), end
    empty = _EMPTY.get(tag)
    if empty is not None:
        if body:
            raise ValueError(f"tag 0x{tag:02x} with content")
        return SnmpValue(empty, None), end
    raise ValueError(f"unknown tag 0x{tag:02x}")


_EMPTY: Final = {0x05: ValueType.NULL, 0x80: ValueType.NO_SUCH_OBJECT,
                 0x81: ValueType.NO_SUCH_INSTANCE, 0x82: ValueType.END_OF_MIB_VIEW}


@functools.lru_cache(maxsize=4096)
def oid_text(body: bytes) -> str:
    """Dotted text of an OID's content octets (X.690 §8.19; cached: traps and replies
    repeat their OIDs).

    Raises:
        ValueError: empty, a sub-identifier padded with a leading 0x80 octet, or the
            last one unfinished (its final octet has bit 8 set).
    """
    if not body or body[-1] & 0x80:
        raise ValueError("empty or unfinished OID")
    arcs, value, fresh = [], 0, True
    for byte in body:
        if fresh and byte == 0x80:
            raise ValueError("a padded OID sub-identifier")
        value = (value << 7) | (byte & 0x7F)
        fresh = not byte & 0x80
        if fresh:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


@dataclass(frozen=True, slots=True)
class ReplyPolicy:
    """How a target's requests are sent and whose replies count.

    Attributes:
        allowed: IP literals a reply may come from besides the request's own
            destination (the target's ``reply_from``).
        timeout: seconds between attempts.
        retries: attempts after the first.
    """

    allowed: frozenset[str] = frozenset()
    timeout: float = 2.0
    retries: int = 1


Misfit = Literal["request_id_cut", "undecodable", "varbind_count", "not_a_response"]
"""What made a reply unfit: its request id cut to 16 bits, a datagram that is not
an SNMP message, a varbind count other than the request's, a PDU other than
Response."""


@dataclass(frozen=True, slots=True)
class Stray:
    """Why a request went unanswered although something came back.

    Attributes:
        reason: ``unexpected_source`` (a matching reply from an address not
            allowed) or ``protocol_error`` (a reply that did not fit the request).
        detail: the address (``unexpected_source``) or the :data:`Misfit` code.
        text: the particulars, for the log.
    """

    reason: Literal["unexpected_source", "protocol_error"]
    detail: str
    text: str = ""


@dataclass(eq=False, slots=True)
class _Pending:
    """One request in flight."""

    id: int
    dest: Address
    policy: ReplyPolicy
    datagram: bytes
    transmit: Callable[[bytes], None]
    deliver: Callable[[bytes], None]
    pdu: int | None
    varbinds: int | None
    attempts: int = 1
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def allows(self, address: str) -> bool:
        return address == self.dest[0] or address in self.policy.allowed


class ReplyGate:
    """Sends requests with same-id retransmission and decides which reply answers.

    One gate serves one backend client and every target it polls; it lives in
    the event loop that first sends through it. Not thread-safe.

    Args:
        backend: the backend's name, put on log lines.
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._pending: dict[int, list[_Pending]] = {}  # by request id cut to 16 bits
        self._strays: dict[Address, Stray] = {}
        self._once = LogOnce()

    @property
    def in_flight(self) -> int:
        """Requests waiting for a reply now."""
        return sum(map(len, self._pending.values()))

    def send(
        self,
        datagram: bytes,
        dest: Address,
        policy: ReplyPolicy,
        transmit: Callable[[bytes], None],
        deliver: Callable[[bytes], None],
        message: Message | None = None,
    ) -> None:
        """Send a request and keep it until a reply is accepted or it expires.

        Args:
            datagram: the encoded request (its request-id or msgID is read here).
            dest: the agent's address.
            policy: the target's allow-list, timeout and retries.
            transmit: puts bytes on the wire to ``dest`` (called now and on each
                retransmission).
            deliver: hands an accepted reply to the backend.
            message: ``datagram``'s header facts, when the caller encoded it itself
                (saves reading them back); else read here.

        Raises:
            ValueError: ``datagram`` is not an SNMP message (a backend bug).
            Exception: whatever ``transmit`` raises; nothing is kept then.
        """
        if message is None:
            message = parse_message(datagram)
        pending = _Pending(message.id, dest, policy, datagram, transmit, deliver,
                           message.pdu, message.varbinds)
        self._strays.pop(dest, None)
        self._pending.setdefault(message.id & 0xFFFF, []).append(pending)
        self._arm(pending)
        try:
            transmit(datagram)
        except BaseException:
            self._forget(pending)
            raise

    def receive(self, datagram: bytes, source: Address) -> None:
        """Judge one datagram that arrived on the backend's socket; deliver it if it
        answers a request in flight, else count and drop it."""
        address = source[0]
        try:
            message = parse_message(datagram)
        except ValueError as exc:
            self._drop_undecodable(address, f"not an SNMP message ({exc}, {len(datagram)} bytes)")
            return
        candidates = self._pending.get(message.id & 0xFFFF, ())
        exact = [p for p in candidates if p.id == message.id]
        for pending in exact:
            if pending.allows(address):
                problem = _misfit(pending, message)
                if problem is None:
                    self._accept(pending, datagram)
                else:
                    self._stray(pending, "protocol_error", *problem)
                return
        if exact:
            self._stray(exact[0], "unexpected_source", address)
            return
        cut = [p for p in candidates if p.allows(address) and -0x8000 <= message.id <= 0xFFFF]
        for pending in cut:
            self._stray(pending, "protocol_error", "request_id_cut",
                        f"request id {pending.id} answered as {message.id}: cut to 16 bits")
        if not cut:
            SNMP_REPLIES_DROPPED.labels("unmatched").inc()

    def unanswered(self, dest: Address) -> Stray | None:
        """What was dropped on the way of the last request to ``dest`` that got no
        accepted reply, or ``None`` (nothing came back: a plain timeout)."""
        return self._strays.get(dest)

    def close(self) -> None:
        """Forget every request in flight and stop their timers."""
        for pendings in self._pending.values():
            for pending in pendings:
                if pending.timer is not None:
                    pending.timer.cancel()
        self._pending.clear()
        self._strays.clear()

    def _arm(self, pending: _Pending) -> None:
        loop = asyncio.get_running_loop()
        if pending.attempts <= pending.policy.retries:
            pending.timer = loop.call_later(pending.policy.timeout, self._retransmit, pending)
        else:
            pending.timer = loop.call_later(pending.policy.timeout + GRACE, self._expire, pending)

    def _retransmit(self, pending: _Pending) -> None:
        pending.attempts += 1
        SNMP_RETRANSMISSIONS.inc()
        try:
            pending.transmit(pending.datagram)
        except OSError as exc:  # the next attempt or the timeout will tell
            log.debug("snmp retransmission failed", backend=self.backend,
                      target=_where(pending.dest), error=str(exc))
        self._arm(pending)

    def _expire(self, pending: _Pending) -> None:
        self._forget(pending)

    def _forget(self, pending: _Pending) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
        key = pending.id & 0xFFFF
        pendings = self._pending.get(key)
        if pendings is not None and pending in pendings:
            pendings.remove(pending)
            if not pendings:
                del self._pending[key]

    def _accept(self, pending: _Pending, datagram: bytes) -> None:
        self._forget(pending)
        self._strays.pop(pending.dest, None)
        if self._once.clear(pending.dest):
            log.info("snmp replies match again", backend=self.backend,
                     target=_where(pending.dest))
        pending.deliver(datagram)

    def _stray(self, pending: _Pending, reason: Literal["unexpected_source", "protocol_error"],
               detail: str, text: str = "") -> None:
        SNMP_REPLIES_DROPPED.labels(reason).inc()
        self._strays[pending.dest] = Stray(reason, detail, text)
        if self._once.first(pending.dest, (reason, detail)):
            if reason == "unexpected_source":
                log.warning("snmp reply from unexpected source dropped", backend=self.backend,
                            target=_where(pending.dest), source=detail,
                            hint="add the address to the target's snmp.reply_from if it "
                                 "is the same agent")
            else:
                log.warning("snmp reply does not match its request", backend=self.backend,
                            target=_where(pending.dest), problem=detail, particulars=text)

    def _drop_undecodable(self, address: str, detail: str) -> None:
        mine = [p for pendings in self._pending.values() for p in pendings if p.allows(address)]
        for pending in mine:
            self._stray(pending, "protocol_error", "undecodable", detail)
        if not mine:
            SNMP_REPLIES_DROPPED.labels("protocol_error").inc()


def stray_error(stray: Stray, where: str, op: str) -> SnmpError:
    """The error a backend raises for a request that got only ``stray`` replies.

    Args:
        stray: what :meth:`ReplyGate.unanswered` said.
        where: the target, as the backend names it in messages.
        op: ``"get"``, ``"walk"`` ...
    """
    if stray.reason == "unexpected_source":
        return SnmpUnexpectedSource(
            f"{where}: {op} answered only from {stray.detail}, which the target does not "
            "allow (snmp.reply_from)", address=stray.detail)
    return SnmpProtocolError(f"{where}: {op} reply does not fit: {stray.text or stray.detail}",
                             detail=stray.detail)


def _misfit(pending: _Pending, reply: Message) -> tuple[Misfit, str] | None:
    """What makes ``reply`` unfit to answer ``pending`` (v1/v2c shape), or ``None``."""
    if reply.pdu is None:
        return None
    if reply.pdu != _RESPONSE:
        return "not_a_response", f"answered with PDU 0x{reply.pdu:02x}, not a Response"
    if (pending.pdu in (_GET, _GETNEXT) and reply.error_status == 0
            and reply.varbinds != pending.varbinds):
        return "varbind_count", f"{reply.varbinds} varbinds answer {pending.varbinds} asked"
    return None


def _where(dest: Address) -> str:
    return f"{dest[0]}:{dest[1]}"
