"""A loopback relay that carries a connected-socket SNMP library through the ReplyGate.

gufo_snmp's sessions are Rust sockets ``connect()``-ed to the agent that match
replies on their last request id only: they can neither see a reply from
another address nor take one to an earlier attempt, and offer no hook. So each
session is connected to this relay's loopback socket instead; the relay knows
which agent each session's local port stands for, sends requests on from one
unconnected socket per address family through the
:class:`~commsmon.sources.snmp.wire.ReplyGate`, and hands back only the replies
the gate accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import weakref
from collections.abc import Callable
from typing import Any, cast

import structlog
from gufo.snmp.aio import SnmpSession

from commsmon.sources.snmp.wire import Address, ReplyGate, ReplyPolicy

__all__ = ["Relay"]

log = structlog.get_logger("commsmon.snmp")


class _Side(asyncio.DatagramProtocol):
    """One socket of the relay: hands what it receives to a callback."""

    def __init__(self, received: Callable[[bytes, Address], None]) -> None:
        self.received = received
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # a session gone before its reply: the reply had nobody to go to


class Relay:
    """Carries gufo's requests and replies through the client's ReplyGate.

    Sessions are connected to :attr:`port` on 127.0.0.1; each session's local
    port names its agent (:meth:`adopt`), so a request arriving here goes on to
    that agent from one unconnected socket per address family, and a reply the
    gate accepts comes back to the session from :attr:`port`, the only address
    its connected socket reads.
    """

    def __init__(self, gate: ReplyGate, local: _Side, port: int) -> None:
        self._gate = gate
        self._local = local
        self.port = port
        self._routes: dict[int, tuple[Address, ReplyPolicy]] = {}
        self._upstream: dict[int, _Side] = {}

    @classmethod
    async def start(cls, gate: ReplyGate) -> Relay:
        """Open the loopback socket sessions connect to."""
        loop = asyncio.get_running_loop()
        relay: Relay | None = None
        local = _Side(lambda data, addr: relay._from_session(data, addr) if relay else None)
        transport, _ = await loop.create_datagram_endpoint(lambda: local,
                                                           local_addr=("127.0.0.1", 0))
        relay = cls(gate, local, int(transport.get_extra_info("sockname")[1]))
        return relay

    async def adopt(self, session: SnmpSession, dest: Address, policy: ReplyPolicy) -> None:
        """Route ``session``'s requests to ``dest`` until the session is freed.

        Raises:
            OSError: the upstream socket cannot be opened.
        """
        family = socket.AF_INET6 if ":" in dest[0] else socket.AF_INET
        if family not in self._upstream:
            side = _Side(self._gate.receive)
            await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: side, family=family,
                local_addr=("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            self._upstream[family] = side
        # gufo has no public accessor for its socket; the fd is dup'ed to read its port.
        with socket.fromfd(session._fd, socket.AF_INET, socket.SOCK_DGRAM) as sock:
            port = int(sock.getsockname()[1])
        self._routes[port] = (dest, policy)
        weakref.finalize(session, self._routes.pop, port, None)

    def close(self) -> None:
        """Close the relay's sockets; sessions still holding its port time out."""
        for side in (self._local, *self._upstream.values()):
            if side.transport is not None:
                with contextlib.suppress(RuntimeError):  # its loop is closed: so is it
                    side.transport.close()
        self._upstream.clear()
        self._routes.clear()

    def _from_session(self, data: bytes, addr: Address) -> None:
        route = self._routes.get(addr[1])
        local = self._local.transport
        if route is None or local is None:
            return  # a session already freed
        dest, policy = route
        upstream = self._upstream[socket.AF_INET6 if ":" in dest[0] else socket.AF_INET].transport
        if upstream is None:
            return
        try:
            self._gate.send(data, dest, policy, lambda d: upstream.sendto(d, dest),
                            lambda d: local.sendto(d, addr))
        except ValueError as exc:  # gufo sent something that is not SNMP: a bug
            log.error("request not understood by the reply gate", error=str(exc))
