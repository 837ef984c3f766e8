"""SnmpClient on gufo_snmp: a Rust BER codec and socket behind an asyncio API.

The speed comes from keeping one gufo ``SnmpSession`` (one connected UDP socket)
per target and reusing it across polls: about 0.1 ms of CPU per GET of five
OIDs against pysnmp's 1.2 ms, and ~2 KiB of memory per kept target against
pysnmp's ~50 KiB per community (``test_measure_*`` in
``tests/sources/test_snmp_differential.py``). The price is that gufo hands
back plain Python values and ignores the PDU error-status, so some distinctions
the pysnmp backend keeps are lost; they are listed below.

gufo_snmp facts this module is built around (read from its source and measured
on 0.13.0):

- ``gufo.snmp.aio.SnmpSession`` owns a non-blocking UDP socket ``connect()``-ed
  to the agent; it has no ``close()``: the Rust object closes the socket when it
  is freed, i.e. as soon as the last reference goes. Dropping a session from the
  cache (eviction, :meth:`GufoClient.close`) therefore closes it, unless a
  request still in flight holds it; then it closes when that request ends.
- The address must be an IP literal (a hostname fails with ``OSError("invalid
  address")``), so hostnames are resolved here, through the loop's
  ``getaddrinfo``, and re-resolved after :data:`RESOLVE_TTL` seconds.
- There are no retries, each request waits ``timeout`` seconds for
  readability and raises the builtin ``TimeoutError``, and replies are matched
  on the socket's last request-id only.
- The socket being connected, a reply from another address never reaches it.
  So sessions are not connected to the agent but to a loopback relay
  (:mod:`~commsmon.sources.snmp.relay`): it sends each request on from one unconnected socket per
  address family through the client's
  :class:`~commsmon.sources.snmp.wire.ReplyGate`, which resends it with the
  same id every ``timeout`` seconds and decides which reply answers, exactly
  as for pysnmp; gufo waits ``timeout * (retries + 1)`` for the one request.
  The price: each request crosses loopback twice more, and a closed port is a
  timeout (the relay's unconnected socket hears no ICMP port-unreachable).
- A session serves one request at a time: a second request on the same socket
  would replace the first one's ``loop.add_reader`` callback and its request-id.
  A request to a target whose session is busy gets a one-off session.
- Other failures raise ``gufo.snmp.SnmpError`` subclasses (``SnmpDecodeError``
  for a malformed or unsupported reply, ``SnmpEncodeError``) or ``OSError``.

What gufo loses, and how it is mapped (``SnmpValue`` of the pysnmp backend on
the left, this backend on the right):

- **Error-status is ignored.** A response's error-status and error-index are
  never looked at, and exception values (noSuchObject, noSuchInstance,
  endOfMibView) and NULL values are silently left out of ``get_many``'s result.
  So: on v2c a missing OID is NO_SUCH_OBJECT here whether the agent said
  noSuchObject or noSuchInstance; a NULL value is NO_SUCH_OBJECT, not NULL; and
  a whole-PDU error (tooBig, genErr, noAccess ...) makes every OID of the GET
  NO_SUCH_OBJECT where pysnmp raises ``SnmpError`` with that status. On v1 the
  whole-PDU noSuchName cannot blame an index (error-index is dropped), so a GET
  whose OIDs all come back empty is asked again one OID per PDU through
  :func:`~commsmon.sources.snmp.base.get_per_oid`: the results equal pysnmp's
  (every missing OID NO_SUCH_OBJECT), at the cost of ``n + 1`` PDUs instead of
  ``k + 1`` for ``k`` missing of ``n``.
- **Numbers lose their SMI type.** INTEGER, Counter32, Gauge32/Unsigned32,
  TimeTicks and Counter64 all arrive as ``int`` (values are exact). The type is
  the narrowest that can hold the value: INTEGER for -2**31..2**31-1, GAUGE32
  for 2**31..2**32-1, COUNTER64 above (certain: only Counter64 exceeds 32 bits).
  COUNTER32 and TIMETICKS are never returned; a Counter64 below 2**31 is
  INTEGER. Whoever needs a counter's wrap modulus or TimeTicks units must take
  them from the profile, not from ``SnmpValue.type``.
- **OCTET STRING and Opaque are both ``bytes``** (the Opaque payload, as pysnmp's
  ``asOctets()``). Bytes framed as net-snmp's Opaque float or double (``9f 78 04``
  + 4 bytes, ``9f 79 08`` + 8 bytes; no text starts with byte 0x9f) are OPAQUE,
  so :func:`commsmon.sources.convert.decode_varbind` unpacks them as it does for
  pysnmp; any other Opaque is OCTET_STRING with the same bytes, which decodes to
  the same reading.
- **OBJECT IDENTIFIER and IpAddress are both ``str``.** Four dotted numbers each
  0..255 are IP_ADDRESS, anything else OBJECT_IDENTIFIER; so a 4-arc OID value
  such as ``1.3.6.1`` comes back as IP_ADDRESS (same string).
- BER BOOLEAN and REAL (not SMI types) raise ``SnmpError`` with status
  ``"badValueType"``, as unknown syntaxes do in the pysnmp backend. Tags gufo
  cannot decode at all (e.g. NsapAddress) fail the whole reply with
  ``SnmpError`` status ``"decodeError"``.

SET is never sent: this module only calls ``get_many``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import resource
import socket
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import structlog
from gufo.snmp import SnmpAuthError as GufoAuthError
from gufo.snmp import SnmpDecodeError, SnmpEncodeError
from gufo.snmp import SnmpError as GufoError
from gufo.snmp import SnmpVersion as GufoVersion
from gufo.snmp import ValueType as GufoValue
from gufo.snmp.aio import SnmpSession
from gufo.snmp.user import (
    Aes128Key,
    Aes192Key,
    Aes256Key,
    BaseAuthKey,
    BasePrivKey,
    DesKey,
    Md5Key,
    Sha1Key,
    Sha224Key,
    Sha256Key,
    Sha384Key,
    Sha512Key,
    User,
)

from commsmon.errors import SnmpAuthError, SnmpError, SnmpTimeout
from commsmon.sources.snmp.base import (
    NO_SUCH_OBJECT,
    SnmpClient,
    SnmpTarget,
    SnmpValue,
    UsmUser,
    ValueType,
    get_per_oid,
    parse_oid,
)
from commsmon.sources.snmp.relay import Relay
from commsmon.sources.snmp.wire import Address, ReplyGate, ReplyPolicy, stray_error

__all__ = ["MAX_SESSIONS", "RESOLVE_TTL", "GufoClient", "resolve", "to_snmp_value"]

log = structlog.get_logger("commsmon.snmp")

MAX_SESSIONS: Final = 50_000
"""Upper bound of kept sessions (one UDP socket each); see :class:`GufoClient`."""
RESOLVE_TTL: Final = 300.0
"""Seconds a hostname's resolved address is used before it is resolved again (a
failed re-resolution keeps the old address for another period)."""

_VERSION: Final[dict[str, GufoVersion]] = {
    "v1": GufoVersion.v1, "v2c": GufoVersion.v2c, "v3": GufoVersion.v3,
}
_AUTH: Final[dict[str, type[BaseAuthKey]]] = {
    "md5": Md5Key, "sha": Sha1Key, "sha224": Sha224Key, "sha256": Sha256Key,
    "sha384": Sha384Key, "sha512": Sha512Key,
}
_PRIV: Final[dict[str, type[BasePrivKey]]] = {
    "des": DesKey, "aes": Aes128Key, "aes192": Aes192Key, "aes256": Aes256Key,
}
_MAX_ARC: Final = 2**32 - 1  # RFC 2578 §7.1.3: sub-identifiers are 0..4294967295
_INT32_MAX: Final = 2**31 - 1
_UINT32_MAX: Final = 2**32 - 1
_OPAQUE_FLOAT: Final = b"\x9f\x78\x04"  # net-snmp ASN_OPAQUE_FLOAT tag, length 4
_OPAQUE_DOUBLE: Final = b"\x9f\x79\x08"  # net-snmp ASN_OPAQUE_DOUBLE tag, length 8

_Key = tuple[str, int, str, str, UsmUser | None, float, int, frozenset[str]]


def to_snmp_value(value: GufoValue) -> SnmpValue:
    """Convert a value as gufo_snmp returns it to an SnmpValue.

    gufo has already dropped the SMI type; this picks the most faithful one (see
    the module docstring for the rules and what they cannot tell apart).

    Args:
        value: ``int``, ``bytes``, ``str`` (OID or IpAddress), ``None`` (NULL),
            or ``float``/``bool`` for BER REAL/BOOLEAN.

    Returns:
        The SnmpValue: ``int`` as INTEGER, GAUGE32 or COUNTER64 by range; ``bytes``
        as OPAQUE when framed as net-snmp's Opaque float/double, else
        OCTET_STRING; ``str`` as IP_ADDRESS when four dotted numbers 0..255, else
        OBJECT_IDENTIFIER; ``None`` as NULL.

    Raises:
        SnmpError: a REAL, BOOLEAN or other non-SMI value (``status`` is
            ``"badValueType"``).
    """
    if isinstance(value, bool) or not isinstance(value, int | bytes | str | None):
        raise SnmpError(
            f"unsupported SNMP value type {type(value).__name__}", status="badValueType"
        )
    if isinstance(value, int):
        if value > _UINT32_MAX:
            return SnmpValue(ValueType.COUNTER64, value)
        if value > _INT32_MAX:
            return SnmpValue(ValueType.GAUGE32, value)
        return SnmpValue(ValueType.INTEGER, value)
    if isinstance(value, bytes):
        if (value.startswith(_OPAQUE_FLOAT) and len(value) == 7) or (
            value.startswith(_OPAQUE_DOUBLE) and len(value) == 11
        ):
            return SnmpValue(ValueType.OPAQUE, value)
        return SnmpValue(ValueType.OCTET_STRING, value)
    if isinstance(value, str):
        arcs = value.split(".")
        if not all(arc.isdigit() and arc.isascii() for arc in arcs) or len(arcs) < 2:
            raise SnmpError(f"not a dotted OID or address: {value!r:.60}", status="badValueType")
        if len(arcs) == 4 and all(int(arc) <= 255 for arc in arcs):
            return SnmpValue(ValueType.IP_ADDRESS, value)
        return SnmpValue(ValueType.OBJECT_IDENTIFIER, value)
    return SnmpValue(ValueType.NULL, None)


@dataclass(slots=True)
class _Session:
    """A kept gufo session and what it was opened for."""

    session: SnmpSession
    address: str
    resolve_after: float  # monotonic seconds; inf for an IP literal
    busy: bool = False


class GufoClient(SnmpClient):
    """SnmpClient backed by gufo_snmp, keeping one session (UDP socket) per target.

    A target is identified by host, port, version, community, timeout and
    retries; its session is reused across polls. At most ``max_sessions`` are
    kept, least recently used evicted first (an evicted session's socket closes
    when no request uses it). Sessions belong to the event loop that made them:
    used from another loop, the client drops them all and starts afresh.

    Args:
        max_sessions: how many sessions to keep; default :data:`MAX_SESSIONS`
            or half the process's soft open-files limit (``RLIMIT_NOFILE``),
            whichever is smaller: each session holds a file descriptor.

    Raises:
        ValueError: ``max_sessions`` < 1.
    """

    def __init__(self, *, max_sessions: int | None = None) -> None:
        if max_sessions is None:
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            max_sessions = MAX_SESSIONS if soft < 0 else max(1, min(MAX_SESSIONS, soft // 2))
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[_Key, _Session] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine_ids: dict[tuple[str, int], bytes] = {}
        self._gate = ReplyGate("gufo")
        self._relay: Relay | None = None
        self._dests: dict[tuple[str, int], Address] = {}

    def engine_id(self, target: SnmpTarget) -> bytes | None:
        """See :meth:`SnmpClient.engine_id` (learnt by gufo's discovery)."""
        return self._engine_ids.get((target.host, target.port))

    @property
    def session_count(self) -> int:
        """Number of sessions kept now (one UDP socket each)."""
        return len(self._sessions)

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpValue]:
        """GET the given OIDs; see :meth:`SnmpClient.get`.

        Missing OIDs are NO_SUCH_OBJECT on v1 and v2c alike (gufo cannot tell
        noSuchInstance apart); on v1 a GET with missing OIDs costs one extra PDU
        per OID (module docstring).

        Raises:
            ValueError: an OID is not numeric, or has an arc above 2**32-1.
            SnmpTimeout: no answer within ``target.retries + 1`` attempts of
                ``target.timeout`` seconds (bounded by ``target.deadline``).
            SnmpError: a reply that will not decode, a non-SMI value, a transport
                error, or an unresolvable host.
        """
        if not oids:
            return {}
        wire = {oid: _canonical(oid) for oid in oids}

        async def get_once(batch: Sequence[str]) -> list[SnmpValue]:
            names = list(dict.fromkeys(wire[oid] for oid in batch))
            with self._mapped_errors(target, "get"):
                async with asyncio.timeout(target.deadline), self._session(target) as session:
                    found = await session.get_many(names)
                    if target.version == "v3":
                        self._engine_ids[(target.host, target.port)] = session.get_engine_id()
            if target.version == "v1" and len(names) > 1 and not found:
                # A v1 noSuchName voids the whole PDU and gufo drops error-index:
                # let get_per_oid ask each OID on its own.
                raise SnmpError(
                    f"{target.where}: GET of {len(names)} OIDs answered with none",
                    status="noSuchName",
                    index=0,
                )
            return [
                to_snmp_value(found[wire[oid]]) if wire[oid] in found else NO_SUCH_OBJECT
                for oid in batch
            ]

        return await get_per_oid(get_once, oids)

    async def close(self) -> None:
        """Drop every kept session, closing its socket (or, if a request is using
        it, when that request ends). Safe to call twice; the client stays usable.
        """
        self._reset()
        await asyncio.sleep(0)  # let the relay's transports close their sockets

    def _reset(self) -> None:
        self._sessions.clear()
        self._loop = None
        self._gate.close()
        if self._relay is not None:
            self._relay.close()
            self._relay = None

    async def _open(self, target: SnmpTarget, address: str) -> SnmpSession:
        """A new gufo session for ``target`` at ``address``, connected to the relay.

        For v3 the agent's engineID, boots and time are discovered first (RFC 3414
        §4), one request bounded by the caller's deadline.
        """
        if self._relay is None:
            self._relay = await Relay.start(self._gate)
        session = SnmpSession(
            "127.0.0.1",
            self._relay.port,
            community=target.community,
            user=_user(target.user) if target.user is not None else None,
            version=_VERSION[target.version],
            timeout=target.timeout * (target.retries + 1),
            allow_bulk=target.version != "v1",
        )
        dest = (address, target.port)
        self._dests[(target.host, target.port)] = dest
        await self._relay.adopt(session, dest,
                                ReplyPolicy(target.reply_from, target.timeout, target.retries))
        if target.version == "v3":
            await session.refresh()
        return session

    @contextlib.contextmanager
    def _mapped_errors(self, target: SnmpTarget, op: str) -> Iterator[None]:
        """Map gufo, socket and timeout errors to SnmpTimeout / SnmpError, and a
        timeout with replies the gate dropped to what was wrong with them."""
        try:
            yield
        except TimeoutError as exc:
            dest = self._dests.get((target.host, target.port))
            stray = self._gate.unanswered(dest) if dest is not None else None
            if stray is not None:
                raise stray_error(stray, target.where, op) from exc
            raise SnmpTimeout(
                f"{target.where}: no response to {op} after {target.retries + 1} attempt(s) "
                f"of {target.timeout} s",
                status="requestTimedOut",
            ) from exc
        except SnmpDecodeError as exc:
            raise SnmpError(f"{target.where}: {op} reply: {exc}", status="decodeError") from exc
        except SnmpEncodeError as exc:
            raise SnmpError(f"{target.where}: {op} request: {exc}", status="encodeError") from exc
        except GufoAuthError as exc:  # a USM report; gufo does not say which
            raise SnmpAuthError(f"{target.where}: {op} rejected: {exc}",
                                status="authenticationFailed") from exc
        except GufoError as exc:
            raise SnmpError(f"{target.where}: {op} failed: {exc}", status=str(exc)) from exc
        except OSError as exc:
            raise SnmpError(f"{target.where}: {op} failed: {exc}", status=str(exc)) from exc
        except RuntimeError as exc:  # gufo: building the result failed
            raise SnmpError(f"{target.where}: {op} failed: {exc}", status=str(exc)) from exc

    @contextlib.asynccontextmanager
    async def _session(self, target: SnmpTarget) -> AsyncIterator[SnmpSession]:
        """Lend the target's kept session, or a one-off one if it is busy.

        Raises:
            SnmpError: the host does not resolve (``"unresolvedHost"``).
            OSError: the socket cannot be made (mapped by the caller).
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._reset()
            self._loop = loop
        key: _Key = (
            target.host,
            target.port,
            target.version,
            target.community,
            target.user,
            target.timeout,
            target.retries,
            target.reply_from,
        )
        kept = self._sessions.get(key)
        if kept is not None and kept.resolve_after <= time.monotonic():
            try:
                address, resolve_after = await resolve(target)
            except SnmpError:  # a DNS outage: keep asking the address we know
                address, resolve_after = kept.address, time.monotonic() + RESOLVE_TTL
            if address == kept.address:
                kept.resolve_after = resolve_after
            else:
                self._sessions.pop(key, None)
                kept = None
        if kept is None:
            address, resolve_after = await resolve(target)
            kept = self._sessions.get(key)  # another request may have made it meanwhile
            if kept is None:
                kept = _Session(await self._open(target, address), address, resolve_after)
                self._sessions[key] = kept
                while len(self._sessions) > self.max_sessions:
                    self._sessions.popitem(last=False)
        self._sessions.move_to_end(key)
        if kept.busy:
            yield await self._open(target, kept.address)
            return
        kept.busy = True
        try:
            yield kept.session
        except BaseException:
            if target.version == "v3":
                # The agent may have restarted (new engine boots): discover it afresh.
                self._sessions.pop(key, None)
            raise
        finally:
            kept.busy = False


async def resolve(target: SnmpTarget) -> tuple[str, float]:
    """The address to send to, and when to resolve it again.

    Raises:
        SnmpError: the host does not resolve (``status`` ``"unresolvedHost"``).
    """
    try:
        # Canonical ("0:0::1" is "::1"): the gate compares it with replies' sources.
        return str(ipaddress.ip_address(target.host)), float("inf")
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            target.host, target.port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP
        )
    except OSError as exc:
        raise SnmpError(f"{target.where}: cannot resolve host", status="unresolvedHost") from exc
    if not infos:
        raise SnmpError(f"{target.where}: cannot resolve host", status="unresolvedHost")
    return str(infos[0][4][0]), time.monotonic() + RESOLVE_TTL


@functools.lru_cache(maxsize=1024)
def _user(user: UsmUser) -> User:
    """gufo's user with keys derived from the passwords (once per user: it hashes a MiB)."""
    return User(
        user.name,
        auth_key=_AUTH[user.auth_protocol](user.auth_password.encode())
        if user.auth_protocol else None,
        priv_key=_PRIV[user.priv_protocol](user.priv_password.encode())
        if user.priv_protocol else None,
    )


@functools.lru_cache(maxsize=65_536)
def _canonical(oid: str) -> str:
    """The OID as gufo sends and returns it: no leading dot or leading zeros.

    Cached: a daemon asks the same few hundred OIDs again and again.

    Raises:
        ValueError: not numeric (see :func:`parse_oid`), or an arc above 2**32-1.
    """
    arcs = parse_oid(oid)
    if max(arcs) > _MAX_ARC:
        raise ValueError(f"OID arc above {_MAX_ARC}: {oid!r}")
    return ".".join(map(str, arcs))
