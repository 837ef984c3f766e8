"""pysnmp's part of the trap receiver: its engine, its UDP server transport, and
what its callbacks hand over, read into commsmon's terms.

Imported by :class:`~commsmon.sources.traps.receiver.TrapReceiver` only once it
listens: pysnmp with its MIB modules is about 16 MiB of a process's RSS
(measured importing ``pysnmp.hlapi.v3arch.asyncio`` after the rest of the
daemon), which a daemon without a trap listener does not spend.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pysnmp.carrier.asyncio.dgram.udp import DOMAIN_NAME, UdpAsyncioTransport
from pysnmp.entity import config as engine_config
from pysnmp.entity import engine as snmp_engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto import errind
from pysnmp.proto.api import v2c

from commsmon.config.traps import TrapsSpec
from commsmon.sources.snmp.base import SnmpValue
from commsmon.sources.snmp.pysnmp_backend import AUTH_PROTOCOLS, PRIV_PROTOCOLS, to_snmp_value

__all__ = ["Engine", "GatedServer", "build", "receive", "unknown_sender", "values"]

READ_BATCH = 256  # datagrams read per turn of the event loop
_UNKNOWN_SENDER = (errind.UnknownEngineID, errind.UnknownSecurityName, errind.UnknownUserName)


class GatedServer(UdpAsyncioTransport):  # type: ignore[misc]
    """pysnmp's UDP server transport behind the receiver's gate (``admit``: the
    allow-list and the token buckets) and its own reading of v1 and v2c traps
    (``fast``); what neither settles goes on to pysnmp.

    It reads its socket itself: asyncio's datagram transport (paused, still used
    to send inform responses) costs half as much again per datagram as a reader
    that calls ``recvfrom`` until the socket is empty (45 against 30 µs of CPU at
    500 datagrams/s, measured beside bench/traps.py).  The reader watches a
    duplicate of the socket's descriptor (asyncio refuses a second watcher on a
    transport's own), closed with the transport.
    """

    def __init__(self, admit: Callable[[bytes, str], bool], fast: Callable[[bytes, str], bool],
                 flush: Callable[[], None], sock: socket.socket) -> None:
        super().__init__()
        self._admit, self._fast, self._flush = admit, fast, flush
        self._sock = sock.dup()  # the same socket under another descriptor: ours to watch

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.pause_reading()
        loop = asyncio.get_running_loop()
        # After the transport's own reader would be added: this one replaces it.
        loop.call_soon(loop.add_reader, self._sock.fileno(), self._read)

    def _read(self) -> None:
        """Datagrams until the socket is empty, at most READ_BATCH a turn of the loop;
        then what they queued is applied (``flush``), the urgent lane first.  (Resting
        the socket between reads to batch more costs more in epoll_ctl than it saves.)"""
        try:
            for _ in range(READ_BATCH):
                try:
                    datagram, address = self._sock.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:  # an ICMP error reported on the socket: nothing to read
                    return
                self.datagram_received(datagram, address)
        finally:
            self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()
        super().connection_lost(exc)

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        source = str(transportAddress[0])
        if self._admit(datagram, source) and not self._fast(datagram, source):
            super().datagram_received(datagram, transportAddress)  # informs and SNMPv3


@dataclass
class Engine:
    """A pysnmp engine set up to listen, and how its binding went.

    Attributes:
        engine: the ``SnmpEngine``.
        listening: the (host, port) addresses bound, in ``listen`` order.
        transports: their server transports (each opens in a future of pysnmp's,
            ``_lport``).
        problem: why an address could not be bound (``"host:port: reason"``), else
            ``None``.
    """

    engine: Any
    listening: list[tuple[str, int]] = field(default_factory=list)
    transports: list[Any] = field(default_factory=list)
    problem: str | None = None

    def close(self) -> None:
        """Close its transports (the dispatcher's)."""
        self.engine.close_dispatcher()


def build(spec: TrapsSpec, engine_id: bytes, boots: int,
          open_socket: Callable[[str, int], socket.socket],
          admit: Callable[[bytes, str], bool], fast: Callable[[bytes, str], bool],
          flush: Callable[[], None], refused: Callable[..., None],
          authoritative: Callable[..., None]) -> Engine:
    """An engine with ``engine_id`` and ``boots`` (snmpEngineBoots), a server transport
    per ``spec.listen`` address (``open_socket(host, port)``; an ``OSError`` is kept
    as :attr:`Engine.problem` and the address skipped), the v1/v2c communities, the
    v3 users (each also under its sender's engine ID if it has one), and the two
    observers: ``refused`` for notifications a security model dropped,
    ``authoritative`` for a v3 message's msgAuthoritativeEngineID."""
    engine = snmp_engine.SnmpEngine(v2c.OctetString(engine_id))
    (mib_boots,) = engine.get_mib_builder().import_symbols(
        "__SNMP-FRAMEWORK-MIB", "snmpEngineBoots")
    mib_boots.syntax = mib_boots.syntax.clone(boots)
    built = Engine(engine)
    for i, address in enumerate(spec.listen):
        host, port = address.rsplit(":", 1)
        try:
            sock = open_socket(host, int(port))
        except OSError as exc:
            built.problem = f"{address}: {exc.strerror or exc}"
            continue
        transport = GatedServer(admit, fast, flush, sock).open_server_mode(sock=sock)
        built.transports.append(transport)
        engine_config.add_transport(engine, (*DOMAIN_NAME, i + 1), transport)
        built.listening.append((host, int(port)))
    for i, community in enumerate(spec.communities):
        engine_config.add_v1_system(engine, f"community-{i}", community.get_secret_value())
    for user in spec.users:
        auth = user.auth_password.get_secret_value() if user.auth_password else None
        priv = user.priv_password.get_secret_value() if user.priv_password else None
        keys = (
            AUTH_PROTOCOLS[user.auth_protocol] if auth else engine_config.USM_AUTH_NONE, auth,
            PRIV_PROTOCOLS[user.priv_protocol] if priv else engine_config.USM_PRIV_NONE, priv)
        engine_config.add_v3_user(engine, user.name, *keys)  # informs: our engine
        if user.engine_id:
            sender = v2c.OctetString(hexValue=user.engine_id.removeprefix("0x"))
            engine_config.add_v3_user(engine, user.name, *keys, securityEngineId=sender)
    engine.observer.register_observer(refused, "rfc2576.prepareDataElements:sm-failure",
                                      "rfc3412.prepareDataElements:sm-failure")
    engine.observer.register_observer(authoritative, "rfc3414.processIncomingMsg")
    return built


def receive(engine: Any, callback: Callable[..., None]) -> None:
    """Start taking notifications: ``callback(engine, state_reference,
    context_engine_id, context_name, var_binds, cb_ctx)`` for each one
    authenticated; informs are answered by pysnmp."""
    ntfrcv.NotificationReceiver(engine, callback)
    engine.transport_dispatcher.job_started(1)


def unknown_sender(error: object) -> bool:
    """Whether a v3 refusal's errorIndication says no user is configured for the
    sender (an unknown engine ID, security or user name), not a wrong key."""
    return isinstance(error, _UNKNOWN_SENDER)


def values(var_binds: Sequence[tuple[Any, Any]]) -> dict[str, SnmpValue]:
    """pysnmp's varbinds as ``{dotted OID: value}``, in their order.

    Raises:
        Exception: a value pysnmp decoded that has no :class:`SnmpValue` type.
    """
    return {".".join(map(str, name.asTuple())): to_snmp_value(value) for name, value in var_binds}
