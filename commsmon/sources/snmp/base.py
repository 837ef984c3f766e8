"""The SNMP client interface every backend implements, and the values it returns.

Pure: no pysnmp (or other SNMP library) import here, so ``core/`` and unit tests
can use these types and a fake client without the network stack.

OIDs are numeric dotted strings without a leading dot (``"1.3.6.1.2.1.1.3.0"``);
MIB names are resolved elsewhere, never by a client.
"""

from __future__ import annotations

import abc
import enum
import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal, Self

from commsmon.errors import SnmpError

__all__ = [
    "ERROR_STATUS",
    "AuthProtocol",
    "PrivProtocol",
    "SnmpClient",
    "SnmpTarget",
    "SnmpValue",
    "SnmpVersion",
    "UsmUser",
    "ValueType",
    "get_per_oid",
    "parse_oid",
]

# RFC 3416 §3 error-status values (0..5 are also RFC 1157's).
ERROR_STATUS: Final[tuple[str, ...]] = (
    "noError",
    "tooBig",
    "noSuchName",
    "badValue",
    "readOnly",
    "genErr",
    "noAccess",
    "wrongType",
    "wrongLength",
    "wrongEncoding",
    "wrongValue",
    "noCreation",
    "inconsistentValue",
    "resourceUnavailable",
    "commitFailed",
    "undoFailed",
    "authorizationError",
    "notWritable",
    "inconsistentName",
)


SnmpVersion = Literal["v1", "v2c", "v3"]
"""Protocol version of a target."""

_VERSIONS: frozenset[str] = frozenset({"v1", "v2c", "v3"})

AuthProtocol = Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"]
"""USM authentication: HMAC-MD5-96, HMAC-SHA-96 (RFC 3414), HMAC-SHA-2 (RFC 7860)."""

PrivProtocol = Literal["des", "aes", "aes192", "aes256"]
"""USM privacy: CBC-DES (RFC 3414), CFB128-AES-128 (RFC 3826), AES-192/256."""


@dataclass(frozen=True, slots=True)
class UsmUser:
    """An SNMPv3 user of the User-based Security Model (RFC 3414).

    Attributes:
        name: the securityName.
        auth_protocol: authentication, ``None`` for noAuthNoPriv.
        auth_password: its password; a secret, left out of ``repr()``.
        priv_protocol: privacy (encryption), ``None`` for none.
        priv_password: its password; a secret, left out of ``repr()``.
    """

    name: str
    auth_protocol: AuthProtocol | None = None
    auth_password: str = field(default="", repr=False)
    priv_protocol: PrivProtocol | None = None
    priv_password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError("UsmUser: privacy needs authentication")

    @property
    def level(self) -> Literal["noAuthNoPriv", "authNoPriv", "authPriv"]:
        """The securityLevel these settings give."""
        if self.auth_protocol is None:
            return "noAuthNoPriv"
        return "authNoPriv" if self.priv_protocol is None else "authPriv"


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    """One agent to ask, and how patiently.

    Attributes:
        host: IPv4 address or hostname of the agent.
        port: UDP port, default 161.
        version: ``"v1"``, ``"v2c"`` or ``"v3"``.
        community: community string (v1, v2c); a secret, left out of ``repr()`` and
            never logged.
        user: the USM user (v3).
        timeout: seconds to wait for each attempt, default 2.0.
        retries: extra attempts after the first, default 1; a request gives up
            after about ``timeout * (retries + 1)`` seconds. Every attempt resends
            the same request id, so a reply to any of them answers it.
        reply_from: IP addresses besides ``host``'s that the agent may answer
            from (a VRRP pair, a router with several interfaces); replies from any
            other address are dropped (:mod:`commsmon.sources.snmp.wire`).
    """

    host: str
    port: int = 161
    version: SnmpVersion = "v2c"
    community: str = field(default="public", repr=False)
    user: UsmUser | None = None
    timeout: float = 2.0
    retries: int = 1
    reply_from: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("SnmpTarget.host must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"SnmpTarget.port must be 1..65535, got {self.port}")
        if self.version not in _VERSIONS:
            raise ValueError(f"SnmpTarget.version must be one of {sorted(_VERSIONS)}")
        if self.version == "v3" and self.user is None:
            raise ValueError("SnmpTarget: version v3 needs a user")
        if not self.timeout > 0:
            raise ValueError(f"SnmpTarget.timeout must be > 0 seconds, got {self.timeout}")
        if self.retries < 0:
            raise ValueError(f"SnmpTarget.retries must be >= 0, got {self.retries}")
        for address in self.reply_from:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(
                    f"SnmpTarget.reply_from must hold IP addresses, got {address!r}") from None

    @property
    def where(self) -> str:
        """The target as messages name it: host, port and version, never the community."""
        return f"{self.host}:{self.port} ({self.version})"

    @property
    def deadline(self) -> float:
        """Seconds after which a single request has certainly failed.

        ``timeout * (retries + 1)`` plus one second of grace for scheduling; backends
        wrap every library call in this bound so that no call can hang.
        """
        return self.timeout * (self.retries + 1) + 1.0


class ValueType(enum.Enum):
    """SMI syntax of a returned value (RFC 2578 §7.1, RFC 3416 §3 for the exceptions)."""

    INTEGER = "INTEGER"
    OCTET_STRING = "OCTET STRING"
    NULL = "NULL"
    OBJECT_IDENTIFIER = "OBJECT IDENTIFIER"
    IP_ADDRESS = "IpAddress"
    COUNTER32 = "Counter32"
    GAUGE32 = "Gauge32"
    TIMETICKS = "TimeTicks"
    OPAQUE = "Opaque"
    COUNTER64 = "Counter64"
    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"


_EXCEPTIONS: frozenset[ValueType] = frozenset(
    {ValueType.NO_SUCH_OBJECT, ValueType.NO_SUCH_INSTANCE, ValueType.END_OF_MIB_VIEW}
)


@dataclass(frozen=True, slots=True)
class SnmpValue:
    """One varbind value, as raw as the wire gave it.

    Attributes:
        type: the SMI syntax.
        value: by type —
            INTEGER → signed ``int``; Counter32, Gauge32 (Unsigned32), TimeTicks
            (hundredths of a second) and Counter64 → unsigned ``int``;
            OCTET STRING and Opaque → raw ``bytes`` (not decoded: text, units and
            packed floats are decoded elsewhere); OBJECT IDENTIFIER → dotted ``str``;
            IpAddress → dotted-quad ``str``; NULL and the exceptions → ``None``.
    """

    type: ValueType
    value: int | bytes | str | None

    @property
    def is_exception(self) -> bool:
        """True for noSuchObject, noSuchInstance and endOfMibView: "no value", not zero."""
        return self.type in _EXCEPTIONS


NO_SUCH_OBJECT = SnmpValue(ValueType.NO_SUCH_OBJECT, None)


def parse_oid(oid: str) -> tuple[int, ...]:
    """Parse a numeric dotted OID into its arcs.

    Args:
        oid: e.g. ``"1.3.6.1.2.1.1.3.0"``; one leading dot is tolerated.

    Returns:
        The arcs as a tuple of ints.

    Raises:
        ValueError: ``oid`` is empty, has an empty or non-numeric arc, or fewer
            than two arcs.
    """
    text = oid[1:] if oid.startswith(".") else oid
    parts = text.split(".")
    if len(parts) < 2 or not all(p.isdigit() and p.isascii() for p in parts):
        raise ValueError(f"not a numeric OID: {oid!r}")
    return tuple(int(p) for p in parts)


GetOnce = Callable[[Sequence[str]], Awaitable[Sequence[SnmpValue]]]
"""One GET PDU: the OIDs in, their values in the same order out, or SnmpError."""


async def get_per_oid(get_once: GetOnce, oids: Sequence[str]) -> dict[str, SnmpValue]:
    """GET ``oids`` so that one missing OID cannot hide the others.

    An SNMPv1 agent answers a GET naming any missing OID with error-status
    noSuchName for the whole PDU (RFC 1157 §4.1.2), blaming the first such OID
    in error-index. This marks the blamed OID NO_SUCH_OBJECT and asks again
    without it; each round drops one OID, so there are at most ``len(oids)``
    rounds. If the agent blames no valid index, each remaining OID is asked on
    its own. SNMPv2c agents answer per varbind and never take the retry path.

    Args:
        get_once: sends one GET PDU for the given OIDs and returns their values
            in request order; raises SnmpError with ``status`` and ``index`` on an
            error-status.
        oids: numeric OIDs; duplicates are asked once.

    Returns:
        A value for every requested OID, keyed by the OID strings as given.

    Raises:
        SnmpTimeout: an attempt got no answer in time.
        SnmpError: an error-status other than noSuchName, or a transport error.
    """
    pending = list(dict.fromkeys(oids))
    found: dict[str, SnmpValue] = {}
    while pending:
        try:
            values = await get_once(pending)
        except SnmpError as exc:
            if exc.status != "noSuchName":
                raise
            if 1 <= exc.index <= len(pending):
                found[pending.pop(exc.index - 1)] = NO_SUCH_OBJECT
                continue
            if len(pending) == 1:
                found[pending.pop()] = NO_SUCH_OBJECT
                continue
            for oid in pending:
                found.update(await get_per_oid(get_once, [oid]))
            break
        found.update(zip(pending, values, strict=True))
        break
    return {oid: found[oid] for oid in oids}


class SnmpClient(abc.ABC):
    """Read-only SNMP client; one instance serves many targets concurrently.

    Implementations never SET. Every method ends: a silent or hung agent costs at
    most ``target.deadline`` seconds per request. Use as ``async with`` or call
    :meth:`close` in the event loop that used the client.
    """

    @abc.abstractmethod
    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpValue]:
        """GET the given OIDs.

        Args:
            target: the agent.
            oids: numeric dotted OIDs without a leading dot.

        Returns:
            One value per requested OID, keyed by the OID strings as given. A missing
            OID yields an exception value (NO_SUCH_OBJECT / NO_SUCH_INSTANCE), on v1
            too: the v1 whole-PDU noSuchName is resolved per OID.

        Raises:
            ValueError: an OID is not numeric.
            SnmpTimeout: no answer within ``timeout * (retries + 1)`` seconds (+1 s grace).
            SnmpError: an error-status other than v1 noSuchName (``status``/``index``
                say which), or a transport error (e.g. the host does not resolve).
        """

    def engine_id(self, target: SnmpTarget) -> bytes | None:
        """The authoritative snmpEngineID (RFC 3411) ``target`` last answered SNMPv3
        with, ``None`` if not known (v1/v2c, or not asked yet)."""
        return None

    @abc.abstractmethod
    async def close(self) -> None:
        """Release sockets and timers. The client may be used again afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
