"""SnmpClient that speaks SNMPv1 and v2c GET itself, and hands SNMPv3 to gufo.

A v1/v2c GET is small enough to write and read without a library: one message
(RFC 1157 §4, RFC 3416 §3: ``SEQUENCE { version, community, GetRequest-PDU {
request-id, 0, 0, varbinds of (OID, NULL) } }``), and its Response read with the
same BER reader the reply gate and the trap decoder use
(:func:`~commsmon.sources.snmp.wire.read_value`), which types values as the
pysnmp backend does: Counter32, Gauge32, TimeTicks, Counter64, Opaque, IpAddress,
NULL and the v2 exceptions each keep their SMI type, a value out of its type's
range or malformed is a ``decodeError``, v1's noSuchName is asked again without
the blamed OID, and a reply with another version or community is dropped (the
request times out), as pysnmp does each.  One difference, kept from the gufo
backend it replaces as the default: another whole-PDU error-status (tooBig,
genErr, noAccess ...) reads as every OID missing, logged once per target,
where pysnmp's backend raises ``SnmpError`` and so fails the poll: the agent
answered, and a failed poll would in time call the device ``down``.

Why: behind gufo, every request crossed loopback twice more through the
relay (:mod:`~commsmon.sources.snmp.relay`: gufo's sessions are connected
sockets) and registered its socket with the event loop and removed it again.
Here requests leave from one unconnected socket per address family, straight
through the client's :class:`~commsmon.sources.snmp.wire.ReplyGate` (same-id
retransmission, replies only from the target or its ``reply_from``), and one
reader takes every reply.  Measured with one snmpd (GET of five OIDs, v2c, one
request at a time, CPU per poll through the poller): see the README's "SNMP
backend".

SNMPv3 (USM keys, engine discovery) goes to a :class:`GufoClient` this client
owns. SET is never sent: the only PDU written here is GetRequest.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import socket
import time
from collections.abc import Sequence
from typing import Final

import structlog

from commsmon.errors import SnmpError, SnmpTimeout
from commsmon.log import LogOnce
from commsmon.sources.snmp.base import (
    ERROR_STATUS,
    NO_SUCH_OBJECT,
    SnmpClient,
    SnmpTarget,
    SnmpValue,
    get_per_oid,
    parse_oid,
)
from commsmon.sources.snmp.gufo_backend import RESOLVE_TTL, GufoClient, resolve
from commsmon.sources.snmp.wire import (
    Address,
    Message,
    ReplyGate,
    ReplyPolicy,
    read_integer,
    read_tlv,
    read_value,
    stray_error,
)

__all__ = ["NativeClient", "encode_get"]

log = structlog.get_logger("commsmon.snmp")

_VERSION: Final = {"v1": 0, "v2c": 1}
_MAX_ARC: Final = 2**32 - 1  # RFC 2578 §7.1.3
_READ_BATCH: Final = 256  # replies read per turn of the event loop
_GET_REQUEST: Final = 0xA0


class NativeClient(SnmpClient):
    """SnmpClient for v1 and v2c on its own BER codec; v3 through gufo.

    Sockets and the gate belong to the event loop that first used the client;
    used from another loop, it starts afresh.
    """

    def __init__(self) -> None:
        self._v3 = GufoClient()
        self._gate = ReplyGate("native")
        self._once = LogOnce()
        self._loop: asyncio.AbstractEventLoop | None = None
        # By address family: the socket and the loop reading it (a socket made while
        # close() ran still has its reader removed from that loop).
        self._sockets: dict[int, tuple[socket.socket, asyncio.AbstractEventLoop]] = {}
        self._addresses: dict[str, tuple[str, float]] = {}  # host -> (address, resolve after)

    def engine_id(self, target: SnmpTarget) -> bytes | None:
        """See :meth:`SnmpClient.engine_id` (v3 only, learnt by gufo's discovery)."""
        return self._v3.engine_id(target)

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpValue]:
        """GET the given OIDs; see :meth:`SnmpClient.get`.

        Raises:
            ValueError: an OID is not numeric, or cannot be encoded (an arc above
                2**32-1, a first arc above 2, a second above 39 under 0 or 1).
            SnmpTimeout: no answer within ``target.retries + 1`` attempts of
                ``target.timeout`` seconds.
            SnmpError: a reply whose values will not decode (``"decodeError"``)
                or whose varbinds are not one per OID asked (``"badResponse"``), a
                transport error, or an unresolvable host. (A whole-PDU
                error-status other than v1's noSuchName is every OID missing:
                module docstring.)
        """
        if target.version == "v3":
            return await self._v3.get(target, oids)
        if not oids:
            return {}
        encoded = {oid: _oid_tlv(oid) for oid in oids}

        async def get_once(batch: Sequence[str]) -> list[SnmpValue]:
            reply = await self._request(target, [encoded[oid] for oid in batch])
            status, index, values = _response_values(reply, target)
            if status == "noSuchName":  # v1: get_per_oid asks again without the blamed OID
                raise SnmpError(f"{target.where}: get failed: {status} at index {index}",
                                status=status, index=index)
            if status is not None:
                # The agent answers, with no values: every OID reads as missing, as the
                # gufo backend (the default before) reads it, so the device is not
                # taken for down; what the agent said is logged.
                if self._once.first(target.where, status):
                    log.warning("snmp agent answers with an error status; its values read "
                                "as missing", target=target.where, status=status,
                                index=index)
                return [NO_SUCH_OBJECT] * len(batch)
            self._once.clear(target.where)
            if len(values) != len(batch):
                raise SnmpError(
                    f"{target.where}: GET of {len(batch)} OIDs answered with "
                    f"{len(values)} varbinds", status="badResponse")
            return values

        return await get_per_oid(get_once, oids)

    async def close(self) -> None:
        """Close the sockets, forget requests in flight, and close the v3 client.
        Safe to call twice; the client stays usable."""
        self._reset()
        await self._v3.close()

    def _reset(self) -> None:
        for sock, loop in self._sockets.values():
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError, ValueError):  # loop or socket gone
                    loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        self._gate.close()
        self._loop = None

    async def _request(self, target: SnmpTarget, oids: list[bytes]) -> bytes:
        """Send one GetRequest of ``oids`` (encoded OID TLVs); the reply the gate
        accepted.

        Raises:
            SnmpTimeout: no accepted reply in time; SnmpUnexpectedSource or
                SnmpProtocolError instead when the gate dropped replies on the way.
            SnmpError: the host does not resolve, or the request cannot be sent.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._reset()
            self._loop = loop
        version, request_id = _VERSION[target.version], _request_id()
        community = target.community.encode()
        request = encode_get(version, community, request_id, oids)
        header = Message(version, request_id, _GET_REQUEST, 0, len(oids))
        ours = _integer(version) + _tlv(0x04, community)  # a reply repeats both
        reply: asyncio.Future[bytes] = loop.create_future()

        def deliver(data: bytes) -> None:
            # Another version or community is not our agent's answer: dropped, as
            # pysnmp drops it, and the request times out.
            if not reply.done() and data.startswith(ours, read_tlv(data, 0)[1]):
                reply.set_result(data)

        dest: Address | None = None
        try:
            async with asyncio.timeout(target.deadline):  # a resolver that hangs, too
                address = dest = (await self._address(target), target.port)
                sock = self._socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
                # The gate sends again every ``timeout``: the last attempt's ends here.
                async with asyncio.timeout(target.timeout * (target.retries + 1)):
                    self._gate.send(request, address,
                                    ReplyPolicy(target.reply_from, target.timeout,
                                                target.retries),
                                    lambda data: _send(sock, data, address), deliver, header)
                    return await reply
        except TimeoutError as exc:
            stray = self._gate.unanswered(dest) if dest is not None else None
            if stray is not None:
                raise stray_error(stray, target.where, "get") from exc
            raise SnmpTimeout(
                f"{target.where}: no response to get after {target.retries + 1} attempt(s) "
                f"of {target.timeout} s", status="requestTimedOut") from exc
        except OSError as exc:
            raise SnmpError(f"{target.where}: get failed: {exc}", status=str(exc)) from exc

    async def _address(self, target: SnmpTarget) -> str:
        """The address to send to: resolved as gufo's backend does (an IP literal as
        it is, a name again after RESOLVE_TTL; a DNS outage keeps the last address).

        Raises:
            SnmpError: the host does not resolve and no address is known.
        """
        known = self._addresses.get(target.host)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        try:
            address, after = await resolve(target)
        except SnmpError:
            if known is None:
                raise
            address, after = known[0], time.monotonic() + RESOLVE_TTL
        self._addresses[target.host] = (address, after)
        return address

    def _socket(self, family: int) -> socket.socket:
        """The unconnected socket requests of ``family`` leave from, read by
        :meth:`_read` (made on first use).

        Raises:
            OSError: the socket cannot be made.
        """
        kept = self._sockets.get(family)
        if kept is not None:
            return kept[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            loop = asyncio.get_running_loop()
            loop.add_reader(sock.fileno(), self._read, sock)
        except BaseException:
            sock.close()
            raise
        self._sockets[family] = (sock, loop)
        return sock

    def _read(self, sock: socket.socket) -> None:
        """Replies until the socket is empty (at most _READ_BATCH a turn), each to the
        gate, which delivers the ones that answer."""
        for _ in range(_READ_BATCH):
            try:
                data, address = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error reported on the socket: nothing to read
                return
            self._gate.receive(data, (str(address[0]), int(address[1])))



def _request_id() -> int:
    """A random request-id in 1..2**31-1 (Integer32): a reply cannot be guessed from
    the ids other agents see (the gate tells apart two requests that draw one id)."""
    return random.getrandbits(31) or 1


def _send(sock: socket.socket, data: bytes, dest: Address) -> None:
    """Put ``data`` on the wire; a full send buffer loses it as the network would
    (the gate's next attempt or the timeout tells)."""
    with contextlib.suppress(BlockingIOError):
        sock.sendto(data, dest)


def encode_get(version: int, community: bytes, request_id: int, oids: Sequence[bytes]) -> bytes:
    """An SNMPv1 (``version`` 0) or v2c (1) GetRequest message.

    Args:
        version: the message's version field.
        community: the community, as sent.
        request_id: the PDU's request-id.
        oids: each OID as its BER TLV (:func:`_oid_tlv`); each asked with a NULL value.
    """
    varbinds = b"".join(_tlv(0x30, oid + b"\x05\x00") for oid in oids)
    pdu = _tlv(_GET_REQUEST, _integer(request_id) + b"\x02\x01\x00\x02\x01\x00"
               + _tlv(0x30, varbinds))
    return _tlv(0x30, _integer(version) + _tlv(0x04, community) + pdu)


def _response_values(data: bytes,
                     target: SnmpTarget) -> tuple[str | None, int, list[SnmpValue]]:
    """The Response in ``data`` (the gate has matched its request-id and PDU type): its
    error-status by RFC 3416 name (``None`` for noError), error-index, and values in
    varbind order (none read after an error-status).

    Raises:
        SnmpError: values that will not decode (``"decodeError"``).
    """
    try:
        _, pos, _ = read_tlv(data, 0)  # Message
        _, _, pos = read_tlv(data, pos)  # version
        _, _, pos = read_tlv(data, pos)  # community
        _, pos, _ = read_tlv(data, pos)  # Response-PDU
        _, _, pos = read_tlv(data, pos)  # request-id
        status, pos = read_integer(data, pos)
        index, pos = read_integer(data, pos)
        if status:
            name = ERROR_STATUS[status] if 0 < status < len(ERROR_STATUS) else f"error{status}"
            return name, index, []
        _, pos, end = read_tlv(data, pos)  # variable-bindings
        values = []
        while pos < end:
            _, start, pos = read_tlv(data, pos)  # VarBind
            _, _, inner = read_tlv(data, start)  # name
            value, _ = read_value(data, inner)
            values.append(value)
    except ValueError as exc:
        raise SnmpError(f"{target.where}: get reply: {exc}", status="decodeError") from exc
    return None, 0, values


def _tlv(tag: int, body: bytes) -> bytes:
    """BER tag, definite length (short form under 128, else long), content."""
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + body


def _integer(value: int) -> bytes:
    """An INTEGER TLV in the fewest two's-complement octets."""
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


@functools.lru_cache(maxsize=65_536)
def _oid_tlv(oid: str) -> bytes:
    """An OBJECT IDENTIFIER TLV (X.690 §8.19; cached: a daemon asks the same few
    hundred OIDs again and again).

    Raises:
        ValueError: not numeric (:func:`parse_oid`), an arc above 2**32-1, a first
            arc above 2, or a second arc above 39 under a first of 0 or 1.
    """
    arcs = parse_oid(oid)
    if max(arcs) > _MAX_ARC:
        raise ValueError(f"OID arc above {_MAX_ARC}: {oid!r}")
    if arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise ValueError(f"not an encodable OID: {oid!r}")
    body = bytearray()
    for arc in (arcs[0] * 40 + arcs[1], *arcs[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))
