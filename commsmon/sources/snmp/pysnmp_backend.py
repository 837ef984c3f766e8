"""SnmpClient on the pysnmp 7 asyncio high-level API.

pysnmp facts this module is built around (measured on 7.1.30):

- An ``SnmpEngine`` binds to the event loop it first sends in; used from a second
  loop it hangs forever. The engine is made lazily inside the running loop, one
  per client, and made anew if the loop changes.
- Timeouts come back as an ``errorIndication``, not an exception; and a request
  can still hang in corner cases, so every call is bounded by ``asyncio.timeout``.
- ``UdpTransportTarget`` must be built with ``await UdpTransportTarget.create()``
  (it resolves the host through the loop's executor: the result is cached).
- ``lookupMib=False`` returns plain ``(ObjectName, value)`` tuples, ~20 % cheaper.
- Targets with a non-empty tag list get their replies dropped as if timed out,
  so none is set.
- pysnmp takes a response from any address whose request-id matches, and sends
  each retry with a new one. So the engine's UDP transport is ours
  (:class:`_GatedUdp`): every request and reply goes through the client's
  :class:`~commsmon.sources.snmp.wire.ReplyGate`, pysnmp sends each request once
  (``retries=0``, timeout ``timeout * (retries + 1)``), and the gate resends it
  with the same id and decides which reply answers, exactly as for gufo.
- v1 responses are translated to v2 shapes: a v1 noSuchName turns every varbind
  into noSuchObject and keeps error-status 2.

SET is never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any, Final

from pyasn1.error import PyAsn1Error
from pysnmp.carrier.asyncio.dgram.base import DgramAsyncioProtocol
from pysnmp.carrier.asyncio.dgram.udp import DOMAIN_NAME, UdpAsyncioTransport
from pysnmp.entity import config as engine_config
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    get_cmd,
    usmAesBlumenthalCfb192Protocol,
    usmAesBlumenthalCfb256Protocol,
    usmAesCfb128Protocol,
    usmDESPrivProtocol,
    usmHMAC128SHA224AuthProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC256SHA384AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
)
from pysnmp.proto import errind, rfc1902, rfc1905

from commsmon.errors import SnmpAuthError, SnmpError, SnmpTimeout
from commsmon.sources.snmp.base import (
    ERROR_STATUS,
    SnmpClient,
    SnmpTarget,
    SnmpValue,
    UsmUser,
    ValueType,
    get_per_oid,
    parse_oid,
)
from commsmon.sources.snmp.wire import Address, ReplyGate, ReplyPolicy, stray_error

__all__ = ["AUTH_PROTOCOLS", "PRIV_PROTOCOLS", "PysnmpClient", "to_snmp_value"]

# pysnmp's error indications for the USM reports an agent answers a rejected
# request with (RFC 3414 §3.2), by the counter they report.
_USM_REPORTS: dict[type, str] = {
    errind.UnknownUserName: "usmStatsUnknownUserNames",
    errind.UnknownSecurityName: "usmStatsUnknownUserNames",
    errind.WrongDigest: "usmStatsWrongDigests",
    errind.AuthenticationFailure: "usmStatsWrongDigests",
    errind.NotInTimeWindow: "usmStatsNotInTimeWindows",
    errind.UnknownEngineID: "usmStatsUnknownEngineIDs",
    errind.DecryptionError: "usmStatsDecryptionErrors",
    errind.UnsupportedSecurityLevel: "usmStatsUnsupportedSecLevels",
}
_MP_MODEL: Final[dict[str, int]] = {"v1": 0, "v2c": 1}
AUTH_PROTOCOLS: Final[dict[str, Any]] = {
    "md5": usmHMACMD5AuthProtocol, "sha": usmHMACSHAAuthProtocol,
    "sha224": usmHMAC128SHA224AuthProtocol, "sha256": usmHMAC192SHA256AuthProtocol,
    "sha384": usmHMAC256SHA384AuthProtocol, "sha512": usmHMAC384SHA512AuthProtocol,
}
# AES-192/256 keys extended as net-snmp and gufo do (Blumenthal draft), not Reeder's.
PRIV_PROTOCOLS: Final[dict[str, Any]] = {
    "des": usmDESPrivProtocol, "aes": usmAesCfb128Protocol,
    "aes192": usmAesBlumenthalCfb192Protocol, "aes256": usmAesBlumenthalCfb256Protocol,
}

# Keyed by BER tag set: Integer/Integer32 and Gauge32/Unsigned32 share tags, and
# Bits travels as an OCTET STRING.
_TYPE_BY_TAGSET: Final[dict[Any, ValueType]] = {
    rfc1902.Integer32.tagSet: ValueType.INTEGER,
    rfc1902.OctetString.tagSet: ValueType.OCTET_STRING,
    rfc1902.Null.tagSet: ValueType.NULL,
    rfc1902.ObjectIdentifier.tagSet: ValueType.OBJECT_IDENTIFIER,
    rfc1902.IpAddress.tagSet: ValueType.IP_ADDRESS,
    rfc1902.Counter32.tagSet: ValueType.COUNTER32,
    rfc1902.Gauge32.tagSet: ValueType.GAUGE32,
    rfc1902.TimeTicks.tagSet: ValueType.TIMETICKS,
    rfc1902.Opaque.tagSet: ValueType.OPAQUE,
    rfc1902.Counter64.tagSet: ValueType.COUNTER64,
    rfc1905.NoSuchObject.tagSet: ValueType.NO_SUCH_OBJECT,
    rfc1905.NoSuchInstance.tagSet: ValueType.NO_SUCH_INSTANCE,
    rfc1905.EndOfMibView.tagSet: ValueType.END_OF_MIB_VIEW,
}
_INT_TYPES: Final = frozenset(
    {
        ValueType.INTEGER,
        ValueType.COUNTER32,
        ValueType.GAUGE32,
        ValueType.TIMETICKS,
        ValueType.COUNTER64,
    }
)
_BYTES_TYPES: Final = frozenset({ValueType.OCTET_STRING, ValueType.OPAQUE})

_TARGET_CACHE_TTL: Final = 300.0
"""Seconds a resolved transport target is reused before the host is resolved again."""
_TARGET_CACHE_MAX: Final = 4096
_VarBind = tuple[Any, Any]


def to_snmp_value(value: Any) -> SnmpValue:
    """Convert a pysnmp/pyasn1 value object to an SnmpValue by its BER tag set.

    Args:
        value: a value from a response varbind (``rfc1902``/``rfc1905`` classes).

    Returns:
        The SnmpValue; see :class:`SnmpValue` for the Python type of each syntax.
        Opaque yields the raw bytes of its payload; an IpAddress that is not four
        octets is still rendered dotted, one number per octet.

    Raises:
        SnmpError: the value has a syntax SNMP does not define (``status`` is
            ``"badValueType"``).
    """
    vtype = _TYPE_BY_TAGSET.get(getattr(value, "tagSet", None))
    if vtype is None:
        raise SnmpError(
            f"unsupported SNMP value type {type(value).__name__}", status="badValueType"
        )
    if vtype in _INT_TYPES:
        return SnmpValue(vtype, int(value))
    if vtype in _BYTES_TYPES:
        return SnmpValue(vtype, value.asOctets())
    if vtype is ValueType.OBJECT_IDENTIFIER:
        return SnmpValue(vtype, ".".join(map(str, value.asTuple())))
    if vtype is ValueType.IP_ADDRESS:
        return SnmpValue(vtype, ".".join(map(str, value.asOctets())))
    return SnmpValue(vtype, None)


class PysnmpClient(SnmpClient):
    """SnmpClient backed by pysnmp 7 (``pysnmp.hlapi.v3arch.asyncio``).

    One instance may serve many targets concurrently. It owns one SnmpEngine,
    created inside the running loop on first use; :meth:`close` releases its
    socket and timer, and the next call makes a fresh engine.
    """

    def __init__(self) -> None:
        self._engine: Any = None
        self._engine_ids: dict[tuple[str, int], bytes] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transports: dict[tuple[str, int, float, int], tuple[Any, float]] = {}
        self._context = ContextData()
        self._gate = ReplyGate("pysnmp")
        self._policies: dict[Address, ReplyPolicy] = {}

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpValue]:
        """GET the given OIDs; see :meth:`SnmpClient.get`.

        Raises:
            ValueError: an OID is not numeric.
            SnmpTimeout: no answer within ``target.timeout * (target.retries + 1)``
                seconds (+1 s grace).
            SnmpError: an error-status other than v1 noSuchName, or a transport error.
        """
        if not oids:
            return {}
        for oid in oids:
            parse_oid(oid)

        async def get_once(batch: Sequence[str]) -> list[SnmpValue]:
            varbinds = await self._request(target, batch)
            if len(varbinds) != len(batch):
                raise SnmpError(
                    f"{target.where}: GET of {len(batch)} OIDs answered with "
                    f"{len(varbinds)} varbinds",
                    status="badResponse",
                )
            return [to_snmp_value(value) for _, value in varbinds]

        return await get_per_oid(get_once, oids)

    async def close(self) -> None:
        """Close the engine's transport dispatcher (socket and timer task).

        Call it in the loop that used the client. Safe to call twice.
        """
        engine, self._engine, self._loop = self._engine, None, None
        self._transports.clear()
        self._gate.close()
        if engine is not None:
            _close_engine(engine)
            await asyncio.sleep(0)  # let the transport's connection_lost run

    def _engine_for_running_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._engine is None or self._loop is not loop:
            if self._engine is not None:
                _close_engine(self._engine)
            self._engine = SnmpEngine()
            self._engine.observer.register_observer(
                self._saw_response, "rfc3412.prepareDataElements:response")
            self._gate.close()
            engine_config.add_transport(
                self._engine, DOMAIN_NAME,
                _GatedUdp(self._gate, self._policies).open_client_mode())
            self._loop = loop
            self._transports.clear()
        return self._engine

    def engine_id(self, target: SnmpTarget) -> bytes | None:
        """See :meth:`SnmpClient.engine_id` (seen on each v3 response, by the address
        the target's host resolved to)."""
        for (host, port, _, _), (transport, _) in self._transports.items():
            if (host, port) == (target.host, target.port):
                address = transport.transport_address
                return self._engine_ids.get((str(address[0]), int(address[1])))
        return None

    def _saw_response(self, engine: Any, point: str, context: dict[str, Any],
                      cb_ctx: Any) -> None:
        """pysnmp observer: the authoritative engine of a v3 response, by address."""
        engine_id, address = context.get("securityEngineId"), context.get("transportAddress")
        if engine_id and isinstance(address, tuple) and len(address) >= 2:
            self._engine_ids[(str(address[0]), int(address[1]))] = bytes(engine_id)

    async def _transport(self, target: SnmpTarget) -> Any:
        key = (target.host, target.port, target.timeout, target.retries)
        now = time.monotonic()
        cached = self._transports.get(key)
        if cached is not None and cached[1] > now:
            transport = cached[0]
            self._policy(target, transport)
            return transport
        try:
            # One send as far as pysnmp knows: the gate retransmits (module docstring).
            transport = await UdpTransportTarget.create(
                (target.host, target.port),
                timeout=target.timeout * (target.retries + 1), retries=0,
            )
        except PySnmpError as exc:
            raise SnmpError(
                f"{target.where}: cannot resolve host", status="unresolvedHost"
            ) from exc
        if len(self._transports) >= _TARGET_CACHE_MAX:
            self._transports.clear()
        self._transports[key] = (transport, now + _TARGET_CACHE_TTL)
        self._policy(target, transport)
        return transport

    def _policy(self, target: SnmpTarget, transport: Any) -> Address:
        """Tell the gate how ``target``'s requests go; its resolved address."""
        dest = _address(transport.transport_address)
        self._policies[dest] = ReplyPolicy(target.reply_from, target.timeout, target.retries)
        return dest

    async def _request(self, target: SnmpTarget, oids: Sequence[str]) -> list[_VarBind]:
        """Send one GET PDU and return its varbinds, or raise.

        Raises:
            SnmpTimeout: no answer within ``target.deadline`` seconds.
            SnmpError: an error indication, or an error-status with ``status`` and
                ``index`` set.
        """
        op = "get"
        dest: Address | None = None
        try:
            async with asyncio.timeout(target.deadline):
                engine = self._engine_for_running_loop()
                transport = await self._transport(target)
                dest = _address(transport.transport_address)
                auth = _credentials(target)
                varbinds = [ObjectType(ObjectIdentity(parse_oid(oid))) for oid in oids]
                call = get_cmd(
                    engine, auth, transport, self._context, *varbinds, lookupMib=False
                )
                error_indication, error_status, error_index, var_binds = await call
        except TimeoutError as exc:
            self._raise_stray(target, dest, op)
            raise SnmpTimeout(
                f"{target.where}: no response within {target.deadline:.1f} s",
                status="requestTimedOut",
            ) from exc
        except (PySnmpError, PyAsn1Error, OSError) as exc:
            raise SnmpError(f"{target.where}: {op} failed: {exc}", status=str(exc)) from exc

        if error_indication:
            usm = _USM_REPORTS.get(type(error_indication))
            if usm is not None:
                raise SnmpAuthError(
                    f"{target.where}: {op} rejected: {error_indication}", status=usm)
            if isinstance(error_indication, errind.RequestTimedOut):
                self._raise_stray(target, dest, op)
                raise SnmpTimeout(
                    f"{target.where}: no response after {target.retries + 1} attempt(s) "
                    f"of {target.timeout} s",
                    status="requestTimedOut",
                )
            raise SnmpError(
                f"{target.where}: {op} failed: {error_indication}",
                status=str(error_indication),
            )
        status = int(error_status)
        if status:
            name = ERROR_STATUS[status] if status < len(ERROR_STATUS) else f"error{status}"
            index = int(error_index)
            raise SnmpError(
                f"{target.where}: {op} failed: {name} at index {index}",
                status=name,
                index=index,
            )
        return list(var_binds)


    def _raise_stray(self, target: SnmpTarget, dest: Address | None, op: str) -> None:
        """Raise what the gate dropped on the way, if anything, instead of a timeout."""
        stray = self._gate.unanswered(dest) if dest is not None else None
        if stray is not None:
            raise stray_error(stray, target.where, op)


class _GatedUdp(UdpAsyncioTransport):  # type: ignore[misc]
    """pysnmp's UDP transport with requests and replies passed through a ReplyGate."""

    def __init__(self, gate: ReplyGate, policies: dict[Address, ReplyPolicy]) -> None:
        super().__init__()
        self._gate = gate
        self._policies = policies

    def send_message(self, outgoingMessage: bytes, transportAddress: Any) -> None:
        dest = _address(transportAddress)
        self._gate.send(
            bytes(outgoingMessage), dest, self._policies.get(dest, ReplyPolicy()),
            lambda data: UdpAsyncioTransport.send_message(self, data, transportAddress),
            lambda data: DgramAsyncioProtocol.datagram_received(
                self, data, self.normalize_address(transportAddress)),
        )

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        self._gate.receive(datagram, _address(transportAddress))


def _address(address: Any) -> Address:
    return str(address[0]), int(address[1])


def _credentials(target: SnmpTarget) -> CommunityData | UsmUserData:
    """The community (v1, v2c) or USM user (v3) a request carries."""
    if target.version != "v3":
        return CommunityData(target.community, mpModel=_MP_MODEL[target.version])
    user: UsmUser | None = target.user
    assert user is not None  # SnmpTarget requires one for v3
    return UsmUserData(
        user.name,
        authKey=user.auth_password or None,
        privKey=user.priv_password or None,
        authProtocol=AUTH_PROTOCOLS[user.auth_protocol] if user.auth_protocol else None,
        privProtocol=PRIV_PROTOCOLS[user.priv_protocol] if user.priv_protocol else None,
    )


def _close_engine(engine: Any) -> None:
    """Close an engine's dispatcher; an engine of a closed loop may refuse, and is dropped."""
    with contextlib.suppress(RuntimeError, PySnmpError):
        engine.close_dispatcher()
